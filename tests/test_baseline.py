"""Baseline gate: the exact test, its false-alarm rate, the stopping rule, and the plugin gate."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import BaselineError, call_errors
from pytest_llmeval.report.baseline import compare, load_report
from pytest_llmeval.testing import Cycle, FakeGateway
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.sampling import Classifier, run_sync
from pytest_llmeval.verdict.stats import drop_p_value, false_alarm_rate, gate, regressed

ALPHA = 0.05


def enumerated_p_value(base_passes: int, base_n: int, passes: int, n: int) -> Fraction:
    """P(current passes <= observed) when the observed passes are dealt out at random."""
    total = base_passes + passes
    hits = count = 0
    for chosen in itertools.combinations(range(base_n + n), total):
        count += 1
        hits += sum(1 for i in chosen if i >= base_n) <= passes
    return Fraction(hits, count)


@pytest.mark.parametrize(
    ("base_passes", "base_n", "passes", "n"),
    [(5, 5, 1, 5), (4, 6, 2, 5), (3, 3, 3, 3), (0, 4, 0, 4), (6, 7, 0, 3), (2, 5, 4, 5)],
)
def test_p_value_matches_enumeration(base_passes: int, base_n: int, passes: int, n: int) -> None:
    exact = enumerated_p_value(base_passes, base_n, passes, n)
    assert drop_p_value(base_passes, base_n, passes, n) == pytest.approx(float(exact), rel=1e-12)


def test_p_value_edges_and_bad_counts() -> None:
    assert drop_p_value(0, 0, 3, 5) == 1.0 and drop_p_value(3, 5, 0, 0) == 1.0
    assert drop_p_value(20, 20, 10, 20) < 0.001
    with pytest.raises(ValueError, match="bad counts"):
        drop_p_value(6, 5, 0, 5)


def test_false_alarm_rate_at_30_samples_is_at_most_alpha() -> None:
    """Same true rate in both runs: the gate fires with probability <= alpha, for every rate."""
    grid = [i / 1000 for i in range(1, 1000)]
    worst = max(false_alarm_rate(30, 30, p, ALPHA) for p in grid)
    assert worst <= ALPHA
    assert 0.027 < worst < 0.029  # Fisher is conservative: 0.0280 at p = 0.696
    assert false_alarm_rate(30, 30, 0.0, ALPHA) == 0.0


def test_a_real_drop_is_detected_at_30_samples() -> None:
    assert regressed(28, 30, 20, 30, ALPHA)
    assert not regressed(28, 30, 25, 30, ALPHA)  # noise, not a drop


@pytest.mark.parametrize(("base_passes", "base_n"), [(10, 10), (7, 10), (3, 10), (0, 10)])
def test_gate_is_settled_exactly_when_no_completion_flips_the_verdict(
    base_passes: int, base_n: int
) -> None:
    samples, least = 10, 5
    settled = gate(base_passes, base_n, ALPHA, least)
    for valid in range(samples + 1):
        for remaining in range(samples - valid + 1):
            for passes in range(valid + 1):
                verdicts = {
                    regressed(base_passes, base_n, passes + extra, final, ALPHA)
                    for final in range(max(valid, least), valid + remaining + 1)
                    for extra in range(final - valid + 1)
                }
                assert settled(passes, valid, remaining) == (len(verdicts) <= 1)


def test_gate_keeps_sampling_after_the_threshold_verdict_is_settled() -> None:
    plan = Plan(0.3, 20, 0.95, "not_worse")
    calls = itertools.count()

    def body() -> None:
        assert next(calls) % 2 == 0

    classifier = Classifier(call_errors())
    alone = run_sync(plan, body, 1, classifier)
    assert alone.verdict == "passed" and len(alone.records) < 10
    calls = itertools.count()
    gated = run_sync(plan, body, 1, classifier, gate(20, 20, ALPHA, 10))
    assert gated.verdict == "passed" and len(gated.records) > len(alone.records)
    valid, passes = len(gated.records), gated.passes
    assert regressed(20, 20, passes, valid, ALPHA)
    assert gate(20, 20, ALPHA, 10)(passes, valid, 20 - valid)
    assert not gate(20, 20, ALPHA, 10)(passes - 1 + 1, valid - 1, 21 - valid)


def row(test: str, passed: int, failed: int, prints: list[str]) -> dict[str, Any]:
    return {
        "test": test,
        "model": "m",
        "passed": passed,
        "failed": failed,
        "verdict": "passed",
        "plan": {"confidence": 0.95},
        "fingerprints": prints,
    }


def test_compare_lists_regressions_changed_prompts_new_and_gone() -> None:
    old = {"tests": [row("a", 20, 0, ["x"]), row("b", 9, 1, ["y"]), row("gone", 1, 0, ["z"])]}
    new = {"tests": [row("a", 8, 12, ["x"]), row("b", 8, 2, ["y2"]), row("new", 1, 0, ["n"])]}
    result = compare(new, old, "base.json")
    by_test = {r["test"]: r for r in result["rows"]}
    assert by_test["a"]["regressed"] and not by_test["a"]["prompt_changed"]
    assert not by_test["b"]["regressed"] and by_test["b"]["prompt_changed"]
    assert result["regressions"] == 1 and result["changed_prompts"] == 1
    assert result["new"] == ["new [m]"] and result["gone"] == ["gone [m]"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a JSON report"),
        ('{"schema": "other"}', "not a pytest-llmeval report"),
        ('{"schema": "pytest-llmeval/report", "version": 99}', "report version 99"),
        ('{"schema": "pytest-llmeval/report", "version": 1, "tests": [1]}', "'tests' must be"),
    ],
)
def test_bad_baseline_files_are_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "base.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=problem) as info:
        load_report(path)
    assert str(path) in str(info.value)


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
