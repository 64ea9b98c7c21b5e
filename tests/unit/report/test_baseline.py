"""Baseline comparison: Fisher's exact test, its false-alarm rate, the gate's stopping rule."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import BaselineError, call_errors
from pytest_llmeval.report.baseline import (
    compare,
    failing,
    gate_text,
    load_report,
    suite_change,
    suite_failures,
    summary_lines,
)
from pytest_llmeval.report.schema import SuiteGate
from pytest_llmeval.report.suites import compare as suite_sections
from pytest_llmeval.verdict.futility import Gate
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.sampling import Classifier, run_sync
from pytest_llmeval.verdict.stats import drop_p_value, false_alarm_rate, regressed

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
    settled = Gate(base_passes, base_n, ALPHA, least, samples)
    for valid in range(samples + 1):
        for remaining in range(samples - valid + 1):
            for passes in range(valid + 1):
                verdicts = {
                    regressed(base_passes, base_n, passes + extra, final, ALPHA)
                    for final in range(max(valid, least), valid + remaining + 1)
                    for extra in range(final - valid + 1)
                }
                assert (settled(passes, valid, remaining) == "settled") == (len(verdicts) <= 1)


def test_gate_keeps_sampling_after_the_threshold_verdict_is_settled() -> None:
    plan = Plan(0.3, 20, 0.95, "not_worse")
    calls = itertools.count()

    def body() -> None:
        assert next(calls) % 2 == 0

    classifier = Classifier(call_errors())
    alone = run_sync(plan, body, 1, classifier)
    assert alone.verdict == "passed" and len(alone.records) < 10
    calls = itertools.count()
    gated = run_sync(plan, body, 1, classifier, Gate(20, 20, ALPHA, 10, 20))
    assert gated.verdict == "passed" and len(gated.records) > len(alone.records)
    valid, passes = len(gated.records), gated.passes
    assert regressed(20, 20, passes, valid, ALPHA)
    assert Gate(20, 20, ALPHA, 10, 20)(passes, valid, 20 - valid) == "settled"
    assert Gate(20, 20, ALPHA, 10, 20)(passes - 1 + 1, valid - 1, 21 - valid) is None


def row(test: str, passed: int, failed: int, prints: list[str]) -> dict[str, Any]:
    return {
        "test": test,
        "model": "m",
        "passed": passed,
        "failed": failed,
        "verdict": "passed",
        "plan": {"confidence": 0.95},
        "fingerprints": prints,
        "samples": [],
    }


def test_compare_lists_regressions_changed_prompts_new_and_gone() -> None:
    old: Any = {"tests": [row("a", 20, 0, ["x"]), row("b", 9, 1, ["y"]), row("gone", 1, 0, ["z"])]}
    new: Any = {"tests": [row("a", 8, 12, ["x"]), row("b", 8, 2, ["y2"]), row("new", 1, 0, ["n"])]}
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


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def case(
    name: str,
    script: str,
    *,
    model: str = "m",
    test: str = "t.py::test_bench",
    suite: bool = True,
    pass_rate: float = 0.8,
) -> Any:
    """A case row of a parametrized test whose samples passed (P), failed (F) or erred (E);
    `suite=True` in its marker unless told otherwise."""
    kinds = {"P": "passed", "F": "failed", "E": "error"}
    plan: dict[str, Any] = {
        "pass_rate": pass_rate, "samples": len(script), "confidence": 0.95,
        "mode": "not_worse", "marked": True,
    }  # fmt: skip
    if suite:
        plan.update(suite=True, population="fixed")
    valid = script.replace("E", "")
    return {
        "test": f"{test}[{name}]",
        "model": model,
        "plan": plan,
        "verdict": "error" if not valid else "failed" if "F" in valid else "passed",
        "passed": valid.count("P"),
        "failed": valid.count("F"),
        "samples": [{"index": i, "outcome": kinds[k]} for i, k in enumerate(script)],
        "metrics": {"cost_usd": None},
        "fingerprints": ["f"],
    }


def doc(rows: list[Any], baseline: Any = None) -> Any:
    """A report of `rows` (with its suite sections), compared with `baseline` if given."""
    report: Any = {"tests": rows, **suite_sections(rows)}
    if baseline is not None:
        report["baseline"] = compare(report, baseline, "base.json")
    return report


def dropped(model: str = "m") -> tuple[list[Any], list[Any]]:
    """Baseline and current cases of a gated suite: 10 cases all right before, 2 now; c10 is
    gone since the baseline and c11 new."""
    before = [case(f"c{i}", "P", model=model) for i in range(11)]
    now = [case(f"c{i}", "P" if i < 2 else "F", model=model) for i in range(10)]
    return before, [*now, case("c11", "P", model=model)]


def test_a_gated_suite_is_compared_case_by_case_in_one_suite_entry() -> None:
    before, now = dropped()
    plain_before, plain_now = (
        row("t.py::test_plain", 10, 0, ["p"]),
        row("t.py::test_plain", 10, 0, ["p"]),
    )
    result = compare(doc([*now, plain_now]), doc([*before, plain_before]), "base.json")
    assert [r["test"] for r in result["rows"]] == ["t.py::test_plain"]  # no case rows
    [suite] = result["suites"]
    assert (suite["suite"], suite["model"], suite["cases"]) == ("t.py::test_bench", "m", 10)
    assert (suite["worse"], suite["better"], suite["ties"]) == (8, 0, 2)
    assert suite["p_value"] == pytest.approx(1 / 2**8)  # sign test: all 8 changes are drops
    assert suite["alpha"] == pytest.approx(0.05) and suite["regressed"]
    assert (suite["baseline_rate"], suite["rate"]) == (1.0, 0.2)
    assert (suite["added"], suite["removed"]) == (["c11"], ["c10"])
    assert result["regressions"] == 1
    assert result["new"] == ["t.py::test_bench[c11] [m]"]
    assert result["gone"] == ["t.py::test_bench[c10] [m]"]


def test_one_suite_entry_per_gated_suite_and_model_and_none_for_plain_suites() -> None:
    worse_before, worse_now = dropped("m")
    better_before = [case(f"c{i}", "F", model="n") for i in range(6)]
    better_now = [case(f"c{i}", "P", model="n") for i in range(6)]
    plain_before = [case(f"p{i}", "PP", test="t.py::test_plain", suite=False) for i in range(3)]
    plain_now = [case(f"p{i}", "FF", test="t.py::test_plain", suite=False) for i in range(3)]
    new_suite = [case(f"q{i}", "P", test="t.py::test_new") for i in range(3)]
    result = compare(
        doc([*worse_now, *better_now, *plain_now, *new_suite]),
        doc([*worse_before, *better_before, *plain_before]),
        "base.json",
    )
    entries = {(s["suite"], s["model"]): s for s in result["suites"]}
    assert sorted(entries) == [("t.py::test_bench", "m"), ("t.py::test_bench", "n")]
    better = entries["t.py::test_bench", "n"]
    assert (better["worse"], better["better"], better["regressed"]) == (0, 6, False)
    assert better["p_value"] == 1.0
    assert sorted(r["test"] for r in result["rows"]) == [
        f"t.py::test_plain[p{i}]" for i in range(3)
    ]
    assert result["regressions"] == 1  # the bench on m; the plain cases are not significant alone
    assert result["new"][-3:] == [f"t.py::test_new[q{i}] [m]" for i in range(3)]


def test_suite_change_and_the_summary_lines_of_a_suite_regression() -> None:
    before, now = dropped()
    comparison = compare(doc(now), doc(before), "base.json")
    [suite] = comparison["suites"]
    text = "pass@1 100.0% -> 20.0% over 10 paired cases: 8 worse, 0 better, p=0.003906"
    assert suite_change(suite) == text + " (1 cases new, 1 gone)"
    assert suite_change({**suite, "added": [], "removed": []}) == text
    assert suite_change({**suite, "added": []}) == text + " (0 cases new, 1 gone)"
    assert suite_change({**suite, "baseline_rate": None, "rate": None}).startswith("pass@1 - -> -")
    lines = summary_lines(comparison)
    assert lines[0] == "baseline base.json: 1 regressions, 0 changed prompts, 1 new, 1 gone"
    regressed = f"REGRESSED suite t.py::test_bench [m]: {text} (1 cases new, 1 gone)"
    assert f"{regressed} (sign test, alpha 0.05)" in lines
    assert "  cases added since the baseline: c11" in lines
    assert "  cases removed since the baseline: c10" in lines


def test_gate_text_names_rate_interval_threshold_and_worst_cases() -> None:
    gate: SuiteGate = {
        "pass_rate": 0.85, "confidence": 0.95, "mode": "not_worse", "population": "fixed",
        "verdict": "failed", "rate": 0.72, "ci": [0.651, 0.782], "cases": 164,
        "error_cases": 0, "samples": 820, "method": "exact binomial", "worst": ["c1 0/5", "c7 1/5"],
    }  # fmt: skip
    assert gate_text(gate) == (
        "pass@1 72.0% (95% CI 65.1%-78.2%) vs pass_rate 0.85 [not_worse, fixed cases]: failed; "
        "worst: c1 0/5, c7 1/5"
    )
    broken: SuiteGate = {**gate, "rate": None, "ci": [0.0, 1.0], "verdict": "error", "worst": []}
    assert gate_text(broken) == (
        "pass@1 - (95% CI 0.0%-100.0%) vs pass_rate 0.85 [not_worse, fixed cases]: error"
    )


def test_suite_failures_name_failed_gates_and_regressed_suites_by_fail_on() -> None:
    before, now = dropped()
    report = doc(now, doc(before))
    [suite_row] = report["suites"]
    failed = f"FAILED suite t.py::test_bench [m]: {gate_text(suite_row['gate'])}"
    [entry] = report["baseline"]["suites"]
    regressed = f"REGRESSED suite t.py::test_bench [m]: {suite_change(entry)}"
    assert suite_row["gate"]["verdict"] == "failed"  # 3/11 against 0.8
    assert suite_failures(report, "threshold") == [failed]
    assert suite_failures(report, "regression") == [regressed]
    assert suite_failures(report, "both") == [failed, regressed]
    steady = doc([case(f"c{i}", "P") for i in range(10)], doc(before))
    assert suite_failures(steady, "both") == []
    assert suite_failures(doc(now), "regression") == []  # no baseline: nothing regressed


def gated_suite(cases_failed: int, error: bool = False) -> list[Any]:
    """Ten cases with a 0.5 gate, some of them failed (and one erred)."""
    rows = [case(f"c{i}", "F" if i < cases_failed else "P", pass_rate=0.5) for i in range(10)]
    if error:
        rows[-1] = case("c9", "E", pass_rate=0.5)
    return rows


@pytest.mark.parametrize(
    ("rows", "fails"),
    [
        # Two cases failed, the suite's gate passed: the run passes.
        (gated_suite(2), {"threshold": False, "both": False, "regression": False}),
        # Nine cases failed: the gate failed, and only the gate fails the run.
        (gated_suite(9), {"threshold": True, "both": True, "regression": False}),
        # A case that erred fails the run even though the gate passed.
        (gated_suite(1, error=True), {"threshold": True, "both": True, "regression": False}),
        # A plain case (no suite=True) that failed fails the run.
        ([*gated_suite(0), case("x", "F", test="t.py::test_plain", suite=False)],
         {"threshold": True, "both": True, "regression": False}),
    ],
)  # fmt: skip
def test_failing_judges_gated_cases_by_their_suite(rows: list[Any], fails: dict[str, bool]) -> None:
    report = doc(rows)
    for fail_on, expected in fails.items():
        assert failing(None, report["tests"], fail_on, report["suites"]) is expected, fail_on


def test_failing_counts_a_suite_regression_when_regressions_count() -> None:
    before = [case(f"c{i}", "P", pass_rate=0.2) for i in range(10)]
    now = [case(f"c{i}", "P" if i < 2 else "F", pass_rate=0.2) for i in range(10)]
    report = doc(now, doc(before))
    assert report["suites"][0]["gate"]["verdict"] == "passed"  # 2/10 meets 0.2
    comparison = report["baseline"]
    assert comparison["regressions"] == 1 and comparison["rows"] == []
    assert failing(comparison, report["tests"], "regression", report["suites"])
    assert failing(comparison, report["tests"], "both", report["suites"])
    assert not failing(comparison, report["tests"], "threshold", report["suites"])
