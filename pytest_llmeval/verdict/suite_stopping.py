"""Stopping a gated suite over its cases once its verdict is settled (`design="sequential"`).

The N cases are taken in a canonical order fixed before running (`_interleaved(N)` over the
collected cases); `finished` maps a position in that order to the case's valid outcomes (empty:
an error case), and a position missing from it is a case not finished (yet). Each rule gives the
verdict its full run would give, or stops no earlier than its guarantee allows:

* ``"fixed"``: curtailment over cases. Order-free: settled when every completion of the
  unfinished cases (each an error case, or 1..samples valid samples with any passes) gives the
  verdict `suite_verdict` gives over all N cases, so cases finished after the stop count too.
* ``"sampled"``, one sample per case: the cases are the trials of `design_for(N, ...)`, judged
  in canonical order; a decision at position i needs positions 0..i finished.
* ``"sampled"``, several: the betting test of `suite_verdict`, with bets that know N in advance,
  over the canonical order: a rejection is final as soon as the capital reaches 1 / alpha
  (Ville's inequality holds at any stopping time); no rejection is settled once even the most
  favourable remaining cases cannot reach it.

Errors count like valid outcomes for nothing: a sequential rule judges valid cases, and says
"error" once fewer than `min_valid_samples(N)` cases can still be valid.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_llmeval.verdict.sequential import Design, completion, design_for
from pytest_llmeval.verdict.stats import _SLACK, Mode, Verdict, binom_sf, min_valid_samples
from pytest_llmeval.verdict.suite import _MAX_RISK, Population, _fixed_threshold

Finished = Mapping[int, Sequence[bool]]  # canonical position -> valid outcomes (empty: error)


@dataclass(frozen=True)
class SuiteRule:
    """What a sequential suite is judged by: N cases of at most `samples` samples each."""

    cases: int
    samples: int
    pass_rate: float
    confidence: float
    mode: Mode
    population: Population

    def __post_init__(self) -> None:
        if self.cases < 1 or self.samples < 1:
            raise ValueError("a sequential suite needs at least one case and one sample")
        if self.mode not in ("not_worse", "proven"):
            raise ValueError(f"suites stop early for not_worse and proven, not {self.mode!r}")

    @property
    def method(self) -> str:
        if self.population == "fixed":
            return f"curtailed exact binomial over the samples of {self.cases} fixed cases"
        if self.samples == 1:
            return f"sequential design over {self.cases} sampled cases, one sample each"
        return f"betting test over {self.cases} sampled cases, stopped by Ville's inequality"


@dataclass(frozen=True)
class Stop:
    """A suite's verdict when settled (None: still open), the cases it counts, and why."""

    verdict: Verdict | None
    judged: int  # fixed: the finished cases; sampled: the canonical prefix the decision needed
    bound: str  # short: "fail bound reached"
    why: str


OPEN = Stop(None, 0, "open", "not settled")


def decide(rule: SuiteRule, finished: Finished, complete: bool = False) -> Stop:
    """The suite's verdict from its finished cases when no unfinished case can change it, else
    OPEN. `complete`: no case will finish any more (the missing ones count as error cases), so
    the verdict is the one the full run gives."""
    if rule.population == "fixed":
        return _curtailed(rule, finished, complete)
    if rule.samples == 1:
        return _design(rule, finished, complete)
    return _betting(rule, finished, complete)


def _curtailed(rule: SuiteRule, finished: Finished, complete: bool) -> Stop:
    n, s = rule.cases, rule.samples
    valid = [tuple(o) for o in finished.values() if o]
    unknown = 0 if complete else n - len(finished)
    least = min_valid_samples(n)
    ran = len(finished)
    if len(valid) + unknown < least:
        most = len(valid) + unknown
        why = f"{len(valid)} of {n} cases valid, at most {most} can be: {least} needed"
        return Stop("error", ran, "too few valid cases", why)
    if len(valid) < least:
        return OPEN
    passes = sum(sum(o) for o in valid)
    samples = sum(len(o) for o in valid)

    def threshold(total: int) -> int:
        return _fixed_threshold(total, rule.pass_rate, rule.confidence, rule.mode)

    totals = range(samples, samples + unknown * s + 1)
    rest = f"whatever the other {unknown} cases give" if unknown else "over every case"
    if all(passes >= threshold(t) for t in totals):
        need = max(threshold(t) for t in totals)
        why = f"{passes} passes in {samples} samples reach the pass bound {need} {rest}"
        return Stop("passed", ran, "pass bound reached", why)
    if all(passes + t - samples < threshold(t) for t in totals):
        why = f"{passes} passes in {samples} samples stay below the pass bound {rest}"
        return Stop("failed", ran, "fail bound reached", why)
    return OPEN


def _design(rule: SuiteRule, finished: Finished, complete: bool) -> Stop:
    n = rule.cases
    design = design_for(n, rule.pass_rate, rule.confidence, rule.mode)
    least = min_valid_samples(n)
    k = passes = 0
    for position in range(n):
        if position not in finished and not complete:
            return OPEN
        outcomes = finished.get(position, ())
        if outcomes:
            k += 1
            passes += outcomes[0]
        if k + n - position - 1 < least:
            why = f"{k} valid of {position + 1} cases, {least} of {n} needed"
            return Stop("error", position + 1, "too few valid cases", why)
        if outcomes and passes <= design.fail_at[k - 1]:
            why = f"{passes} passes in {k} valid cases <= fail bound {design.fail_at[k - 1]}"
            return Stop("failed", position + 1, "fail bound reached", why)
        if outcomes and passes >= design.pass_at[k - 1]:
            why = f"{passes} passes in {k} valid cases >= pass bound {design.pass_at[k - 1]}"
            return Stop("passed", position + 1, "pass bound reached", why)
    return Stop(_short(design, rule.mode, k, passes), n, "cases spent", _spent(k, passes))


