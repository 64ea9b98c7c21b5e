"""Pass-rate history through the plugin and the command line: finished runs are appended once
(serially, under xdist, or merged from shards), and the `history` command flags drift."""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from processes import cli

from pytest_llmeval.report.history import runs, series
from pytest_llmeval.testing import Cycle, FakeGateway, RecordedRequest
from pytest_llmeval.verdict.stats import clopper_pearson

SUITE = """
import pytest

@pytest.mark.parametrize("case", range(3))
@pytest.mark.llmeval(pass_rate=0.5, samples=6, mode="observed")
def test_case(llm, case):
    assert "PASS" in llm.chat(f"case {case}").text
"""
DRIFT_SUITE = """
import pytest

@pytest.mark.llmeval(pass_rate=0.5, samples=10, mode="observed")
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
STABLE = ("passed", "valid", "rate", "ci", "cost_usd", "verdict")


@pytest.fixture(autouse=True)
def no_ci_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytester folder is no git checkout; a CI's commit variables must not stand in."""
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"):
        monkeypatch.delenv(name, raising=False)


def config(suite: pytest.Pytester, gateway: FakeGateway, extra: str = "") -> None:
    suite.makefile(
        ".toml",
        llmeval=f"""
base_url = "{gateway.base_url}"
retries = 0
{extra}
[models.a]
input_cost_per_mtok = 1.0
output_cost_per_mtok = 2.0

[models.b]
input_cost_per_mtok = 1.0
output_cost_per_mtok = 2.0
""",
    )


def every_third_fails() -> Callable[[RecordedRequest], str]:
    """Answers that depend only on the prompt and how often it was asked, not on test order."""
    counters: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)

    def reply(request: RecordedRequest) -> str:
        return "FAIL" if next(counters[request.prompt]) % 3 == 2 else "PASS"

    return reply


def run(suite: pytest.Pytester, gateway: FakeGateway, *args: str) -> pytest.RunResult:
    gateway.add_model("a", "PASS")
    gateway.add_model("b", every_third_fails())
    return suite.runpytest("--llm-models=a,b", "--llm-concurrency=1", *args)


def stable(path: Path) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """What must not depend on how the run was spread: each series' counts, rates and cost."""
    return [
        (s["test"], s["model"], [{k: p[k] for k in STABLE} for p in s["points"]])
        for s in series(path)
    ]


