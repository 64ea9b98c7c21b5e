"""Suite gates: one hypothesis about a whole parametrized test, the case being the unit.

A case brings the outcomes of its valid samples; the suite's rate is pass@1, the mean over cases
of the per-case pass rate. Two populations give two questions:

* ``"fixed"``: is the mean true rate of *these* cases at least ``pass_rate``? Only the sampling
  is random. This is the natural gate for a benchmark in CI: HumanEval is the same 164 tasks on
  every run, the claim is about them, and the paired regression against a baseline below asks
  the same kind of question about the same cases. Every sample is an independent trial, so
  164 x 5 samples count as 820 trials (Hoeffding's bound makes that exact, see `suite_verdict`).
* ``"sampled"``: the cases are draws from a population of tasks like these, and the question is
  about the population's mean rate. Samples of one case are correlated (a task that is hard
  stays hard), so 164 x 5 samples are *not* 820 independent trials: with several samples per
  case the test is a betting test over the 164 per-case rates.

Every guarantee assumes that which samples and cases end up valid, and their number, does not
depend on the outcomes (errors unrelated to right or wrong answers, no early stopping per case).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pytest_llmeval.verdict.stats import (
    _OBSERVED_EPS,
    _SLACK,
    Mode,
    Verdict,
    _first_true,
    binom_sf,
    check_verdict_args,
    clopper_pearson,
    min_valid_samples,
    pass_threshold,
)

Population = Literal["fixed", "sampled"]
POPULATIONS: tuple[str, ...] = ("fixed", "sampled")

# Largest fraction of the capital a bet may risk, so every factor stays >= 1 - _MAX_RISK > 0.
_MAX_RISK = 0.75
# The betting interval is computed on the grid of multiples of 1 / _GRID, rounded outward.
_GRID = 1000
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class SuiteVerdict:
    """The verdict on a suite, its pass@1, and an interval for the population's rate."""

    verdict: Verdict
    rate: float | None
    interval: tuple[float, float]
    cases: int
    error_cases: int
    samples: int
    population: Population
    method: str


@dataclass(frozen=True)
class SuiteRegression:
    """Exact paired sign test of "the suite got worse", case by case against the baseline."""

    cases: int
    worse: int
    better: int
    ties: int
    p_value: float
    regressed: bool
    base_rate: float | None
    rate: float | None
    added: tuple[str, ...]
    removed: tuple[str, ...]


def _check(pass_rate: float, confidence: float, mode: str, population: str) -> None:
    check_verdict_args(pass_rate, confidence, mode)
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {POPULATIONS}, got {population!r}")


