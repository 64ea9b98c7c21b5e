"""Sequential designs over Bernoulli samples, evaluated exactly.

A design stops at sample k (1-based) with "failed" once the passes so far are <= fail_at[k-1],
or with "passed" once they are >= pass_at[k-1]; at k = n one of the two must hold. Dynamic
programming over the passes of the paths still running gives the exact probability of each
verdict and the distribution of the number of samples spent, for any true rate (float or
Fraction, so proofs can be exact).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pytest_llmeval.verdict.stats import Mode, binom_cdf, pass_threshold


@dataclass(frozen=True)
class Design:
    """Stopping bounds per sample count: fail at <= fail_at[k-1], pass at >= pass_at[k-1]."""

    fail_at: tuple[int, ...]
    pass_at: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.fail_at or len(self.fail_at) != len(self.pass_at):
            raise ValueError("fail_at and pass_at need one bound per sample, as many of each")
        if self.fail_at[-1] + 1 < self.pass_at[-1]:
            raise ValueError("at the last sample every count must pass or fail")

    @property
    def n(self) -> int:
        return len(self.fail_at)


@dataclass(frozen=True)
class Operating:
    """What a design does at one true rate: verdict probabilities and samples spent."""

    failed: Any  # float or Fraction, like the rate given
    passed: Any
    spent: tuple[Any, ...]  # spent[k-1] = P(the design stops after exactly k samples)

    @property
    def expected_samples(self) -> Any:
        return sum(k * q for k, q in enumerate(self.spent, start=1))

    def quantile(self, level: float) -> int:
        """The smallest k with P(N <= k) >= level."""
        total = 0.0
        for k, q in enumerate(self.spent, start=1):
            total += float(q)
            if total >= level - 1e-12:
                return k
        return len(self.spent)


def operating(design: Design, p: Any) -> Operating:
    """Exact verdict probabilities and the distribution of samples spent at true rate `p`."""
    running: dict[int, Any] = {0: 1 - p + p}  # passes -> probability, among paths still running
    failed = passed = 0 * p
    spent = []
    for k in range(1, design.n + 1):
        step: dict[int, Any] = {}
        for passes, prob in running.items():
            step[passes + 1] = step.get(passes + 1, 0 * p) + prob * p
            step[passes] = step.get(passes, 0 * p) + prob * (1 - p)
        stopped = 0 * p
        running = {}
        for passes, prob in step.items():
            if passes <= design.fail_at[k - 1]:
                failed += prob
                stopped += prob
            elif passes >= design.pass_at[k - 1]:
                passed += prob
                stopped += prob
            else:
                running[passes] = prob
        spent.append(stopped)
    return Operating(failed, passed, tuple(spent))


def completion(design: Design, k: int, passes: int, outcome: str) -> str:
    """The verdict `design` reaches from `passes` in `k` samples when every later sample has
    `outcome` ("passed" or "failed"): the best and the worst case of a run cut short."""
    step = outcome == "passed"
    for j in range(k + 1, design.n + 1):
        passes += step
        if passes <= design.fail_at[j - 1]:
            return "failed"
        if passes >= design.pass_at[j - 1]:
            return "passed"
    return "failed" if passes <= design.fail_at[-1] else "passed"


@functools.lru_cache(maxsize=1024)
def expected_samples(design: Design, p: float) -> float:
    """The mean number of samples `design` spends at true rate `p`, to one decimal."""
    return round(float(operating(design, p).expected_samples), 1)


def fixed(n: int, fail_below: int) -> Design:
    """The fixed-N test: all n samples, fail when the passes are <= `fail_below`."""
    return Design((-1,) * (n - 1) + (fail_below,), (n + 1,) * (n - 1) + (fail_below + 1,))


def curtailed(n: int, fail_below: int) -> Design:
    """The same verdict, stopped as soon as the remaining samples cannot change it."""
    fail_at = tuple(fail_below - (n - k) for k in range(1, n + 1))
    return Design(fail_at, (fail_below + 1,) * n)


def truncated_sprt(
    n: int, p0: float, p1: float, upper: float, lower: float, fail_below: int
) -> Design:
    """Wald's SPRT of p = p0 (meets the rate) against p = p1 < p0, on the log-likelihood ratio
    of p1 to p0: fail once it reaches `upper`, pass once it reaches `lower` (< 0); curtailed
    against the fixed-N rule `fail_below` at n, which decides at the last sample."""
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))  # per pass, per failure
    fail_at, pass_at = [], []
    base = curtailed(n, fail_below)
    for k in range(1, n + 1):
        # LLR(s) = s*up + (k - s)*down decreases in s (up < 0 < down).
        sprt_fail = max((s for s in range(k + 1) if s * up + (k - s) * down >= upper), default=-1)
        sprt_pass = min(
            (s for s in range(k + 1) if s * up + (k - s) * down <= lower), default=k + 1
        )
        fail_at.append(max(sprt_fail, base.fail_at[k - 1]) if k < n else fail_below)
        pass_at.append(min(sprt_pass, base.pass_at[k - 1]) if k < n else fail_below + 1)
    return Design(tuple(fail_at), tuple(pass_at))


def mean_samples(design: Design, rates: Sequence[float]) -> list[float]:
    return [float(operating(design, p).expected_samples) for p in rates]


TOLERANCE = 0.02  # power a design may lose against the fixed-N test, at any true rate

_MARGIN = 1e-9  # float evaluations are within 1e-12 of the exact values; checks leave this much
_ALTERNATIVES = (1.5, 2.0, 3.0, 4.0, 5.0)  # standard errors below the pass rate
_FAIL_LEVELS = (1.0, 1.3)  # Wald's fail bound log(1 / alpha), scaled
_PASS_LEVELS = (-0.5, 0.0, 0.5)  # pass bound: -(c - 1/2) + this
_SHAPES = tuple(itertools.product(_ALTERNATIVES, _FAIL_LEVELS, _PASS_LEVELS))
_WIDE_UP_TO = 50  # small designs are cheap to build: search more shapes
_WIDE_SHAPES = tuple(
    itertools.product(
        (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0), (0.8, 1.0, 1.3), (-1.0, -0.5, 0.0, 0.5, 1.0)
    )
)
_OFFSETS = (-0.3, -0.2, -0.1, 0.0, 0.1, 0.2)  # true rates the search spends least at
_GRID = 32
_DEPTH = 16

Stop = tuple[int, int, int]  # (samples k, passes s, number of paths that stop there)


def stops(design: Design) -> tuple[tuple[Stop, ...], tuple[Stop, ...]]:
    """Where the design fails and passes, with integer path counts that do not depend on the
    rate: P(stop at k with s passes) = count * p**s * (1 - p)**(k - s)."""
    low, counts = 0, [1]  # counts[i]: paths still running with low + i passes
    failed: list[Stop] = []
    passed: list[Stop] = []
    for k in range(1, design.n + 1):
        step = [*counts, 0]
        for i in range(len(counts)):
            step[i + 1] += counts[i]
        fail_at, pass_at = design.fail_at[k - 1], design.pass_at[k - 1]
        first = last = None
        for i, count in enumerate(step):
            s = low + i
            if s <= fail_at:
                failed.append((k, s, count))
            elif s >= pass_at:
                passed.append((k, s, count))
            elif first is None:
                first = last = i
            else:
                last = i
        if first is None or last is None:
            break
        low, counts = low + first, step[first : last + 1]
    return tuple(failed), tuple(passed)


def weigh(states: Sequence[Stop], p: float, by_samples: bool = False) -> float:
    """Sum of the states' probabilities at rate p (times k with `by_samples`), in floats."""
    n = max((k for k, _, _ in states), default=0)
    up, down = [1.0] * (n + 1), [1.0] * (n + 1)
    for i in range(n):
        up[i + 1] = up[i] * p
        down[i + 1] = down[i] * (1.0 - p)
    if by_samples:
        return math.fsum(k * count * up[s] * down[k - s] for k, s, count in states)
    return math.fsum(count * up[s] * down[k - s] for k, s, count in states)


