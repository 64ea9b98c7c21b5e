"""Tests for pytest_llmeval.verdict.stats: exact guarantees, curtailment soundness, numerics."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.verdict.stats import (
    MODES,
    Mode,
    Verdict,
    binom_cdf,
    binom_sf,
    clopper_pearson,
    final_verdict,
    holm,
    min_valid_samples,
    pass_threshold,
    settled,
    thresholds,
)

CONFIDENCES = (0.9, 0.95, 0.99)
PASS_RATES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
MAX_N = 200
SLACK = Fraction(1, 10**9)


def pmf_numerators(n: int, p: Fraction) -> tuple[list[int], int]:
    """Exact Bin(n, p) pmf as integer numerators over a common denominator."""
    a, d = p.numerator, p.denominator
    b = d - a
    return [math.comb(n, i) * a**i * b ** (n - i) for i in range(n + 1)], d**n


def exact_cdf(k: int, n: int, p: Fraction) -> Fraction:
    nums, den = pmf_numerators(n, p)
    return Fraction(sum(nums[: max(0, k + 1)]), den)


def exact_sf(k: int, n: int, p: Fraction) -> Fraction:
    return 1 - exact_cdf(k - 1, n, p)


@pytest.mark.parametrize("pass_rate", PASS_RATES)
def test_not_worse_false_fail_rate_is_at_most_alpha(pass_rate: float) -> None:
    p0 = Fraction(str(pass_rate))
    better = [p0 + (1 - p0) * j / 4 for j in range(1, 5)]
    for n in range(1, MAX_N + 1):
        for conf in CONFIDENCES:
            alpha = 1 - Fraction(str(conf))
            t = pass_threshold(n, pass_rate, conf, "not_worse")
            fail_probs = []
            for p in [p0, *better]:
                nums, den = pmf_numerators(n, p)
                fail_probs.append(Fraction(sum(nums[:t]), den))
                if p == p0:
                    stricter = Fraction(sum(nums[: t + 1]), den)
                    assert stricter > alpha * (1 - SLACK), (n, conf, "threshold needlessly low")
            assert fail_probs[0] <= alpha, (n, conf, t)
            assert fail_probs == sorted(fail_probs, reverse=True), (n, conf)


@pytest.mark.parametrize("pass_rate", PASS_RATES)
def test_proven_false_pass_rate_is_at_most_alpha(pass_rate: float) -> None:
    p0 = Fraction(str(pass_rate))
    worse = [p0 * j / 4 for j in range(4)]
    for n in range(1, MAX_N + 1):
        for conf in CONFIDENCES:
            alpha = 1 - Fraction(str(conf))
            t = pass_threshold(n, pass_rate, conf, "proven")
            pass_probs = []
            for p in [*worse, p0]:
                nums, den = pmf_numerators(n, p)
                pass_probs.append(Fraction(sum(nums[t:]), den))
                if p == p0 and t > 0:
                    laxer = Fraction(sum(nums[t - 1 :]), den)
                    assert laxer > alpha * (1 - SLACK), (n, conf, "threshold needlessly high")
            assert pass_probs[-1] <= alpha, (n, conf, t)
            assert pass_probs == sorted(pass_probs), (n, conf)


def test_pass_threshold_hand_checked_values() -> None:
    p0, alpha = Fraction(4, 5), Fraction(1, 20)
    expected = min(k for k in range(21) if exact_cdf(k, 20, p0) > alpha)
    assert expected == 13
    assert pass_threshold(20, 0.8, 0.95, "not_worse") == 13
    assert pass_threshold(10, 0.8, 0.95, "observed") == 8
    assert pass_threshold(10, 0.7, 0.95, "observed") == 7
    assert pass_threshold(0, 0.8, 0.95, "not_worse") == 0
    for n in (1, 7, 50):
        assert pass_threshold(n, 1.0, 0.95, "not_worse") == n
        assert pass_threshold(n, 0.0, 0.95, "not_worse") == 0
        assert pass_threshold(n, 1.0, 0.95, "proven") == n + 1
        assert pass_threshold(n, 0.0, 0.95, "observed") == 0


def test_thresholds_table_matches_pass_threshold() -> None:
    table = thresholds(40, 0.9, 0.95, "proven")
    assert table == tuple(pass_threshold(n, 0.9, 0.95, "proven") for n in range(41))
    assert thresholds(40, 0.9, 0.95, "proven") is table


@pytest.mark.parametrize(
    ("samples", "expected"), [(0, 1), (1, 1), (2, 1), (3, 2), (10, 5), (31, 16)]
)
def test_min_valid_samples(samples: int, expected: int) -> None:
    assert min_valid_samples(samples) == expected


def test_final_verdict() -> None:
    table = thresholds(10, 0.8, 0.95, "observed")
    assert final_verdict(4, 4, 10, table) == "error"
    assert final_verdict(4, 5, 10, table) == "passed"
    assert final_verdict(3, 5, 10, table) == "failed"
    assert final_verdict(8, 10, 10, table) == "passed"
    assert final_verdict(7, 10, 10, table) == "failed"


def explore(
    passes: int, valid: int, done: int, samples: int, table: tuple[int, ...], outcomes: str
) -> set[Verdict]:
    """Visit every outcome sequence below this prefix; check settled; return final verdicts."""
    remaining = samples - done
    if remaining == 0:
        verdict = final_verdict(passes, valid, samples, table)
        assert settled(passes, valid, 0, samples, table) == verdict
        return {verdict}
    finals: set[Verdict] = set()
    for outcome in outcomes:
        finals |= explore(
            passes + (outcome == "p"), valid + (outcome != "e"), done + 1, samples, table, outcomes
        )
    decided = finals - {"error"}
    expected = "error" if not decided else decided.pop() if len(decided) == 1 else None
    state = (passes, valid, remaining, samples)
    assert settled(passes, valid, remaining, samples, table) == expected, state
    return finals


CURTAIL_CONFIGS = [
    (mode, rate, conf)
    for mode in MODES
    for rate in (0.5, 0.8, 0.95, 1.0, 0.0)
    for conf in (0.8, 0.95)
]


@pytest.mark.parametrize(("mode", "pass_rate", "confidence"), CURTAIL_CONFIGS)
def test_settled_is_exact_over_every_sequence(
    mode: Mode, pass_rate: float, confidence: float
) -> None:
    for samples in range(1, 9):
        table = thresholds(samples, pass_rate, confidence, mode)
        explore(0, 0, 0, samples, table, "pfe")


@pytest.mark.parametrize(("mode", "pass_rate", "confidence"), CURTAIL_CONFIGS)
def test_curtailment_never_changes_verdict_without_errors(
    mode: Mode, pass_rate: float, confidence: float
) -> None:
    def walk(passes: int, done: int, samples: int, table: tuple[int, ...]) -> set[Verdict]:
        if done == samples:
            return {final_verdict(passes, done, samples, table)}
        finals = walk(passes + 1, done + 1, samples, table) | walk(passes, done + 1, samples, table)
        early = settled(passes, done, samples - done, samples, table)
        assert early is None or finals == {early}, (passes, done, samples)
        return finals

    for samples in range(1, 13):
        walk(0, 0, samples, thresholds(samples, pass_rate, confidence, mode))


def test_settled_error_and_completions_with_too_few_valid_samples() -> None:
    table = thresholds(10, 0.8, 0.95, "not_worse")
    assert settled(3, 3, 1, 10, table) == "error"
    assert settled(3, 3, 2, 10, table) == "passed"
    assert final_verdict(5, 5, 10, table) == "passed"
    assert final_verdict(4, 4, 10, table) == "error"


def test_curtailment_saves_samples() -> None:
    strict = thresholds(30, 1.0, 0.95, "not_worse")
    assert settled(0, 1, 29, 30, strict) == "failed"
    table = thresholds(30, 0.8, 0.95, "not_worse")
    needed = max(table[min_valid_samples(30) :])
    assert needed < 30
    assert settled(needed, needed, 30 - needed, 30, table) == "passed"
    assert settled(needed - 1, needed - 1, 31 - needed, 30, table) is None


SMALL_PS = (0.0, 0.001, 0.1, 0.37, 0.5, 0.8, 0.999, 1.0)


@pytest.mark.parametrize("p", SMALL_PS)
def test_binom_matches_exact_fractions(p: float) -> None:
    exact_p = Fraction(p)
    for n in range(16):
        for k in range(-1, n + 2):
            assert math.isclose(binom_cdf(k, n, p), exact_cdf(k, n, exact_p), rel_tol=1e-12)
            assert math.isclose(binom_sf(k, n, p), exact_sf(k, n, exact_p), rel_tol=1e-12)


def test_binom_edge_cases() -> None:
    assert binom_cdf(-1, 5, 0.5) == 0.0
    assert binom_cdf(5, 5, 0.5) == 1.0
    assert binom_sf(0, 5, 0.5) == 1.0
    assert binom_sf(6, 5, 0.5) == 0.0
    assert binom_cdf(0, 5, 0.0) == 1.0
    assert binom_cdf(4, 5, 1.0) == 0.0
    assert binom_sf(1, 5, 0.0) == 0.0
    assert binom_sf(5, 5, 1.0) == 1.0
    assert binom_cdf(0, 0, 0.3) == 1.0


def test_binom_large_n() -> None:
    n = 50000
    centre = Fraction(math.comb(n, n // 2), 2**n)
    assert math.isclose(binom_cdf(n // 2 - 1, n, 0.5), (1 - centre) / 2, rel_tol=1e-10)
    assert math.isclose(binom_sf(n // 2 + 1, n, 0.5), (1 - centre) / 2, rel_tol=1e-10)
    values = [binom_cdf(k, n, 0.8) for k in range(39000, 41001, 100)]
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in values)
    assert values == sorted(values)
    assert math.isclose(binom_cdf(39800, n, 0.8) + binom_sf(39801, n, 0.8), 1.0, rel_tol=1e-12)
    assert 0.0 < binom_cdf(39000, n, 0.8) < 1e-20


def test_binom_far_tail_relative_accuracy() -> None:
    n, k = 5000, 1700
    term, total = math.comb(n, k) * 3**k * 7 ** (n - k), 0
    for i in range(k, n + 1):
        total += term
        term = term * (n - i) * 3 // ((i + 1) * 7) if i < n else 0
    exact = Fraction(total, 10**n)
    assert 0 < exact < Fraction(1, 10**8)
    assert math.isclose(binom_sf(k, n, 0.3), exact, rel_tol=1e-9)
    assert math.isclose(binom_cdf(n - k, n, 0.7), exact, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (0, 10, (0.0, 0.3085)),
        (5, 10, (0.1871, 0.8129)),
        (10, 10, (0.6915, 1.0)),
        (1, 20, (0.0013, 0.2487)),
    ],
)
def test_clopper_pearson_textbook_values(k: int, n: int, expected: tuple[float, float]) -> None:
    lo, hi = clopper_pearson(k, n, 0.95)
    assert lo == pytest.approx(expected[0], abs=5e-5)
    assert hi == pytest.approx(expected[1], abs=5e-5)


def test_clopper_pearson_empty_sample_is_uninformative() -> None:
    assert clopper_pearson(0, 0, 0.95) == (0.0, 1.0)


@given(st.integers(1, 400), st.data(), st.floats(0.5, 0.999))
def test_clopper_pearson_contains_observed_rate(n: int, data: st.DataObject, conf: float) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = clopper_pearson(k, n, conf)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    if 0 < k < n:
        assert lo < k / n < hi
    wider_lo, wider_hi = clopper_pearson(k, n, (1 + conf) / 2)
    assert wider_lo <= lo and hi <= wider_hi


@given(st.integers(1, 100), st.data(), st.integers(2, 5), st.floats(0.5, 0.999))
def test_clopper_pearson_narrows_with_more_samples(
    n: int, data: st.DataObject, factor: int, conf: float
) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = clopper_pearson(k, n, conf)
    more_lo, more_hi = clopper_pearson(k * factor, n * factor, conf)
    assert more_hi - more_lo < hi - lo


BAD_CALLS = [
    lambda: binom_cdf(0, -1, 0.5),
    lambda: binom_cdf(0, 5, 1.5),
    lambda: binom_sf(0, 5, -0.1),
    lambda: binom_sf(0, 5, math.nan),
    lambda: clopper_pearson(11, 10, 0.95),
    lambda: clopper_pearson(-1, 10, 0.95),
    lambda: clopper_pearson(5, 10, 1.0),
    lambda: clopper_pearson(5, 10, 0.0),
    lambda: pass_threshold(10, 0.8, 0.95, "bogus"),  # type: ignore[arg-type]
    lambda: pass_threshold(-1, 0.8, 0.95, "not_worse"),
    lambda: pass_threshold(10, 1.2, 0.95, "observed"),
    lambda: thresholds(-1, 0.8, 0.95, "not_worse"),
    lambda: min_valid_samples(-1),
    lambda: final_verdict(6, 5, 10, thresholds(10, 0.8, 0.95, "observed")),
    lambda: final_verdict(5, 5, 10, thresholds(9, 0.8, 0.95, "observed")),
    lambda: settled(3, 5, 6, 10, thresholds(10, 0.8, 0.95, "observed")),
]


@pytest.mark.parametrize("call", BAD_CALLS)
def test_bad_arguments_raise_value_error(call: object) -> None:
    assert callable(call)
    with pytest.raises(ValueError):
        call()


def test_holm_adjusts_hand_checked_values() -> None:
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02] and holm([]) == []


@given(st.lists(st.floats(0, 1), max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_what_the_step_down_procedure_rejects(
    p_values: list[float], alpha: float
) -> None:
    """Reject the smallest p-values while p_(k) <= alpha / (m - k); stop at the first that is
    not: exactly the adjusted p-values <= alpha."""
    m = len(p_values)
    rejected = set()
    for k, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[i] * (m - k) > alpha:
            break
        rejected.add(i)
    adjusted = holm(p_values)
    assert {i for i in range(m) if adjusted[i] <= alpha} == rejected
    assert all(a >= p for a, p in zip(adjusted, p_values, strict=True))
