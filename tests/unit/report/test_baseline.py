"""Baseline comparison: Fisher's exact test, its false-alarm rate, the gate's stopping rule."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import BaselineError, call_errors
from pytest_llmeval.report.baseline import compare, load_report
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


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