def exact_weight(states: Sequence[Stop], p: Fraction) -> Fraction:
    """The same sum in exact arithmetic."""
    a, d = p.numerator, p.denominator
    n = max((k for k, _, _ in states), default=0)
    total = sum(count * a**s * (d - a) ** (k - s) * d ** (n - k) for k, s, count in states)
    return Fraction(total, d**n)


def keeps_power(failed: Sequence[Stop], n: int, last_fail: int, p0: float, tol: float) -> bool:
    """P(fail) >= the fixed-N test's P(fail) - tol at every rate in [0, p0].

    Both are nonincreasing in the rate (a design fails a down-set of outcomes), so on [a, b]
    the design fails at least as often as at b and the fixed test at most as often as at a;
    intervals where that bound is not enough are halved.
    """
    design_cache: dict[float, float] = {}
    fixed_cache: dict[float, float] = {}

    def holds(a: float, b: float) -> bool:
        if b not in design_cache:
            design_cache[b] = weigh(failed, b)
        if a not in fixed_cache:
            fixed_cache[a] = binom_cdf(last_fail, n, a)
        return design_cache[b] >= fixed_cache[a] - tol + _MARGIN

    points = [p0 * i / _GRID for i in range(_GRID + 1)]
    if not all(holds(q, q) for q in points):
        return False
    todo = [(a, b, 0) for a, b in itertools.pairwise(points)]
    while todo:
        a, b, depth = todo.pop()
        if holds(a, b):
            continue
        if depth == _DEPTH:
            return False
        mid = (a + b) / 2
        todo += [(a, mid, depth + 1), (mid, b, depth + 1)]
    return True


