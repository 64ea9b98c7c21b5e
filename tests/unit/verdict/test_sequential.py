"""Exact operating characteristics of sequential designs, against the figures of issue 17 and
against the binomial distribution."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_llmeval.verdict.sequential import (
    TOLERANCE,
    Design,
    curtailed,
    design_for,
    fixed,
    mean_samples,
    mirror,
    operating,
    truncated_sprt,
)
from pytest_llmeval.verdict.stats import binom_cdf, pass_threshold

MAX_N = 200
RATES = [0.5, 0.6, 0.8, 0.95, 0.99]


def test_the_fixed_design_is_the_binomial_test() -> None:
    design = fixed(30, 19)
    for p in (0.3, 0.8, 0.9):
        result = operating(design, p)
        assert result.failed == pytest.approx(binom_cdf(19, 30, p), abs=1e-12)
        assert result.spent[-1] == pytest.approx(1.0)
        assert result.expected_samples == pytest.approx(30)


def test_curtailment_keeps_the_verdict_and_spends_what_the_issue_says() -> None:
    for p in (0.5, 0.8, 0.95):
        assert operating(curtailed(30, 19), p).failed == pytest.approx(
            operating(fixed(30, 19), p).failed, abs=1e-12
        )
    spent = [round(x, 1) for x in mean_samples(curtailed(30, 19), RATES)]
    assert spent == [21.8, 25.4, 24.9, 21.1, 20.2]


def test_the_truncated_sprt_of_the_issue() -> None:
    design = truncated_sprt(30, 0.8, 0.55, 2.6, -2.1, 19)
    assert round(float(operating(design, 0.8).failed), 4) == 0.0490
    power = [round(float(operating(design, p).failed), 3) for p in (0.5, 0.6, 0.65)]
    assert power == [0.934, 0.709, 0.516]
    assert [round(x, 1) for x in mean_samples(design, RATES)][1:] == [16.1, 13.5, 7.1, 6.2]


def test_exact_in_fractions() -> None:
    design = truncated_sprt(12, 0.8, 0.55, 2.6, -2.1, 6)
    result = operating(design, Fraction(4, 5))
    assert isinstance(result.failed, Fraction)
    assert result.failed + result.passed == 1 and sum(result.spent) == 1
    assert math.isclose(float(result.failed), operating(design, 0.8).failed, abs_tol=1e-12)


def test_quantile_of_samples_spent() -> None:
    result = operating(curtailed(10, 4), 0.99)
    assert result.quantile(0.95) == 5  # five passes settle it almost always


def test_a_design_must_decide_at_its_last_sample() -> None:
    with pytest.raises(ValueError, match="every count must pass or fail"):
        Design((-1, 0), (3, 3))
    with pytest.raises(ValueError, match="one bound per sample"):
        Design((0,), (1, 2))


# Proofs for design_for, independent of its own checks: path counts by dynamic programming in
# integers, the false verdict rate in exact fractions, the power on a bracketing grid in floats.
CONFIDENCES = (0.9, 0.95, 0.99)
PASS_RATES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
MODES = ("not_worse", "proven")
MARGIN = 1e-9  # float sums below are within (n + 5) * 2**-53 < 1e-13 of exact: far inside
GRID = 1 << 10


def stopping_counts(
    design: Design,
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """(k, passes, number of paths) of every state where the design fails, and passes."""
    running, failed, passed = {0: 1}, [], []
    for k in range(1, design.n + 1):
        step: dict[int, int] = {}
        for s, count in running.items():
            step[s] = step.get(s, 0) + count
            step[s + 1] = step.get(s + 1, 0) + count
        running = {}
        for s, count in step.items():
            if s <= design.fail_at[k - 1]:
                failed.append((k, s, count))
            elif s >= design.pass_at[k - 1]:
                passed.append((k, s, count))
            else:
                running[s] = count
    assert not running
    return failed, passed


def exact_probability(states: list[tuple[int, int, int]], p: Fraction) -> Fraction:
    return sum((count * p**s * (1 - p) ** (k - s) for k, s, count in states), start=Fraction(0))


def float_probability(states: list[tuple[int, int, int]], n: int, q: float) -> float:
    """Each term takes at most n + 3 roundings of nonnegative products; fsum rounds once."""
    up, down = [1.0], [1.0]
    for _ in range(n):
        up.append(up[-1] * q)
        down.append(down[-1] * (1.0 - q))
    return math.fsum(count * up[s] * down[k - s] for k, s, count in states)


def fixed_states(n: int, low: int, high: int) -> list[tuple[int, int, int]]:
    return [(n, j, math.comb(n, j)) for j in range(max(low, 0), min(high, n) + 1)]


def power_kept(
    design_states: list[tuple[int, int, int]],
    fixed: list[tuple[int, int, int]],
    n: int,
    lo: float,
    hi: float,
    falling: bool,
) -> bool:
    """design P >= fixed P - TOLERANCE on all of [lo, hi], both monotone in the rate (falling:
    nonincreasing). On [a, b] the design is at least its value at the end where it is lowest
    and the fixed test at most its value at the other end; intervals that fail are halved."""
    todo = [(lo + (hi - lo) * i / 64, lo + (hi - lo) * (i + 1) / 64, 0) for i in range(64)]
    while todo:
        a, b, depth = todo.pop()
        worst_design, best_fixed = (b, a) if falling else (a, b)
        if float_probability(design_states, n, worst_design) >= (
            float_probability(fixed, n, best_fixed) - TOLERANCE + MARGIN
        ):
            continue
        if depth == 20:
            return False
        mid = (a + b) / 2
        todo += [(a, mid, depth + 1), (mid, b, depth + 1)]
    return True


def prove(samples: int, pass_rate: float, confidence: float, mode: str) -> bool:
    """Assert the guarantees of design_for; True when the design is not the curtailed test."""
    design = design_for(samples, pass_rate, confidence, mode)
    assert design.n == samples
    p0, alpha = Fraction(str(pass_rate)), 1 - Fraction(str(confidence))
    t = pass_threshold(samples, pass_rate, confidence, mode)
    failed, passed = stopping_counts(design)
    if mode == "not_worse":
        assert exact_probability(failed, p0) <= alpha
        assert power_kept(failed, fixed_states(samples, 0, t - 1), samples, 0.0, float(p0), True)
        return design != curtailed(samples, t - 1)
    assert exact_probability(passed, p0) <= alpha
    assert power_kept(passed, fixed_states(samples, t, samples), samples, float(p0), 1.0, False)
    return design != mirror(curtailed(samples, samples - t))


@pytest.mark.parametrize("mode", MODES)
def test_design_for_guarantees_at_typical_sizes(mode: str) -> None:
    for samples in (1, 2, 5, 10, 20, 30, 50, 100):
        for pass_rate in PASS_RATES:
            prove(samples, pass_rate, 0.95, mode)


@pytest.mark.slow
@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("pass_rate", PASS_RATES)
@pytest.mark.parametrize("mode", MODES)
def test_design_for_guarantees_for_every_size(
    mode: str, pass_rate: float, confidence: float
) -> None:
    sequential = [prove(n, pass_rate, confidence, mode) for n in range(1, MAX_N + 1)]
    if pass_rate < 0.99 and (mode == "not_worse" or pass_rate <= 0.9):
        assert sum(sequential[49:]) >= 100  # the search finds a design for most sizes


def test_design_for_saves_samples_where_it_matters() -> None:
    design = design_for(30, 0.8, 0.95, "not_worse")
    base = curtailed(30, 19)
    spent = mean_samples(design, [0.5, 0.8, 0.99])
    assert all(
        a < 0.7 * b for a, b in zip(spent, mean_samples(base, [0.5, 0.8, 0.99]), strict=True)
    )


def test_proven_is_the_mirror_of_not_worse() -> None:
    design = design_for(40, 0.8, 0.95, "proven")
    assert operating(design, 0.8).passed <= 0.05
    assert mirror(mirror(design)) == design
    with pytest.raises(ValueError, match="not_worse and proven"):
        design_for(10, 0.8, 0.95, "observed")
