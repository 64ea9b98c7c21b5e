"""Tests for pytest_llmeval.verdict.judged: Rogan-Gladen correction and its proved guarantees,
checked by exact enumeration of every outcome of the samples and the calibration set."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import pytest

from pytest_llmeval.verdict.judged import (
    Calibration,
    CorrectedVerdict,
    corrected_verdict,
    rogan_gladen,
)
from pytest_llmeval.verdict.stats import Mode, clopper_pearson

F = Fraction
N_SAMPLES, N_POS, N_NEG = 10, 12, 12
ALPHAS = (F(1, 20), F(1, 5))
TRUE_P = (F(0), F(1, 10), F(3, 10), F(1, 2), F(7, 10), F(9, 10), F(1))
TRUE_SE = (F(1, 2), F(4, 5), F(19, 20), F(1))
TRUE_SP = (F(1, 2), F(7, 10), F(9, 10), F(1))


def pmf(n: int, p: Fraction) -> list[Fraction]:
    """Exact Bin(n, p) probabilities."""
    return [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]


@functools.cache
def outcomes(alpha: Fraction, mode: Mode) -> dict[tuple[int, int, int], CorrectedVerdict]:
    """The result for every (passes, true_pos, true_neg), which does not depend on the truth."""
    return {
        (k, tp, tn): corrected_verdict(
            k,
            N_SAMPLES,
            Calibration(tp, N_POS - tp, tn, N_NEG - tn),
            0.5 if mode == "observed" else 0.8,
            1.0 - float(alpha),
            mode,
        )
        for k in range(N_SAMPLES + 1)
        for tp in range(N_POS + 1)
        for tn in range(N_NEG + 1)
    }


def probability(
    results: dict[tuple[int, int, int], CorrectedVerdict],
    p: Fraction,
    se: Fraction,
    sp: Fraction,
    event: Callable[[CorrectedVerdict], bool],
) -> Fraction:
    """Exact P(event(result)) with three independent binomials: judged passes, Se and Sp."""
    q = p * se + (1 - p) * (1 - sp)
    pk, ppos, pneg = pmf(N_SAMPLES, q), pmf(N_POS, se), pmf(N_NEG, sp)
    return sum(
        (pk[k] * ppos[tp] * pneg[tn] for (k, tp, tn), r in results.items() if event(r)),
        F(0),
    )


def misses(p: Fraction) -> Callable[[CorrectedVerdict], bool]:
    """The interval leaves out the true rate p."""
    return lambda r: not r.interval[0] <= p <= r.interval[1]


def upper_below(p: Fraction) -> Callable[[CorrectedVerdict], bool]:
    """The upper bound falls below the true rate p."""
    return lambda r: r.interval[1] < p


def lower_above(p: Fraction) -> Callable[[CorrectedVerdict], bool]:
    """The lower bound rises above the true rate p."""
    return lambda r: r.interval[0] > p


def test_rogan_gladen_known_numbers() -> None:
    assert rogan_gladen(0.62, 0.9, 0.8) == pytest.approx(0.6)
    assert rogan_gladen(0.15, 0.9, 0.8) == 0.0
    assert rogan_gladen(0.95, 0.9, 0.8) == 1.0
    assert rogan_gladen(0.5, 0.5, 0.5) is None
    result = corrected_verdict(62, 100, Calibration(90, 10, 80, 20), 0.5, 0.95, "observed")
    assert result.judged_rate == pytest.approx(0.62)
    assert result.corrected_rate == pytest.approx(0.6)
    assert result.verdict == "passed"
    lower, upper = result.interval
    assert lower < 0.6 < upper


def test_calibration_rates() -> None:
    calibration = Calibration(true_pos=90, false_neg=10, true_neg=80, false_pos=20)
    assert calibration.sensitivity == pytest.approx(0.9)
    assert calibration.specificity == pytest.approx(0.8)
    assert Calibration(0, 0, 3, 1).sensitivity is None
    assert Calibration(3, 1, 0, 0).specificity is None
    with pytest.raises(ValueError, match="calibration counts"):
        Calibration(-1, 0, 0, 0)


@pytest.mark.parametrize(("passes", "valid"), [(0, 30), (21, 30), (30, 30), (140, 200)])
def test_perfect_judge_matches_clopper_pearson(passes: int, valid: int) -> None:
    perfect = Calibration(true_pos=100_000, false_neg=0, true_neg=100_000, false_pos=0)
    result = corrected_verdict(passes, valid, perfect, 0.5, 0.95, "observed")
    plain = clopper_pearson(passes, valid, 1 - 0.05 / 3)
    assert result.corrected_rate == pytest.approx(passes / valid)
    assert result.interval == pytest.approx(plain, abs=1e-3)


def test_interval_is_wider_than_ignoring_the_judge_errors() -> None:
    result = corrected_verdict(62, 100, Calibration(90, 10, 80, 20), 0.5, 0.95, "observed")
    naive = clopper_pearson(62, 100, 0.95)
    assert result.interval[1] - result.interval[0] > naive[1] - naive[0]


@pytest.mark.parametrize("mode", ["not_worse", "proven", "observed"])
def test_uninformative_judge_is_an_error(mode: Mode) -> None:
    result = corrected_verdict(60, 100, Calibration(55, 45, 50, 50), 0.5, 0.95, mode)
    assert result.verdict == "error"
    assert "not informative" in result.method
    assert result.interval == (0.0, 1.0)


def test_few_calibration_items_are_an_error() -> None:
    result = corrected_verdict(60, 100, Calibration(3, 0, 3, 0), 0.5, 0.95, "not_worse")
    assert result.verdict == "error"
    no_positives = Calibration(0, 0, 50, 0)
    assert corrected_verdict(60, 100, no_positives, 0.5, 0.95, "observed").verdict == "error"


def test_no_valid_samples_is_an_error() -> None:
    result = corrected_verdict(0, 0, Calibration(90, 10, 80, 20), 0.5, 0.95, "not_worse")
    assert result.verdict == "error"
    assert result.judged_rate is None


@pytest.mark.parametrize(
    ("passes", "mode", "expected"),
    [
        (95, "not_worse", "passed"),
        (40, "not_worse", "failed"),
        (99, "proven", "passed"),
        (80, "proven", "failed"),
        (80, "observed", "passed"),
        (70, "observed", "failed"),
    ],
)
def test_modes(passes: int, mode: Mode, expected: str) -> None:
    # Se = 0.95, Sp = 0.9: judged 80/100 corrects to 0.8235, judged 70/100 to 0.7059.
    calibration = Calibration(190, 10, 180, 20)
    result = corrected_verdict(passes, 100, calibration, 0.75, 0.95, mode)
    assert result.verdict == expected


def test_bad_arguments() -> None:
    calibration = Calibration(9, 1, 9, 1)
    with pytest.raises(ValueError, match="passes"):
        corrected_verdict(5, 4, calibration, 0.5, 0.95, "observed")
    with pytest.raises(ValueError, match="pass_rate"):
        corrected_verdict(1, 4, calibration, 1.5, 0.95, "observed")
    with pytest.raises(ValueError, match="confidence"):
        corrected_verdict(1, 4, calibration, 0.5, 1.0, "observed")
    with pytest.raises(ValueError, match="mode"):
        corrected_verdict(1, 4, calibration, 0.5, 0.95, "sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_two_sided_coverage_exact(alpha: Fraction) -> None:
    results = outcomes(alpha, "observed")
    for p, se, sp in itertools.product(TRUE_P, TRUE_SE, TRUE_SP):
        miss = probability(results, p, se, sp, misses(p))
        assert miss <= alpha, (p, se, sp, float(miss))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_one_sided_ends_cover_exact(alpha: Fraction) -> None:
    upper_results, lower_results = outcomes(alpha, "not_worse"), outcomes(alpha, "proven")
    for p, se, sp in itertools.product(TRUE_P, TRUE_SE, TRUE_SP):
        above = probability(upper_results, p, se, sp, upper_below(p))
        below = probability(lower_results, p, se, sp, lower_above(p))
        assert above <= alpha, (p, se, sp, float(above))
        assert below <= alpha, (p, se, sp, float(below))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_false_verdicts_bounded_exact(alpha: Fraction) -> None:
    # outcomes() uses pass_rate 0.8 for the one-sided modes; the truth sits on the boundary.
    pass_rate = F(4, 5)
    for se, sp in itertools.product(TRUE_SE, TRUE_SP):
        failed = probability(
            outcomes(alpha, "not_worse"), pass_rate, se, sp, lambda r: r.verdict == "failed"
        )
        passed = probability(
            outcomes(alpha, "proven"), pass_rate, se, sp, lambda r: r.verdict == "passed"
        )
        assert failed <= alpha, (se, sp, float(failed))
        assert passed <= alpha, (se, sp, float(passed))


def test_enumeration_is_not_vacuous() -> None:
    # With an accurate judge most outcomes give a verdict, and a bad model is caught.
    results = outcomes(F(1, 5), "not_worse")
    errors = probability(results, F(1, 10), F(1), F(1), lambda r: r.verdict == "error")
    caught = probability(results, F(1, 10), F(1), F(1), lambda r: r.verdict == "failed")
    assert errors < F(1, 2)
    assert caught > F(1, 2)
    coin = probability(results, F(1, 2), F(1, 2), F(1, 2), lambda r: r.verdict == "error")
    assert coin > F(9, 10)