def _sprt_bounds(
    n: int, p0: float, last_fail: int, sd: float, shape: tuple[float, float, float], alpha: float
) -> tuple[list[int], list[int]]:
    """Early bounds of a truncated SPRT of p0 against p0 - c standard errors, with curtailment."""
    c, fail_level, pass_level = shape
    p1 = max(p0 - c * sd, p0 / 10)
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    upper, lower = -fail_level * math.log(alpha), pass_level + 0.5 - c
    fail_at, pass_at = [], []
    for k in range(1, n):
        # The log-likelihood ratio s*up + (k - s)*down falls as the passes s rise.
        passes = min(math.ceil((lower - k * down) / (up - down) - 1e-12), last_fail + 1)
        fails = max(math.floor((upper - k * down) / (up - down) + 1e-12), last_fail - (n - k))
        pass_at.append(max(passes, 0))
        fail_at.append(min(fails, pass_at[-1] - 1))
    return fail_at, pass_at


def _finish(
    n: int, fail_at: list[int], pass_at: list[int], p0: Fraction, alpha: Fraction
) -> tuple[Design, tuple[tuple[Stop, ...], tuple[Stop, ...]]] | None:
    """Close the early bounds at sample n with the laxest fail bound that keeps
    P(fail at p0) <= alpha exactly, or None when the early failures alone spend more."""
    failed, passed = stops(Design((*fail_at, n), (*pass_at, n + 1)))
    a, d = p0.numerator, p0.denominator
    limit = alpha.numerator * d**n
    spent, last = 0, -1
    for k, s, count in sorted(failed, key=lambda st: (st[0] == n, st[1])):
        spent += count * a**s * (d - a) ** (k - s) * d ** (n - k) * alpha.denominator
        if spent > limit:
            if k < n:
                return None
            break
        if k == n:
            last = s
    design = Design((*fail_at, last), (*pass_at, last + 1))
    return design, (
        tuple(st for st in failed if st[0] < n or st[1] <= last),
        (*passed, *(st for st in failed if st[0] == n and st[1] > last)),
    )


