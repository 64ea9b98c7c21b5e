"""Early stopping for the baseline gate: stop once a drop can no longer be shown with fair odds.

The regression verdict is Fisher's exact one-sided test of "the current rate is below the
baseline's" on the samples that ran (`stats.drop_p_value`). With a baseline of `base_passes`
in `base_valid`, a test of at most n samples rejects at the end when its passes are at most
`reject_at_most`. A *futility* stop ends sampling at (passes s, valid t) with the verdict "not
regressed" when Fisher's test does not reject on those t samples and a drop has become
unlikely to be shown by sample n: the chance of ending at most `reject_at_most`, predicted
from s in t (Beta(1/2, 1/2) prior), is at most `level`.

The false-alarm rate stays the fixed-N test's: a futility stop never rejects, so a run rejects
only where Fisher's test on all n samples rejects as well (the other stops are curtailment,
which gives that verdict exactly). What it costs is power: the chance at true rate p of a stop
on a path that would have ended in a rejection, `power_loss`. `futility` picks the largest
level whose loss is at most `TARGET` on a grid of rates; the unit tests prove it at most
`TOLERANCE` on the whole continuum (`loss_bound`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from pytest_llmeval.verdict.stats import binom_cdf, drop_p_value, regressed

# The power a futility stop may cost, at any true rate: the sequential design's tolerance.
TOLERANCE = 0.02
TARGET = 0.018  # the level is chosen against this on a grid, a margin under TOLERANCE
_GRID = tuple(i / 100 for i in range(1, 100))
_STEPS = 12


@dataclass(frozen=True)
class Futility:
    """Where a test with a baseline may stop for futility: with `valid` t < n samples and
    passes >= `stop_from[t]` (n + 1: never)."""

    base_passes: int
    base_valid: int
    samples: int
    alpha: float
    reject_at_most: int  # Fisher's test on all n samples rejects at most this many passes
    stop_from: tuple[int, ...]
    level: float

    def futile(self, passes: int, valid: int) -> bool:
        return valid < self.samples and passes >= self.stop_from[valid]


def _predicted_at_most(k: int, more: int, passes: int, valid: int) -> float:
    """P(at most k passes in `more` samples), beta-binomial with a Beta(1/2, 1/2) prior."""
    if k < 0:
        return 0.0
    if k >= more:
        return 1.0
    a, b = passes + 0.5, valid - passes + 0.5
    base = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) - math.lgamma(a + b + more)
    base += math.lgamma(more + 1)
    total = 0.0
    for j in range(k + 1):
        total += math.exp(
            base
            + math.lgamma(a + j)
            + math.lgamma(b + more - j)
            - math.lgamma(j + 1)
            - math.lgamma(more - j + 1)
        )
    return min(1.0, total)


@functools.lru_cache(maxsize=4096)
def _reject_at_most(base_passes: int, base_valid: int, samples: int, alpha: float) -> int:
    """Most passes in `samples` that Fisher's test still calls a drop (-1: none)."""
    found = -1
    for passes in range(samples + 1):
        if drop_p_value(base_passes, base_valid, passes, samples) > alpha:
            break
        found = passes
    return found


def _bounds(
    base_passes: int, base_valid: int, samples: int, alpha: float, level: float
) -> tuple[int, ...]:
    """stop_from[t] for t = 0 .. n: the fewest passes that are futile (an up-set in passes)."""
    c = _reject_at_most(base_passes, base_valid, samples, alpha)
    never = samples + 1
    bounds = [never] * (samples + 1)

    def futile(passes: int, valid: int) -> bool:
        if passes > c:
            return True
        if drop_p_value(base_passes, base_valid, passes, valid) <= alpha:
            return False
        return _predicted_at_most(c - passes, samples - valid, passes, valid) <= level

    for valid in range(1, samples):
        lo, hi = 0, valid + 1  # the first futile count in 0 .. valid, valid + 1: none
        while lo < hi:
            mid = (lo + hi) // 2
            if futile(mid, valid):
                hi = mid
            else:
                lo = mid + 1
        bounds[valid] = lo if lo <= valid else never
    return tuple(bounds)


def first_entries(design: Futility) -> tuple[tuple[int, int, int], ...]:
    """(valid, passes, paths): the states where a path first enters the futile region, with
    how many pass/fail sequences reach each one without entering it before."""
    n, bounds = design.samples, design.stop_from
    found = []
    current = [1]
    for valid in range(1, n):
        paths = [0] * (valid + 1)
        for passes, count in enumerate(current):
            if count:
                paths[passes] += count
                paths[passes + 1] += count
        for passes in range(bounds[valid], valid + 1):
            if paths[passes]:
                found.append((valid, passes, paths[passes]))
                paths[passes] = 0
        current = paths
    return tuple(found)