def suite_verdict(
    cases: Sequence[Sequence[bool]],
    pass_rate: float,
    confidence: float,
    mode: Mode,
    population: Population,
) -> SuiteVerdict:
    """Judge a suite from each case's valid sample outcomes (in sample order; empty: error case).

    "error" when fewer than `min_valid_samples(len(cases))` cases have a valid sample. Otherwise,
    with alpha = 1 - confidence, `not_worse` fails a suite whose true rate is >= pass_rate with
    probability <= alpha, `proven` passes one whose true rate is <= pass_rate with probability
    <= alpha, and `observed` compares pass@1 with pass_rate.

    ``"fixed"``: the true rate is the mean of the cases' true rates p_i, weighted by their valid
    samples (pass@1 when every case has as many). Given the cases, the N samples are independent
    Bernoulli(p_i), so the passes S are Poisson-binomial with mean N * pbar, and Hoeffding (1956)
    bounds its tails by Bin(N, pbar)'s: P(S <= c) <= P(Bin(N, pbar) <= c) for c <= N * pbar - 1,
    and the mirror image for c >= N * pbar + 1. The test is the exact binomial test on (S, N)
    with its critical value clipped to those ranges, so it holds for any mix of case rates. The
    interval is Clopper-Pearson on (S, N) widened to at least (S - 1) / N .. (S + 1) / N, which
    inverts the same clipped tests.

    ``"sampled"``: the true rate is the mean per-case rate of the population the cases were
    drawn from, independently. With one valid sample per case those samples are iid Bernoulli,
    and the exact binomial test over cases is exact. Otherwise the per-case rates r_i in [0, 1]
    are independent with that mean (also with unequal samples per case), and the test is a
    betting test (Waudby-Smith and Ramdas 2023): the capital prod(1 + lambda_i * (pass_rate -
    r_i)) for `not_worse` (r_i - pass_rate for `proven`), with each bet lambda_i >= 0 chosen
    before seeing r_i and capped so every factor stays positive, is a nonnegative supermartingale
    under the null hypothesis; the test rejects once it reaches 1 / alpha, which by Ville's
    inequality happens with probability <= alpha. The cases are taken in a fixed interleaved
    order (`_interleaved`), not in list order. The interval inverts that test at alpha / 2 a
    side over the grid of multiples of 0.001, rounded outward.
    """
    _check(pass_rate, confidence, mode, population)
    valid = [tuple(case) for case in cases if len(case) > 0]
    error_cases = len(cases) - len(valid)
    passes = sum(sum(case) for case in valid)
    samples = sum(len(case) for case in valid)
    rates = [sum(case) / len(case) for case in valid]
    rate = sum(rates) / len(rates) if rates else None
    alpha = 1.0 - confidence
    n = len(valid)

    single = all(len(case) == 1 for case in valid)
    if population == "fixed":
        interval = _fixed_interval(passes, samples, confidence) if valid else (0.0, 1.0)
        method = f"exact binomial over {samples} samples of {n} fixed cases"
    elif single:
        interval = clopper_pearson(passes, n, confidence)
        method = f"exact binomial over {n} sampled cases, one sample each"
    else:
        interval = _betting_interval(tuple(rates), confidence)
        method = f"betting test over the pass rates of {n} sampled cases ({samples} samples)"

    verdict: Verdict
    if rate is None or n < min_valid_samples(len(cases)):
        verdict = "error"
    elif mode == "observed":
        verdict = "passed" if rate >= pass_rate - _OBSERVED_EPS else "failed"
        method = f"observed pass@1 of {n} {population} cases ({samples} samples)"
    elif population == "fixed":
        verdict = (
            "passed"
            if passes >= _fixed_threshold(samples, pass_rate, confidence, mode)
            else "failed"
        )
    elif single:
        verdict = "passed" if passes >= pass_threshold(n, pass_rate, confidence, mode) else "failed"
    elif mode == "not_worse":
        verdict = "failed" if _Bettor(rates, alpha).rejects(pass_rate, below=True) else "passed"
    else:
        verdict = "passed" if _Bettor(rates, alpha).rejects(pass_rate, below=False) else "failed"
    return SuiteVerdict(verdict, rate, interval, n, error_cases, samples, population, method)


@functools.lru_cache(maxsize=4096)
def _fixed_threshold(n: int, pass_rate: float, confidence: float, mode: Mode) -> int:
    """Fewest passes among n samples of fixed cases for "passed": the binomial threshold, clipped
    so that Hoeffding's bound covers it (a fail needs S <= n * p0 - 1, a pass S >= n * p0 + 1)."""
    binomial = pass_threshold(n, pass_rate, confidence, mode)
    mean = Fraction(pass_rate) * n
    if mode == "not_worse":
        return min(binomial, math.floor(mean))
    return max(binomial, math.ceil(mean) + 1)


@functools.lru_cache(maxsize=4096)
def _fixed_interval(passes: int, n: int, confidence: float) -> tuple[float, float]:
    lo, hi = clopper_pearson(passes, n, confidence)
    return max(0.0, min(lo, (passes - 1) / n)), min(1.0, max(hi, (passes + 1) / n))


def _bet_sizes(rates: Sequence[float], alpha: float) -> list[float]:
    """Predictable bets before the cap: lambda_i uses r_1..r_{i-1} and the number of cases only.

    The plug-in size sqrt(2 log(1/alpha) / (n var)) is the constant bet that best detects a mean
    just at the edge of what n cases can show; var is a running variance with a prior of 1/4.
    """
    n = len(rates)
    scale = 2.0 * math.log(1.0 / alpha) / n
    bets = []
    mean, squares = 0.5, 0.25
    for i, r in enumerate(rates, start=1):
        bets.append(math.sqrt(scale * i / squares))
        squares += (r - mean) ** 2
        mean += (r - mean) / (i + 1)
    return bets