def _relative_samples(
    states: Sequence[Stop], rates: Sequence[float], base: Sequence[float]
) -> float:
    """Expected samples at each rate over the curtailed test's, summed over the rates."""
    return sum(weigh(states, p, by_samples=True) / b for p, b in zip(rates, base, strict=True))


def _not_worse(n: int, p0: Fraction, alpha: Fraction, last_fail: int, tol: float) -> Design:
    """The fastest verified truncated SPRT for the fixed-N rule "fail at <= last_fail passes",
    else that rule curtailed."""
    base_design = curtailed(n, last_fail)
    if last_fail < 0 or last_fail >= n:
        return base_design
    rate = float(p0)
    rates = sorted({min(0.99, max(0.01, rate + x)) for x in _OFFSETS})
    base_failed, base_passed = stops(base_design)
    base = [weigh((*base_failed, *base_passed), p, by_samples=True) for p in rates]
    sd = math.sqrt(rate * (1 - rate) / n)
    ranked: list[tuple[float, int, Design, tuple[Stop, ...]]] = []
    seen: set[Design] = set()
    shapes = _SHAPES if n > _WIDE_UP_TO else _WIDE_SHAPES
    for shape in shapes:
        fail_at, pass_at = _sprt_bounds(n, rate, last_fail, sd, shape, float(alpha))
        finished = _finish(n, fail_at, pass_at, p0, alpha)
        if finished is None or finished[0] in seen:
            continue
        design, (failed, passed) = finished
        seen.add(design)
        score = _relative_samples((*failed, *passed), rates, base)
        ranked.append((score, len(ranked), design, failed))
    ranked.sort()
    for score, _, design, failed in ranked:
        if score >= len(rates):
            break
        if keeps_power(failed, n, last_fail, rate, tol):
            return design
    return base_design


def mirror(design: Design) -> Design:
    """The same design with passes and failures swapped (and so its verdicts)."""
    return Design(
        tuple(k - b for k, b in enumerate(design.pass_at, start=1)),
        tuple(k - b for k, b in enumerate(design.fail_at, start=1)),
    )


@functools.lru_cache(maxsize=256)
def falls_back(samples: int, pass_rate: float, confidence: float, mode: Mode) -> bool:
    """Whether `design_for` gives the curtailed fixed-N test (nothing to gain sequentially)."""
    threshold = pass_threshold(samples, pass_rate, confidence, mode)
    return design_for(samples, pass_rate, confidence, mode) == curtailed(samples, threshold - 1)


@functools.lru_cache(maxsize=256)
def design_for(samples: int, pass_rate: float, confidence: float, mode: Mode) -> Design:
    """The sequential design for a `not_worse` or `proven` verdict over at most `samples`.

    Its false verdict rate at true rate = pass_rate is <= 1 - confidence (checked exactly) and its
    power is the fixed-N test's minus at most TOLERANCE at every rate (checked on a grid with
    a rigorous bound between points); otherwise it is the curtailed fixed-N test.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if mode not in ("not_worse", "proven"):
        raise ValueError(f"sequential designs are for not_worse and proven, got {mode!r}")
    p0 = Fraction(str(pass_rate))
    alpha = 1 - Fraction(str(confidence))
    threshold = pass_threshold(samples, pass_rate, confidence, mode)
    if not 0 < pass_rate < 1:  # a rate of 0 or 1 leaves nothing to weigh: one outcome decides
        return curtailed(samples, threshold - 1)
    if mode == "not_worse":
        return _not_worse(samples, p0, alpha, threshold - 1, TOLERANCE)
    return mirror(_not_worse(samples, 1 - p0, alpha, samples - threshold, TOLERANCE))
