"""The baseline gate through the plugin: drops fail, noise does not, the baseline is written."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.testing import Cycle, FakeGateway
from pytest_llmeval.verdict.stats import drop_p_value

ALPHA = 0.05


def suite_file(rate: float, mode: str, prompt: str = "Say PASS") -> str:
    return f"""
import pytest

@pytest.mark.llmeval(pass_rate={rate}, samples=20, mode="{mode}")
def test_answer(llm):
    assert "PASS" in llm.chat("{prompt}").text
"""


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def make_baseline(suite: pytest.Pytester, gateway: FakeGateway, answers: list[str]) -> None:
    """A complete baseline: all 20 samples start at once, so none is curtailed."""
    gateway.add_model("m", Cycle(answers))
    suite.makepyfile(test_suite=suite_file(1.0, "observed"))
    suite.runpytest("--llm-models=m", "--llm-concurrency=20", "--llm-report=base.json")
    assert report(suite.path / "base.json")["tests"][0]["run"] == 20


def test_significant_drop_fails_although_the_threshold_passes(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    make_baseline(suite, gateway, ["PASS"])
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    suite.makepyfile(test_suite=suite_file(0.3, "not_worse"))
    args = ["--llm-models=m", "--llm-concurrency=1", *plugin_args]
    alone = suite.runpytest(*args, "--llm-report=alone.json")
    alone.assert_outcomes(passed=1)
    assert report(suite.path / "alone.json")["tests"][0]["run"] < 10  # threshold settles early
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    result = suite.runpytest(*args, "--llm-baseline=base.json", "--llm-report=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_answer*PASSED*",
            "baseline base.json: 1 regressions, 0 changed prompts, 0 new, 0 gone",
            "REGRESSED test_suite.py::test_answer [[]m[]]: 20/20 (100%) -> */* (5?%), p=0.00*",
            "*FAILED test_suite.py::test_answer[[]m[]] - Failed: llmeval: regression vs*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["llmeval: regression vs baseline: 20/20 (100%) -> */* (5?%), p=0.00* <= 0.05 (Fisher*"]
    )
    doc = report(suite.path / "r.json")
    assert doc["tests"][0]["verdict"] == "passed" and doc["tests"][0]["run"] >= 10
    assert doc["baseline"]["regressions"] == 1 and doc["baseline"]["rows"][0]["p_value"] < 0.05
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    threshold_only = suite.runpytest(*args, "--llm-baseline=base.json", "--llm-fail-on=threshold")
    threshold_only.assert_outcomes(passed=1)
    threshold_only.stdout.fnmatch_lines(["REGRESSED test_suite.py::test_answer*"])


def test_noise_is_not_a_regression(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    make_baseline(suite, gateway, ["PASS"])
    gateway.add_model("m", Cycle(["PASS"] * 9 + ["FAIL"]))
    suite.makepyfile(test_suite=suite_file(0.8, "observed"))
    result = suite.runpytest(
        "--llm-models=m", "--llm-concurrency=1", "--llm-baseline=base.json", "--llm-report=r.json"
    )
    result.assert_outcomes(passed=1)
    rows = report(suite.path / "r.json")["baseline"]["rows"]
    assert rows[0]["passed"] < rows[0]["valid"] and not rows[0]["regressed"]
    assert rows[0]["p_value"] > ALPHA


def test_fail_on_regression_lets_a_missed_threshold_pass(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    make_baseline(suite, gateway, ["PASS", "FAIL"])
    suite.makepyfile(test_suite=suite_file(0.9, "observed"))
    args = ["--llm-models=m", "--llm-concurrency=1", "--llm-baseline=base.json"]
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    suite.runpytest(*args, "--llm-fail-on=regression").assert_outcomes(passed=1)
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    suite.runpytest(*args).assert_outcomes(failed=1)


def test_changed_new_and_gone_tests_are_listed(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    make_baseline(suite, gateway, ["PASS"])
    base = report(suite.path / "base.json")
    base["tests"].append({**base["tests"][0], "test": "test_suite.py::test_old"})
    (suite.path / "base.json").write_text(json.dumps(base))
    suite.makepyfile(
        test_suite=suite_file(1.0, "observed", "Please say PASS")
        + "\ndef test_new(llm):\n    assert llm.chat('hi').text\n"
    )
    result = suite.runpytest("--llm-models=m", "--llm-baseline=base.json", "--llm-report=r.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "baseline base.json: 0 regressions, 1 changed prompts, 1 new, 1 gone",
            "prompt changed: test_suite.py::test_answer [[]m[]]",
            "new: test_suite.py::test_new [[]m[]]",
            "gone: test_suite.py::test_old [[]m[]]",
        ]
    )


def test_update_baseline_writes_a_loadable_report(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=suite_file(1.0, "observed"))
    args = ["--llm-models=m", "--llm-baseline=b/base.json", "--llm-update-baseline", *plugin_args]
    suite.runpytest(*args).assert_outcomes(passed=1)  # no baseline yet: it is created
    first = load_report(suite.path / "b" / "base.json")
    assert "baseline" not in first and first["tests"][0]["passed"] == 20
    result = suite.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["baseline b/base.json: 0 regressions*", "llmeval baseline updated: b/base.json"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm-baseline=missing.json"], "*--llm-baseline: missing.json: cannot read the report*"),
        (["--llm-baseline=bad.json"], "*--llm-baseline: bad.json: not a JSON report*"),
        (["--llm-update-baseline"], "*--llm-update-baseline needs --llm-baseline=PATH*"),
        (["--llm-fail-on=regression"], "*--llm-fail-on=regression needs --llm-baseline=PATH*"),
        (["--llm-fail-on=sometimes"], "*--llm-fail-on*'sometimes' is not one of both*"),
    ],
)
def test_baseline_mistakes_are_usage_errors(
    suite: pytest.Pytester, args: list[str], message: str
) -> None:
    (suite.path / "bad.json").write_text("{")
    suite.makepyfile(test_suite=suite_file(1.0, "observed"))
    result = suite.runpytest("--llm-models=m", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_an_interrupted_run_keeps_the_old_baseline(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    make_baseline(suite, gateway, ["PASS"])
    before = (suite.path / "base.json").read_text()
    gateway.add_model("m", "FAIL")
    stop = "\ndef test_zz_stop():\n    pytest.exit('stopped')\n"
    suite.makepyfile(test_suite=suite_file(1.0, "observed") + stop)
    result = suite.runpytest("--llm-models=m", "--llm-baseline=base.json", "--llm-update-baseline")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["llmeval baseline NOT updated (run interrupted): base.json"])
    assert (suite.path / "base.json").read_text() == before


def test_a_dialogue_prompt_does_not_change_with_the_answers(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    """Turn 2 carries turn 1's answer; the prompt fingerprint leaves the model's turns out."""
    count = itertools.count()
    gateway.add_model("m", lambda request: f"PASS {next(count)}")
    suite.makepyfile(
        test_dialogue="""
