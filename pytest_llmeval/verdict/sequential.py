"""Sequential designs over Bernoulli samples, evaluated exactly (groundwork for issue 17).

A design stops at sample k (1-based) with "failed" once the passes so far are <= fail_at[k-1],
or with "passed" once they are >= pass_at[k-1]; at k = n one of the two must hold. Dynamic
programming over the passes of the paths still running gives the exact probability of each
verdict and the distribution of the number of samples spent, for any true rate (float or
Fraction, so proofs can be exact).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
