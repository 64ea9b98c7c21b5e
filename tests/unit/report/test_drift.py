"""Drift: the latest run against the pooled earlier runs (exact p-values), Holm across series,
what is not tested and why, and the history command's lines."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_llmeval.report.drift import drifts, history_lines
from pytest_llmeval.report.history import RunInfo, Track
from pytest_llmeval.report.schema import HistoryPoint

RUNS = [1, 2, 3, 4, 5]


def point(run: int, passed: int, valid: int, verdict: str = "passed") -> HistoryPoint:
    return {
        "run": run,
        "created_at": f"2026-05-0{run}T10:00:00+00:00",
        "commit": None,
        "passed": passed,
        "valid": valid,
        "rate": passed / valid if valid else None,
        "ci": [0.0, 1.0],
        "cost_usd": None,
        "verdict": verdict,
    }


def track(
    counts: list[tuple[int, int]],
    test: str = "t::a",
    *,
    prompts: tuple[str | None, ...] | None = None,
    confidence: float = 0.95,
    gated: bool = False,
    first_run: int = 1,
) -> Track:
    points = [point(first_run + i, p, n) for i, (p, n) in enumerate(counts)]
    return Track(
        series={"test": test, "model": "m", "points": points},
        prompts=prompts or ("x",) * len(points),
        confidence=confidence,
        gated=gated,
    )


def hypergeometric_tail(passes: int, valid: int, total: int, size: int) -> Fraction:
    """P(X <= passes) when `valid` of `size` trials are drawn and `total` of them passed."""
    ways = sum(math.comb(total, x) * math.comb(size - total, valid - x) for x in range(passes + 1))
    return Fraction(ways, math.comb(size, valid))


def test_the_latest_run_is_tested_against_the_pooled_earlier_runs_exactly() -> None:
    (drift,) = drifts([track([(5, 5), (5, 5), (1, 5)])], RUNS[:3])
    assert (drift.before_passed, drift.before_valid, drift.before_runs) == (10, 10, 2)
    # 11 passes among 15 trials; the latest run drew 5 of them and got 1 or fewer: 11 / 3003
    assert Fraction(11, 3003) == hypergeometric_tail(1, 5, 11, 15)
    assert drift.p_worse == pytest.approx(11 / 3003, rel=1e-12)
    assert drift.p_better == 1.0  # every earlier run passed: it cannot be worse before
    assert drift.holm_worse == drift.p_worse and drift.direction == "worse"


def test_better_is_the_mirror_and_noise_is_no_drift() -> None:
    better, noise = drifts(
        [track([(1, 5), (0, 5), (5, 5)]), track([(9, 10), (8, 10), (7, 10)], "t::b")], RUNS[:3]
    )
    assert better.p_better == pytest.approx(float(hypergeometric_tail(1, 10, 6, 15)), rel=1e-12)
    assert better.p_worse == 1.0
    assert noise.p_worse == pytest.approx(float(hypergeometric_tail(7, 10, 24, 30)), rel=1e-12)
    assert better.holm_better == pytest.approx(2 * better.p_better)  # the smaller of two
    assert better.direction == "better" and noise.direction is None


def test_holm_across_series_can_withhold_a_flag_one_test_alone_would_raise() -> None:
    drop = [(5, 5), (5, 5), (2, 5)]
    alone = drifts([track(drop)], RUNS[:3])[0]
    assert alone.p_worse == pytest.approx(float(hypergeometric_tail(2, 5, 12, 15)), rel=1e-12)
    assert alone.p_worse == pytest.approx(0.021978, abs=1e-6) and alone.direction == "worse"
    crowd = drifts([track(drop), *(track([(5, 5)] * 3, f"t::{i}") for i in range(3))], RUNS[:3])
    assert crowd[0].p_worse == alone.p_worse
    assert crowd[0].holm_worse == pytest.approx(4 * alone.p_worse)
    assert crowd[0].direction is None


def test_the_window_is_the_runs_of_the_history_just_before_the_latest() -> None:
    counts = [(0, 5), (0, 5), (5, 5), (5, 5), (5, 5)]
    (wide,) = drifts([track(counts)], RUNS, window=4)
    (narrow,) = drifts([track(counts)], RUNS, window=2)
    assert (wide.before_passed, wide.before_valid, wide.before_runs) == (10, 20, 4)
    assert (narrow.before_passed, narrow.before_valid, narrow.before_runs) == (10, 10, 2)
    skipped = track(counts)
    del skipped.series["points"][2:4]  # not in runs 3 and 4
    (gap,) = drifts([skipped], RUNS, window=2)
    assert gap.reason == "no earlier run in the window"
    (reaching,) = drifts([skipped], RUNS, window=3)
    assert (reaching.before_passed, reaching.before_valid, reaching.before_runs) == (0, 5, 1)


def test_alpha_is_the_markers_unless_given() -> None:
    drop = [(5, 5), (5, 5), (2, 5)]  # p_worse 0.022
    strict = drifts([track(drop, confidence=0.99)], RUNS[:3])[0]
    assert strict.alpha == pytest.approx(0.01) and strict.direction is None
    assert drifts([track(drop, confidence=0.99)], RUNS[:3], alpha=0.05)[0].direction == "worse"


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        (track([(5, 5), (1, 5)], first_run=1), "not in the latest run"),
        (track([(5, 5)], first_run=3), "no earlier run"),
        (track([(5, 5), (1, 5)], first_run=2, gated=True), "a gated suite's case"),
        (track([(0, 0), (1, 5)], first_run=2), "no valid samples to compare"),
    ],
)
def test_series_that_are_not_tested_say_why(made: Track, reason: str) -> None:
    (drift,) = drifts([made], RUNS[:3])
    assert drift.reason is not None and drift.reason.startswith(reason)
    assert drift.direction is None


def test_an_erring_latest_run_is_not_tested() -> None:
    made = track([(5, 5), (5, 5)])
    made.series["points"][-1]["verdict"] = "error"
    assert drifts([made], RUNS[:2])[0].reason == "latest verdict error"


def test_a_prompt_change_in_the_window_is_shown() -> None:
    same = drifts([track([(5, 5), (5, 5), (1, 5)], prompts=("a", None, "a"))], RUNS[:3])[0]
    changed = drifts([track([(5, 5), (5, 5), (1, 5)], prompts=("a", "b", "b"))], RUNS[:3])[0]
    assert not same.prompt_changed and changed.prompt_changed


def run(id: int, commit: str | None = None, dirty: bool | None = None) -> RunInfo:
    return RunInfo(id, f"2026-05-0{id}T10:00:00+00:00", commit, "main", dirty, "pytest")


def test_history_lines_show_rates_per_run_drift_and_a_summary() -> None:
    found = drifts(
        [
            track([(10, 10), (10, 10), (10, 10), (2, 10)], prompts=("a", "a", "a", "b")),
            track([(9, 10), (10, 10), (9, 10), (10, 10)], "t::stable"),
            track([(1, 1)], "t::old", first_run=2),
        ],
        RUNS[:4],
    )
    runs = [run(1, "0123456789abcdef"), run(2), run(3), run(4, "fedcba9876543210", True)]
    lines = history_lines(runs, found, 5)
    assert lines[:5] == [
        "runs, oldest first (+: uncommitted changes):",
        "  #1    2026-05-01T10:00:00+00:00  01234567  main pytest",
        "  #2    2026-05-02T10:00:00+00:00  -         main pytest",
        "  #3    2026-05-03T10:00:00+00:00  -         main pytest",
        "  #4    2026-05-04T10:00:00+00:00  fedcba98+ main pytest",
    ]
    assert lines[5] == " " * 13 + "    #1    #2    #3    #4 "
    assert lines[6].startswith("t::a [m]       100%  100%  100%   20%*  latest 2/10, 95% CI 0%-")
    assert lines[6].endswith(
        f"WORSE than 30/30 in 3 earlier runs, p={found[0].p_worse:.3g} "
        f"(Holm {found[0].holm_worse:.3g}), prompt changed"
    )
    assert lines[7].startswith("t::stable [m]   90%  100%   90%  100%   latest 10/10")
    assert ": no drift from 28/30 in 3 earlier runs, p=0.558 (Holm 1)" in lines[7]
    assert lines[8] == (
        "t::old [m]        -  100%     -     -   latest 1/1, 95% CI 0%-100%: "
        "not tested (not in the latest run)"
    )
    assert lines[9] == "* the prompt changed since the series' previous run"
    assert lines[10] == (
        "llmeval history: 1 worse, 0 better, 1 without drift, 1 not tested; latest run #4 "
        "against up to 5 earlier runs pooled, one-sided Fisher exact tests, Holm across 2 "
        "series, alpha 0.05"
    )