def power_loss(
    design: Futility, p: float, entries: tuple[tuple[int, int, int], ...] | None = None
) -> float:
    """P at true rate p of entering the futile region on a path whose n samples would end in a
    rejection: an upper bound on the power that futility stops cost (a stop needs more)."""
    entries = first_entries(design) if entries is None else entries
    n, c = design.samples, design.reject_at_most
    return sum(
        count * p**passes * (1 - p) ** (valid - passes) * binom_cdf(c - passes, n - valid, p)
        for valid, passes, count in entries
        if c - passes >= 0
    )


def loss_bound(
    design: Futility, a: float, b: float, entries: tuple[tuple[int, int, int], ...]
) -> float:
    """An upper bound on `power_loss` over rates in [a, b]: each path's probability at its
    largest on [a, b], times the chance of a rejection after it at a (it falls with p)."""
    n, c = design.samples, design.reject_at_most
    total = 0.0
    for valid, passes, count in entries:
        if c - passes < 0:
            continue
        q = min(max(passes / valid, a), b)
        total += (
            count * q**passes * (1 - q) ** (valid - passes) * binom_cdf(c - passes, n - valid, a)
        )
    return total


def expected_samples(design: Futility, p: float) -> float:
    """Samples the futility rule alone spends at true rate p (the test's own design and
    curtailment may stop it later or sooner)."""
    entries = first_entries(design)
    weights = [
        (valid, count * p**passes * (1 - p) ** (valid - passes)) for valid, passes, count in entries
    ]
    stopped = sum(w for _, w in weights)
    return sum(valid * w for valid, w in weights) + (1 - stopped) * design.samples


def at_level(
    base_passes: int, base_valid: int, samples: int, alpha: float, level: float
) -> Futility:
    """The futility rule at `level`; at 0 it stops only where no completion can reject."""
    bounds = _bounds(base_passes, base_valid, samples, alpha, level)
    c = _reject_at_most(base_passes, base_valid, samples, alpha)
    return Futility(base_passes, base_valid, samples, alpha, c, bounds, level)


@functools.lru_cache(maxsize=1024)
def futility(base_passes: int, base_valid: int, samples: int, alpha: float) -> Futility:
    """The futility rule for this baseline: the largest level (by bisection) whose power loss
    is at most TARGET on a grid of true rates."""
    best = at_level(base_passes, base_valid, samples, alpha, 0.0)
    lo, hi = 0.0, 0.5
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        candidate = at_level(base_passes, base_valid, samples, alpha, mid)
        entries = first_entries(candidate)
        if max(power_loss(candidate, p, entries) for p in _GRID) <= TARGET:
            best, lo = candidate, mid
        else:
            hi = mid
    return best


@dataclass(frozen=True)
class Gate:
    """Stopping rule of a test with a baseline row: called with (passes, valid, remaining) on
    the samples judged so far, it says "settled" once the regression verdict cannot change,
    "futile" once a drop is unlikely to be shown by the last sample (`futility`; the verdict is
    then "not regressed"), else None.

    Completions with fewer than `least` valid samples get no verdict and do not count. For each
    final valid count the p-value rises with the passes, so the fewest and the most reachable
    passes bound every completion.
    """

    base_passes: int
    base_valid: int
    alpha: float
    least: int
    samples: int
    futile: bool = True  # False: stop only where the verdict is settled (curtailment)

    def __call__(self, passes: int, valid: int, remaining: int) -> str | None:
        verdicts = {
            regressed(self.base_passes, self.base_valid, final_passes, final, self.alpha)
            for final in range(max(valid, self.least), valid + remaining + 1)
            for final_passes in (passes, passes + final - valid)
        }
        if len(verdicts) <= 1:
            return "settled"
        if not self.futile:
            return None
        rule = futility(self.base_passes, self.base_valid, self.samples, self.alpha)
        return "futile" if remaining and rule.futile(passes, valid) else None

    def why(self, passes: int, valid: int) -> str:
        rule = futility(self.base_passes, self.base_valid, self.samples, self.alpha)
        return (
            f"{passes} passes in {valid} valid: a drop below the baseline's "
            f"{self.base_passes}/{self.base_valid} had a predicted chance <= {rule.level:.1%} "
            f"of showing by sample {self.samples}"
        )
