"""Tests for pytest_llmeval.verdict.suite: exact guarantees of suite gates and the paired test."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from functools import cache
from itertools import combinations_with_replacement, product

import pytest

from pytest_llmeval.verdict.stats import (
    Mode,
    clopper_pearson,
    mcnemar_exact,
    pass_threshold,
)
from pytest_llmeval.verdict.suite import (
    Population,
    paired_regression,
    suite_verdict,
)

Cases = tuple[tuple[bool, ...], ...]
Distribution = tuple[tuple[Fraction, Fraction], ...]  # (per-case rate, probability)


def case(passes: int, samples: int) -> tuple[bool, ...]:
    return (True,) * passes + (False,) * (samples - passes)


def spread(total: int, n: int, m: int) -> Cases:
    """n cases of m samples with `total` passes, filled case by case."""
    return tuple(case(min(m, max(0, total - i * m)), m) for i in range(n))


def poly_mul(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def total_passes_pmf(rates: Sequence[Fraction], m: int | Sequence[int]) -> list[Fraction]:
    """Exact Poisson-binomial pmf of the passes of fixed cases with these rates and samples."""
    samples = [m] * len(rates) if isinstance(m, int) else list(m)
    den = math.lcm(*(r.denominator for r in rates))
    poly = [1]
    for r, k in zip(rates, samples, strict=True):
        a = int(r * den)
        poly = poly_mul(poly, [math.comb(k, i) * a**i * (den - a) ** (k - i) for i in range(k + 1)])
    return [Fraction(c, den ** sum(samples)) for c in poly]


@cache
def vectors(n: int, mean: Fraction) -> tuple[tuple[Fraction, ...], ...]:
    """Every multiset of n rates on the grid of multiples of 1/20 with this mean (0, 1 too)."""
    target = n * mean * 20
    return tuple(
        tuple(Fraction(j, 20) for j in vector)
        for vector in combinations_with_replacement(range(21), n)
        if sum(vector) == target
    )


# --- the fixed population: Hoeffding-clipped exact binomial over samples ---------------------

FIXED_RATES = (0.5, 0.7, 0.8, 0.9, 0.95)


@pytest.mark.parametrize("pass_rate", FIXED_RATES)
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_fixed_false_verdicts_are_at_most_alpha_for_any_mix_of_case_rates(
    pass_rate: float, confidence: float
) -> None:
    p0, alpha = Fraction(str(pass_rate)), 1 - Fraction(str(confidence))
    checked = 0
    for n, m in product(range(1, 5), range(1, 6)):
        outcomes = {
            mode: [
                suite_verdict(spread(s, n, m), pass_rate, confidence, mode, "fixed").verdict
                for s in range(n * m + 1)
            ]
            for mode in ("not_worse", "proven")
        }
        for rates in vectors(n, p0):
            pmf = total_passes_pmf(rates, m)
            false_fail = sum(
                p for p, v in zip(pmf, outcomes["not_worse"], strict=True) if v == "failed"
            )
            false_pass = sum(
                p for p, v in zip(pmf, outcomes["proven"], strict=True) if v == "passed"
            )
            assert false_fail <= alpha, (n, m, rates)
            assert false_pass <= alpha, (n, m, rates)
            checked += 1
    assert checked > 50


def test_fixed_guarantee_holds_where_the_plain_binomial_test_would_break_it() -> None:
    # Four one-sample cases, true rates 1, 1, 1, 0.8: mean 0.95. The plain binomial threshold
    # would fail the suite whenever a sample fails, with probability 0.2 > alpha = 0.19.
    pmf = total_passes_pmf((Fraction(1), Fraction(1), Fraction(1), Fraction(4, 5)), 1)
    plain = sum(pmf[: pass_threshold(4, 0.95, 0.81, "not_worse")])
    fails = [
        suite_verdict(spread(s, 4, 1), 0.95, 0.81, "not_worse", "fixed").verdict == "failed"
        for s in range(5)
    ]
    assert plain == Fraction(1, 5) > 1 - Fraction(81, 100)
    assert sum(p for p, fail in zip(pmf, fails, strict=True) if fail) == 0
    assert fails == [True, True, True, False, False]


def test_fixed_guarantee_with_unequal_samples_is_about_the_sample_weighted_mean() -> None:
    samples, n = (1, 2, 4), 7
    for pass_rate in (0.5, 0.8):
        p0 = Fraction(str(pass_rate))
        fails = [
            suite_verdict(
                tuple(case(min(k, max(0, s - sum(samples[:i]))), k) for i, k in enumerate(samples)),
                pass_rate,
                0.9,
                "not_worse",
                "fixed",
            ).verdict
            == "failed"
            for s in range(n + 1)
        ]
        assert any(fails)
        for grid in product(range(21), repeat=3):
            if sum(k * j for k, j in zip(samples, grid, strict=True)) == n * p0 * 20:
                pmf = total_passes_pmf([Fraction(j, 20) for j in grid], samples)
                false_fail = sum(p for p, fail in zip(pmf, fails, strict=True) if fail)
                assert false_fail <= Fraction(1, 10), grid


@pytest.mark.parametrize("mode", ["not_worse", "proven"])
def test_fixed_gate_on_a_humaneval_sized_suite_is_the_plain_binomial_test(mode: Mode) -> None:
    for samples in (1, 5):
        n = 164 * samples
        t = pass_threshold(n, 0.85, 0.95, mode)
        at = suite_verdict(spread(t, 164, samples), 0.85, 0.95, mode, "fixed")
        below = suite_verdict(spread(t - 1, 164, samples), 0.85, 0.95, mode, "fixed")
        assert (at.verdict, below.verdict) == ("passed", "failed")
        assert at.interval == clopper_pearson(t, n, 0.95)
        assert at.method == f"exact binomial over {n} samples of 164 fixed cases"


def test_fixed_verdict_depends_on_total_passes_not_on_which_cases_pass() -> None:
    together = ((True,) * 5,) * 3 + ((False,) * 5,) * 2
    scattered = tuple(tuple(i < 3 for i in range(5)) for _ in range(5))
    a = suite_verdict(together, 0.8, 0.9, "not_worse", "fixed")
    b = suite_verdict(scattered, 0.8, 0.9, "not_worse", "fixed")
    assert (a.verdict, a.interval, a.samples) == (b.verdict, b.interval, b.samples)


@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_fixed_interval_covers_the_mean_case_rate(confidence: float) -> None:
    alpha = 1 - Fraction(str(confidence))
    for n, m in product(range(1, 4), range(1, 5)):
        intervals = [
            suite_verdict(spread(s, n, m), 0.5, confidence, "observed", "fixed").interval
            for s in range(n * m + 1)
        ]
        for mean in (Fraction(1, 2), Fraction(4, 5), Fraction(19, 20)):
            for rates in vectors(n, mean):
                pmf = total_passes_pmf(rates, m)
                missed = sum(
                    p
                    for p, (lo, hi) in zip(pmf, intervals, strict=True)
                    if not Fraction(lo) <= mean <= Fraction(hi)
                )
                assert missed <= alpha, (n, m, rates)


# --- the sampled population ------------------------------------------------------------------


def per_case_counts(dist: Distribution, m: int) -> list[Fraction]:
    """P(k passes out of m) for a case whose rate is drawn from `dist`."""
    return [
        sum((w * math.comb(m, k) * r**k * (1 - r) ** (m - k) for r, w in dist), Fraction(0))
        for k in range(m + 1)
    ]


def two_point(low: Fraction, high: Fraction, mean: Fraction) -> Distribution:
    weight = (mean - low) / (high - low)
    return ((low, 1 - weight), (high, weight))


def distributions(mean: Fraction) -> list[Distribution]:
    """Per-case rate distributions with this mean: a point mass, and two-point ones at 0 and 1."""
    dists: list[Distribution] = [((mean, Fraction(1)),), two_point(Fraction(0), Fraction(1), mean)]
    dists += [
        two_point(Fraction(0), mean + (1 - mean) / 2, mean),
        two_point(mean / 2, Fraction(1), mean),
    ]
    top = 2 * mean - Fraction(9, 10)
    dists.append(
        (
            (Fraction(0), Fraction(1, 10)),
            (Fraction(1, 2), Fraction(9, 10) - top),
            (Fraction(1), top),
        )
    )
    dists = [d for d in dists if all(0 <= r <= 1 and w >= 0 for r, w in d)]
    assert all(sum(w for _, w in d) == 1 and sum(r * w for r, w in d) == mean for d in dists)
    return dists


def sampled_false_rates(
    n: int, m: int, pass_rate: float, confidence: float
) -> Iterator[tuple[Distribution, Fraction, Fraction, Fraction]]:
    """(distribution, P(false fail), P(false pass), P(interval misses the mean)) for each
    distribution of mean pass_rate, summed exactly over every sequence of per-case pass counts."""
    mean = Fraction(str(pass_rate))
    configs = list(product(range(m + 1), repeat=n))
    judged = {}
    for counts in configs:
        cases = tuple(case(k, m) for k in counts)
        not_worse = suite_verdict(cases, pass_rate, confidence, "not_worse", "sampled")
        proven = suite_verdict(cases, pass_rate, confidence, "proven", "sampled")
        lo, hi = not_worse.interval
        judged[counts] = (
            not_worse.verdict == "failed",
            proven.verdict == "passed",
            not Fraction(lo) <= mean <= Fraction(hi),
        )
    for dist in distributions(mean):
        probs = per_case_counts(dist, m)
        totals = [Fraction(0)] * 3
        for counts in configs:
            p = math.prod((probs[k] for k in counts), start=Fraction(1))
            for i, flag in enumerate(judged[counts]):
                if flag:
                    totals[i] += p
        yield dist, totals[0], totals[1], totals[2]


@pytest.mark.parametrize(("n", "m"), [(2, 2), (3, 3), (3, 4), (5, 2), (4, 3)])
@pytest.mark.parametrize("pass_rate", [0.5, 0.8, 0.9])
def test_sampled_false_verdicts_are_at_most_alpha_with_several_samples_per_case(
    n: int, m: int, pass_rate: float
) -> None:
    for confidence in (0.9, 0.95):
        alpha = 1 - Fraction(str(confidence))
        for dist, false_fail, false_pass, missed in sampled_false_rates(
            n, m, pass_rate, confidence
        ):
            assert false_fail <= alpha, dist
            assert false_pass <= alpha, dist
            assert missed <= alpha, dist


def test_sampled_gate_can_fail_and_pass_small_suites() -> None:
    zeros, ones = (case(0, 3),) * 6, (case(3, 3),) * 6
    assert suite_verdict(zeros, 0.8, 0.95, "not_worse", "sampled").verdict == "failed"
    assert suite_verdict(ones, 0.5, 0.95, "proven", "sampled").verdict == "passed"
    assert suite_verdict(ones, 0.8, 0.95, "not_worse", "sampled").verdict == "passed"


def test_samples_of_sampled_cases_are_not_independent_trials() -> None:
    # Each case is always solved or never (rate 1 w.p. 0.8, else 0): 4 cases x 5 samples are 4
    # trials, not 20. The fixed gate, counting 20 trials, fails such a suite 18% of the time;
    # the sampled gate stays within alpha = 0.05.
    mean, n, m = Fraction(4, 5), 4, 5
    probs = per_case_counts(two_point(Fraction(0), Fraction(1), mean), m)
    false_fail = dict.fromkeys(("fixed", "sampled"), Fraction(0))
    for counts in product(range(m + 1), repeat=n):
        p = math.prod((probs[k] for k in counts), start=Fraction(1))
        cases = tuple(case(k, m) for k in counts)
        for population in ("fixed", "sampled"):
            if suite_verdict(cases, 0.8, 0.95, "not_worse", population).verdict == "failed":
                false_fail[population] += p
    assert false_fail["fixed"] == Fraction(452, 2500)
    assert false_fail["sampled"] <= Fraction(1, 20)


@pytest.mark.parametrize("mode", ["not_worse", "proven"])
def test_sampled_with_one_sample_per_case_is_the_exact_binomial_test_over_cases(mode: Mode) -> None:
    for n in range(1, 26):
        t = pass_threshold(n, 0.8, 0.95, mode)
        for s in range(n + 1):
            result = suite_verdict(spread(s, n, 1), 0.8, 0.95, mode, "sampled")
            assert result.verdict == ("passed" if s >= t else "failed")
            assert result.interval == clopper_pearson(s, n, 0.95)
        p0 = Fraction(4, 5)
        pmf = total_passes_pmf([p0] * n, 1)
        wrong = sum(pmf[:t]) if mode == "not_worse" else sum(pmf[t:])
        assert wrong <= Fraction(1, 20)
    assert result.method == "exact binomial over 25 sampled cases, one sample each"


def test_sampled_interval_is_wider_than_fixed_and_holds_the_observed_rate() -> None:
    cases = tuple(case(5 if i % 5 else 2, 5) for i in range(164))
    fixed = suite_verdict(cases, 0.85, 0.95, "not_worse", "fixed")
    sampled = suite_verdict(cases, 0.85, 0.95, "not_worse", "sampled")
    rate = (131 + 33 * 0.4) / 164
    assert fixed.rate == sampled.rate == pytest.approx(rate)
    assert sampled.interval[0] < fixed.interval[0] < rate < fixed.interval[1] < sampled.interval[1]
    assert all(x * 1000 == round(x * 1000) for x in sampled.interval)
    assert sampled.method == "betting test over the pass rates of 164 sampled cases (820 samples)"


def test_sampled_gate_does_not_depend_on_cases_grouped_by_difficulty() -> None:
    ascending = (case(0, 5),) * 16 + (case(2, 5),) * 33 + (case(5, 5),) * 115
    rate = (33 * 0.4 + 115) / 164
    results = [
        suite_verdict(cases, 0.75, 0.95, "not_worse", "sampled")
        for cases in (ascending, ascending[::-1])
    ]
    for result in results:
        lo, hi = result.interval
        assert lo < rate - 0.05 and rate + 0.05 < hi
        assert result.verdict == "passed"
    assert results[0].interval == pytest.approx(results[1].interval, abs=0.005)


def test_sampled_unequal_samples_per_case_use_per_case_rates() -> None:
    cases = ((True,), (False, False, False, False), (True, True))
    result = suite_verdict(cases, 0.5, 0.95, "observed", "sampled")
    assert result.rate == pytest.approx(2 / 3)
    assert result.samples == 7
    assert result.verdict == "passed"


# --- errors, observed mode, arguments --------------------------------------------------------


@pytest.mark.parametrize("population", ["fixed", "sampled"])
def test_too_few_valid_cases_is_an_error(population: Population) -> None:
    enough = suite_verdict(((True,), (True,), (), ()), 0.5, 0.95, "observed", population)
    assert (enough.verdict, enough.cases, enough.error_cases) == ("passed", 2, 2)
    short = suite_verdict(((True,), (), (), ()), 0.5, 0.95, "observed", population)
    assert (short.verdict, short.cases, short.error_cases, short.rate) == ("error", 1, 3, 1.0)
    empty = suite_verdict((), 0.5, 0.95, "not_worse", population)
    assert (empty.verdict, empty.rate, empty.interval, empty.cases, empty.samples) == (
        "error",
        None,
        (0.0, 1.0),
        0,
        0,
    )


def test_observed_mode_compares_pass_at_1_not_pooled_samples() -> None:
    cases = ((True,), (False, False, False, False))
    result = suite_verdict(cases, 0.5, 0.95, "observed", "fixed")
    assert result.rate == 0.5
    assert result.verdict == "passed"
    assert suite_verdict(cases, 0.51, 0.95, "observed", "fixed").verdict == "failed"
    assert result.method == "observed pass@1 of 2 fixed cases (5 samples)"
    exact = tuple(case(k, 10) for k in (7, 8, 9))
    assert suite_verdict(exact, 0.8, 0.95, "observed", "fixed").verdict == "passed"


BAD_CALLS: list[Callable[[], object]] = [
    lambda: suite_verdict([(True,)], 1.5, 0.95, "not_worse", "fixed"),
    lambda: suite_verdict([(True,)], 0.8, 1.0, "not_worse", "fixed"),
    lambda: suite_verdict([(True,)], 0.8, 0.95, "bogus", "fixed"),  # type: ignore[arg-type]
    lambda: suite_verdict([(True,)], 0.8, 0.95, "not_worse", "bogus"),  # type: ignore[arg-type]
    lambda: paired_regression({}, {}, 0.0),
]


@pytest.mark.parametrize("call", BAD_CALLS)
def test_bad_arguments_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


# --- paired regression -----------------------------------------------------------------------


@cache
def regressed(worse: int, better: int, alpha: float) -> bool:
    base = {f"w{i}": (True,) for i in range(worse)} | {f"b{i}": (False,) for i in range(better)}
    current = {name: (not outcome[0],) for name, outcome in base.items()}
    result = paired_regression(base, current, alpha)
    assert (result.worse, result.better) == (worse, better)
    return result.regressed


def change_probs(k: int, base: Fraction, now: Fraction) -> tuple[Fraction, Fraction]:
    """P(worse), P(better) for a case with k samples a side at these true rates."""
    before = [math.comb(k, i) * base**i * (1 - base) ** (k - i) for i in range(k + 1)]
    after = [math.comb(k, i) * now**i * (1 - now) ** (k - i) for i in range(k + 1)]
    worse = sum((before[i] * after[j] for i in range(k + 1) for j in range(i)), Fraction(0))
    better = sum(
        (before[i] * after[j] for i in range(k + 1) for j in range(i + 1, k + 1)), Fraction(0)
    )
    return worse, better


def false_alarm(k: int, pairs: Sequence[tuple[Fraction, Fraction]], alpha: float) -> Fraction:
    """Exact P(regressed) over every outcome, by dynamic programming on (worse, better)."""
    states = {(0, 0): Fraction(1)}
    for base, now in pairs:
        w, b = change_probs(k, base, now)
        nxt: dict[tuple[int, int], Fraction] = {}
        for (x, y), p in states.items():
            for key, q in (((x + 1, y), w), ((x, y + 1), b), ((x, y), 1 - w - b)):
                nxt[key] = nxt.get(key, Fraction(0)) + p * q
        states = nxt
    return sum((p for (x, y), p in states.items() if regressed(x, y, alpha)), start=Fraction(0))


RATE_SETS = [
    (Fraction(1, 2),) * 12,
    (Fraction(9, 10),) * 6 + (Fraction(1, 2),) * 4 + (Fraction(0),) * 2,
    (Fraction(1),) * 3 + (Fraction(3, 10), Fraction(7, 10)) * 4,
    (Fraction(19, 20), Fraction(1, 20), Fraction(2, 5)) * 3,
]


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_paired_false_alarm_is_at_most_alpha(alpha: float) -> None:
    for k in (1, 2, 3):
        for rates in RATE_SETS:
            assert false_alarm(k, [(r, r) for r in rates], alpha) <= Fraction(str(alpha)), (
                k,
                rates,
            )
            improved = [(r, r + (1 - r) / 2) for r in rates]
            assert false_alarm(k, improved, alpha) <= Fraction(str(alpha)), (k, rates)
    coin_flips = false_alarm(1, [(Fraction(1, 2), Fraction(1, 2))] * 12, alpha)
    assert coin_flips > Fraction(str(alpha)) / 4  # the test does fire under H0, within alpha


def test_paired_test_detects_a_drop_case_by_case() -> None:
    base = {f"t{i}": (True,) * 5 for i in range(20)}
    current = {
        f"t{i}": (True,) * 5 if i % 4 else (True, True, False, True, True) for i in range(20)
    }
    result = paired_regression(base, current, 0.05)
    assert (result.cases, result.worse, result.better, result.ties) == (20, 5, 0, 15)
    assert result.p_value == pytest.approx(1 / 32)
    assert result.regressed
    assert result.base_rate == 1.0
    assert result.rate == pytest.approx(0.95)


def test_paired_test_with_one_sample_per_case_is_one_sided_mcnemar() -> None:
    for worse in range(12):
        for better in range(12):
            base = {f"w{i}": (True,) for i in range(worse)} | {
                f"b{i}": (False,) for i in range(better)
            }
            base |= {"same": (True,)}
            current = {name: (not outcome[0],) for name, outcome in base.items()} | {
                "same": (True,)
            }
            result = paired_regression(base, current, 0.05)
            n = worse + better
            exact = Fraction(sum(math.comb(n, i) for i in range(worse, n + 1)), 2**n)
            assert result.p_value == pytest.approx(float(exact), rel=1e-12)
            if worse > better:
                assert result.p_value == pytest.approx(mcnemar_exact(worse, better) / 2, rel=1e-12)
            assert result.ties == 1


def test_paired_test_compares_each_case_on_its_first_k_samples() -> None:
    base = {"a": (False, False, False, False, True)}
    result = paired_regression(base, {"a": (False,)}, 0.05)
    assert (result.worse, result.better, result.ties) == (0, 0, 1)
    assert result.base_rate == pytest.approx(0.2)
    assert result.rate == 0.0
    flipped = paired_regression(base, {"a": (False, False, False, False, False, True)}, 0.05)
    assert (flipped.worse, flipped.better) == (1, 0)


def test_paired_test_reports_added_and_removed_cases() -> None:
    base = {"kept": (True,), "gone": (True,), "b_errored": (), "old": (False, True)}
    current = {"kept": (False,), "new": (True,), "b_errored": (True,), "old": (), "z_new": ()}
    result = paired_regression(base, current, 0.05)
    assert result.added == ("new", "z_new")
    assert result.removed == ("gone",)
    assert (result.cases, result.worse, result.better, result.ties) == (1, 1, 0, 0)
    assert (result.base_rate, result.rate) == (1.0, 0.0)
    assert result.p_value == 0.5
    nothing = paired_regression({}, {}, 0.05)
    assert (nothing.cases, nothing.p_value, nothing.regressed, nothing.rate) == (
        0,
        1.0,
        False,
        None,
    )