def _short(design: Design, mode: Mode, k: int, passes: int) -> Verdict:
    """Errors left the design short of its last look: the verdict every completion gives, else
    the side the guarantee allows (like a per-test design, `verdict.sampling`)."""
    if mode == "not_worse":
        return "failed" if completion(design, k, passes, "passed") == "failed" else "passed"
    return "passed" if completion(design, k, passes, "failed") == "passed" else "failed"


def _spent(k: int, passes: int) -> str:
    return f"every case judged, {passes} passes in {k} valid, no bound crossed before the last"


@functools.lru_cache(maxsize=64)
def _scale(n: int, confidence: float) -> float:
    return 2.0 * math.log(1.0 / (1.0 - confidence)) / n


def _betting(rule: SuiteRule, finished: Finished, complete: bool) -> Stop:
    """`suite._Bettor` over the canonical prefix, its bets sized with N (known in advance)."""
    n, m = rule.cases, rule.pass_rate
    below = rule.mode == "not_worse"
    level = -math.log((1.0 - rule.confidence) * (1.0 - _SLACK))
    room = 1.0 - m if below else m  # how far a case can go against the bet
    cap = _MAX_RISK / room if room > 0 else math.inf
    gain = m if below else 1.0 - m  # how far a case can go for it
    scale = _scale(n, rule.confidence)
    least = min_valid_samples(n)
    rejected: Verdict = "failed" if below else "passed"
    kept: Verdict = "passed" if below else "failed"
    log_capital, mean, squares, k = 0.0, 0.5, 0.25, 0
    for position in range(n):
        if position not in finished and not complete:
            break
        outcomes = finished.get(position, ())
        if outcomes:
            r = sum(outcomes) / len(outcomes)
            k += 1
            bet = min(math.sqrt(scale * k / squares), cap)
            log_capital += math.log1p(bet * (m - r if below else r - m))
            squares += (r - mean) ** 2
            mean += (r - mean) / (k + 1)
        if k + n - position - 1 < least:
            why = f"{k} valid of {position + 1} cases, {least} of {n} needed"
            return Stop("error", position + 1, "too few valid cases", why)
        if log_capital >= level:
            why = f"betting capital reached 1/alpha after {k} valid cases"
            return Stop(rejected, position + 1, "capital reached 1/alpha", why)
    else:
        return Stop(kept, n, "cases spent", f"capital below 1/alpha over all {k} valid cases")
    judged = position  # positions 0..judged-1 are counted
    if k < least:
        return OPEN
    # Bets only shrink as the running squares grow; every factor is at most 1 + bet * gain.
    best = sum(
        math.log1p(min(math.sqrt(scale * j / squares), cap) * gain)
        for j in range(k + 1, k + n - judged + 1)
    )
    if log_capital + best >= level:
        return OPEN
    why = f"capital cannot reach 1/alpha in the {n - judged} cases left"
    return Stop(kept, judged, "1/alpha out of reach", why)


def regression_settled(
    base: Mapping[str, Sequence[bool]], current: Mapping[str, Sequence[bool]], alpha: float
) -> bool:
    """Whether `paired_regression`'s `regressed` is the same for every completion of the cases
    not finished yet (in `base`, not in `current`): the sign test's p-value falls with every
    case worse and rises with every case better, and ties or unpaired cases leave it alone. A
    case whose baseline always passed cannot get better, one that always failed cannot get
    worse."""
    worse = better = 0
    for name, now in current.items():
        before = base.get(name, ())
        k = min(len(before), len(now))
        if k:
            change = sum(now[:k]) - sum(before[:k])
            worse += change < 0
            better += change > 0
    left = [tuple(o) for name, o in base.items() if name not in current and o]
    may_worsen = sum(any(o) for o in left)
    may_improve = sum(not all(o) for o in left)
    level = alpha * (1.0 - _SLACK)
    lowest = binom_sf(worse + may_worsen, worse + may_worsen + better, 0.5)
    highest = binom_sf(worse, worse + better + may_improve, 0.5)
    return (lowest <= level) == (highest <= level)


def settle(rule: SuiteRule, finished: Finished) -> tuple[Stop, int]:
    """The verdict of a run that is over: the rule's decision when the cases that ran settled
    it (the one the workers stopped on), else the full run's with the missing cases counting as
    errors; and the overshoot, the cases that ran past the shortest canonical prefix of them
    that settles it (a fixed suite counts those cases: its rule is order-free)."""
    stop = decide(rule, finished)
    if stop.verdict is None:
        return decide(rule, finished, complete=True), 0
    ran = sorted(finished)
    if rule.population != "fixed":
        return stop, sum(position >= stop.judged for position in ran)
    for count in range(1, len(ran) + 1):
        if decide(rule, {p: finished[p] for p in ran[:count]}).verdict is not None:
            return stop, len(ran) - count
    return stop, 0