def test_each_finished_run_is_appended_once_serially_and_under_xdist(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    config(suite, gateway)
    suite.makepyfile(test_suite=SUITE)
    for history, args in (("serial.sqlite", []), ("xdist.sqlite", ["-n", "2"])):
        first = run(suite, gateway, f"--llm-history={history}", *args)
        first.assert_outcomes(passed=6)
        first.stdout.fnmatch_lines([f"llmeval history: run 1 appended to {history} (no commit)"])
        second = run(suite, gateway, f"--llm-history={history}", *args)
        second.stdout.fnmatch_lines(
            [
                f"llmeval history: run 2 appended to {history} (no commit); drift against up to "
                f"5 earlier runs: 0 worse, 0 better (python -m pytest_llmeval history {history})"
            ]
        )
    serial, xdist = stable(suite.path / "serial.sqlite"), stable(suite.path / "xdist.sqlite")
    assert serial == xdist
    assert [(test, model, len(points)) for test, model, points in serial] == [
        (f"test_suite.py::test_case[{case}]", model, 2) for case in range(3) for model in "ab"
    ]
    assert serial[1][2][0] == {  # every third answer fails; settled after 3 of 4
        "passed": 3,
        "valid": 4,
        "rate": 0.75,
        "ci": list(clopper_pearson(3, 4, 0.95)),
        "cost_usd": pytest.approx(16e-6),
        "verdict": "passed",
    }
    assert serial[0][2][0]["cost_usd"] > 0
    assert [r.source for r in runs(suite.path / "xdist.sqlite")] == ["pytest", "pytest"]


def test_an_interrupted_run_is_not_appended(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    config(suite, gateway)
    stop = "pytest.exit('stopping', returncode=pytest.ExitCode.INTERRUPTED)"
    suite.makepyfile(test_suite=f"{SUITE}\ndef test_stop():\n    {stop}\n")
    result = run(suite, gateway, "--llm-history=h.sqlite")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["llmeval history NOT appended (run interrupted): h.sqlite"])
    assert not (suite.path / "h.sqlite").exists()


def test_the_config_names_the_history_and_a_bad_file_is_a_usage_error(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    config(suite, gateway, 'history = "kept/h.sqlite"')
    suite.makepyfile(test_suite=SUITE)
    run(suite, gateway).stdout.fnmatch_lines(["llmeval history: run 1 appended to kept/h.sqlite*"])
    assert len(runs(suite.path / "kept" / "h.sqlite")) == 1
    (suite.path / "notes.txt").write_text("not a database\n" * 100)
    bad = run(suite, gateway, "--llm-history=notes.txt")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["ERROR: --llm-history: */notes.txt: not a pytest-llmeval history*"])
    with sqlite3.connect(suite.path / "kept" / "h.sqlite") as db:
        db.execute("UPDATE meta SET value = '9' WHERE key = 'version'")
    newer = run(suite, gateway)
    assert newer.ret == pytest.ExitCode.USAGE_ERROR
    newer.stderr.fnmatch_lines(["ERROR: *llmeval.toml history: *history version 9, this plugin*"])


def test_merged_shards_feed_the_history_like_one_run(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    config(suite, gateway)
    suite.makepyfile(test_suite=SUITE)
    run(suite, gateway, "--llm-history=single.sqlite")
    run(suite, gateway, "--llm-report=shard1.json", "-k", "0 or 1")
    run(suite, gateway, "--llm-report=shard2.json", "-k", "2")
    merge = ("merge", "shard1.json", "shard2.json", "-o", "all.json", "--history", "m.sqlite")
    done = cli(suite.path, *merge)
    assert done.returncode == 0, done.stderr
    assert "llmeval history: run 1 appended to m.sqlite" in done.stdout
    assert stable(suite.path / "m.sqlite") == stable(suite.path / "single.sqlite")
    assert [r.source for r in runs(suite.path / "m.sqlite")] == ["merge of 2 reports"]
    compared = cli(suite.path, "compare", "all.json", "--history", "m.sqlite", "--html", "r.html")
    assert compared.returncode == 0, compared.stderr
    assert (suite.path / "r.html").read_text().startswith("<!DOCTYPE html>")
    (suite.path / "bad.sqlite").write_text("no")
    for command in (
        ("merge", "shard1.json", "-o", "x.json", "--history", "bad.sqlite"),
        ("compare", "all.json", "--history", "missing.sqlite"),
    ):
        failed = cli(suite.path, *command)
        assert failed.returncode == 2 and ".sqlite: " in failed.stderr
    assert not (suite.path / "x.json").exists()


def test_the_history_command_flags_a_planted_drop_and_not_a_stable_model(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    config(suite, gateway)
    suite.makepyfile(test_suite=DRIFT_SUITE)
    for answers in (["PASS"], ["PASS"], ["PASS"], ["PASS", "FAIL", "FAIL", "FAIL", "FAIL"]):
        gateway.add_model("a", "PASS")
        gateway.add_model("b", Cycle(answers))
        # All 10 samples start at once, so none is cut short: every run has 10 valid samples.
        result = suite.runpytest("--llm-models=a,b", "--llm-concurrency=10", "--llm-history=h.db")
    result.stdout.fnmatch_lines(["llmeval history: run 4 appended to h.db*: 1 worse, 0 better*"])
    done = cli(suite.path, "history", "h.db")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "runs, oldest first (+: uncommitted changes):"
    drop = next(line for line in lines if line.startswith("test_suite.py::test_answer [b]"))
    assert " 100%  100%  100%   20%   latest 2/10, 95% CI 3%-56%: WORSE than 30/30 in 3" in drop
    steady = next(line for line in lines if line.startswith("test_suite.py::test_answer [a]"))
    assert ": no drift from 30/30 in 3 earlier runs, p=1 (Holm 1)" in steady
    assert lines[-1].startswith("llmeval history: 1 worse, 0 better, 1 without drift, 0 not")
    assert cli(suite.path, "history", "h.db", "--fail-on-drift").returncode == 1
    only_a = cli(suite.path, "history", "h.db", "--model", "a", "--fail-on-drift")
    assert only_a.returncode == 0 and "[b]" not in only_a.stdout
    short = cli(suite.path, "history", "h.db", "--last", "2", "--test", "answer", "--window", "1")
    assert "WORSE than 10/10 in 1 earlier runs" in short.stdout
    assert "#1 " not in short.stdout.splitlines()[3]
    missing = cli(suite.path, "history", "nope.db")
    assert missing.returncode == 2 and "nope.db: no such history file" in missing.stderr
    (suite.path / "bad.db").write_text("not sqlite at all\n" * 50)
    bad = cli(suite.path, "history", "bad.db")
    assert bad.returncode == 2 and "bad.db: not a pytest-llmeval history" in bad.stderr