import pytest
from pytest_llmeval.conversation import Conversation

@pytest.mark.llmeval(pass_rate=0.5, samples=3)
def test_dialogue(llm):
    convo = Conversation(llm, system="Be brief.")
    assert "PASS" in convo.turn("Say PASS").text
    assert "PASS" in convo.turn("Again").text
"""
    )
    args = ["--llm-models=m", "--llm-baseline=base.json"]
    suite.runpytest(*args, "--llm-update-baseline").assert_outcomes(passed=1)
    result = suite.runpytest(*args, "--llm-report=r.json")
    result.assert_outcomes(passed=1)
    assert json.loads((suite.path / "r.json").read_text())["baseline"]["changed_prompts"] == 0


def test_fail_on_regression_ignores_thresholds_of_new_tests(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", Cycle(["PASS", "FAIL"]))
    suite.makepyfile(
        test_old="""
import pytest

@pytest.mark.llmeval(pass_rate=0.2, samples=4)
def test_old(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    suite.runpytest("--llm-models=m", "--llm-baseline=base.json", "--llm-update-baseline")
    suite.makepyfile(
        test_new="""
import pytest

@pytest.mark.llmeval(pass_rate=0.99, samples=4)
def test_new(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    args = ["--llm-models=m", "--llm-baseline=base.json"]
    assert suite.runpytest(*args, "--llm-fail-on=regression").ret == pytest.ExitCode.OK
    assert suite.runpytest(*args).ret == pytest.ExitCode.TESTS_FAILED


def test_an_unchanged_model_stops_for_futility_and_a_drop_is_still_caught(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    make_baseline(suite, gateway, ["PASS"])
    suite.makepyfile(test_suite=suite_file(0.8, "not_worse"))
    args = ["--llm-models=m", "--llm-concurrency=1", "--llm-baseline=base.json", *plugin_args]
    gateway.add_model("m", Cycle(["PASS"]))
    same = suite.runpytest(*args, "--llm-report=same.json", "--llm-report-md=same.md")
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["*test_answer*m*seq */20 gate *"])
    markdown = (suite.path / "same.md").read_text()
    assert "`gate`: 1 tests were stopped by the baseline gate once a drop was unlikely" in markdown
    doc = report(suite.path / "same.json")
    row, compared = doc["tests"][0], doc["baseline"]["rows"][0]
    stop = row["gate_stop"]
    assert stop["baseline"] == [20, 20] and stop["passed"] == stop["valid"] == stop["at"]
    assert row["run"] == stop["at"] < 20 and not compared["regressed"]
    assert compared["p_value"] == drop_p_value(20, 20, stop["passed"], stop["valid"]) > ALPHA
    gateway.add_model("m", Cycle(["PASS"]))
    suite.runpytest(*args, "--llm-update-baseline", "--llm-report=writing.json")
    writing = report(suite.path / "writing.json")["tests"][0]
    assert "gate_stop" not in writing and writing["run"] > stop["at"]  # baselines keep their size
    gateway.add_model("m", Cycle(["PASS", "PASS", "FAIL"]))
    dropped = suite.runpytest(*args, "--llm-report=drop.json")
    assert dropped.ret == pytest.ExitCode.TESTS_FAILED
    doc = report(suite.path / "drop.json")
    assert "gate_stop" not in doc["tests"][0] and doc["baseline"]["regressions"] == 1
