"""The examples: README's first command against the demo models, and the CI workflow's options."""

from __future__ import annotations

import json
import os
import re
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
    assert len(verdicts) == 20
    assert proc.returncode == 1


def test_ci_example_uses_only_real_options() -> None:
    """Every `--llm-*` option the CI example and README name exists in `pytest --help`."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    offered = set(re.findall(r"--llm-[a-z-]+", proc.stdout))
    texts = [ROOT / "examples" / "ci" / "llmeval.yml", ROOT / "README.md"]
    used = {o for path in texts for o in re.findall(r"--llm-[a-z-]+", path.read_text())}
    assert {"--llm-cache", "--llm-baseline", "--llm-report-md"} <= used
    assert used <= offered