@functools.lru_cache(maxsize=64)
def _interleaved(n: int) -> tuple[int, ...]:
    """Cases 0..n-1 in golden-ratio order (by frac(i * 0.618...)): every stretch of this order
    draws evenly from the whole list, so cases grouped by subject or difficulty do not steer
    the bets. It depends on n only, never on outcomes."""
    return tuple(sorted(range(n), key=lambda i: (i * _GOLDEN) % 1.0))


class _Bettor:
    """Betting capital over the per-case rates, taken in interleaved order."""

    def __init__(self, rates: Sequence[float], alpha: float) -> None:
        self.rates = [rates[i] for i in _interleaved(len(rates))]
        self.bets = _bet_sizes(self.rates, alpha)
        self.level = -math.log(alpha * (1.0 - _SLACK))

    def rejects(self, m: float, below: bool) -> bool:
        """Whether the capital betting that the mean is below m (or above) ever reaches 1 / alpha.

        Under the null hypothesis that happens with probability <= alpha (Ville's inequality).
        Each bet is capped so every factor stays >= 1 - _MAX_RISK; with that cap each factor
        grows with m (below) or shrinks with m (above), so the rejected m form an interval.
        """
        room = 1.0 - m if below else m
        cap = _MAX_RISK / room if room > 0 else math.inf
        sign = 1.0 if below else -1.0
        log_capital = 0.0
        for r, bet in zip(self.rates, self.bets, strict=True):
            log_capital += math.log1p((bet if bet < cap else cap) * sign * (m - r))
            if log_capital >= self.level:
                return True
        return False


@functools.lru_cache(maxsize=256)
def _betting_interval(rates: tuple[float, ...], confidence: float) -> tuple[float, float]:
    """Means not rejected at alpha / 2 a side, on the 1 / _GRID grid rounded outward."""
    bettor = _Bettor(rates, (1.0 - confidence) / 2)

    def above_not_rejected(j: int) -> bool:
        return j == _GRID or not bettor.rejects(j / _GRID, below=False)

    def below_rejected(j: int) -> bool:
        return j == _GRID or bettor.rejects(j / _GRID, below=True)

    lo = _first_true(0, _GRID, above_not_rejected) - 1
    return max(0, lo) / _GRID, _first_true(0, _GRID, below_rejected) / _GRID


def paired_regression(
    base: Mapping[str, Sequence[bool]], current: Mapping[str, Sequence[bool]], alpha: float
) -> SuiteRegression:
    """Exact one-sided sign test that the suite dropped, each case paired with its baseline.

    A case is worse (better) when its passes among its first k = min(base, current) valid
    samples dropped (rose); the p-value is P(X >= worse) for X ~ Bin(worse + better, 1/2), which
    with one sample per case is McNemar's exact one-sided test; `regressed` when p <= alpha.
    It is exact when, for every case, the
    baseline's and the current samples are independent with one rate: comparing equal numbers of
    samples keeps worse and better equally likely. Cases missing on one side are listed in
    `added` / `removed`; cases with no valid sample on a side are neither paired nor listed.
    The rates are pass@1 over the paired cases, on all their valid samples.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    worse = better = ties = 0
    base_rates: list[float] = []
    rates: list[float] = []
    for name in sorted(base.keys() & current.keys()):
        before, now = base[name], current[name]
        k = min(len(before), len(now))
        if k == 0:
            continue
        change = sum(now[:k]) - sum(before[:k])
        worse += change < 0
        better += change > 0
        ties += change == 0
        base_rates.append(sum(before) / len(before))
        rates.append(sum(now) / len(now))
    p = binom_sf(worse, worse + better, 0.5)
    return SuiteRegression(
        cases=len(rates),
        worse=worse,
        better=better,
        ties=ties,
        p_value=p,
        regressed=p <= alpha * (1.0 - _SLACK),
        base_rate=sum(base_rates) / len(base_rates) if base_rates else None,
        rate=sum(rates) / len(rates) if rates else None,
        added=tuple(sorted(current.keys() - base.keys())),
        removed=tuple(sorted(base.keys() - current.keys())),
    )
