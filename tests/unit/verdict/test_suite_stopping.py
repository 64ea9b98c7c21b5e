"""Tests for pytest_llmeval.verdict.suite_stopping: a suite stopped over its cases gives the
verdict its rule gives over every case, and keeps the rule's guarantee."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from itertools import combinations, product

import pytest

from pytest_llmeval.verdict.sequential import design_for, operating
from pytest_llmeval.verdict.stats import Mode
from pytest_llmeval.verdict.suite import paired_regression, suite_verdict
from pytest_llmeval.verdict.suite_stopping import (
    SuiteRule,
    decide,
    regression_settled,
    settle,
)

Case = tuple[bool, ...]
# What a case of at most two samples can bring: an error case, one valid sample, or two.
CASES2: tuple[Case, ...] = ((), (False,), (True,), (False, False), (False, True), (True, True))


def subsets(n: int) -> Iterator[tuple[int, ...]]:
    for size in range(n + 1):
        yield from combinations(range(n), size)


@pytest.mark.parametrize("mode", ["not_worse", "proven"])
@pytest.mark.parametrize(
    ("pass_rate", "confidence"), [(0.5, 0.9), (0.6, 0.7), (0.3, 0.8), (0.8, 0.6)]
)
def test_fixed_curtailment_is_the_full_runs_verdict_for_every_completion(
    mode: Mode, pass_rate: float, confidence: float
) -> None:
    """Four cases of two samples, every outcome of each (errors too), every set of finished
    cases: a settled decision is the verdict `suite_verdict` gives over all four."""
    rule = SuiteRule(4, 2, pass_rate, confidence, mode, "fixed")
    stopped = 0
    for cases in product(CASES2, repeat=4):
        full = suite_verdict(cases, pass_rate, confidence, mode, "fixed").verdict
        assert decide(rule, dict(enumerate(cases))).verdict == full
        for known in subsets(4):
            found = decide(rule, {i: cases[i] for i in known})
            if found.verdict is not None:
                assert found.verdict == full, (cases, known)
                stopped += len(known) < 4
    assert stopped > 0  # it does stop early somewhere


def test_fixed_curtailment_stops_once_the_rest_cannot_matter() -> None:
    rule = SuiteRule(10, 1, 0.8, 0.95, "not_worse", "fixed")
    # 5 failures in 10 cases: even 5 passes to come leave 5 of 10, below the pass bound.
    found = decide(rule, {i: (False,) for i in range(5)})
    assert found.verdict == "failed" and found.bound == "fail bound reached"
    assert decide(rule, {i: (False,) for i in range(2)}).verdict is None


@pytest.mark.parametrize("mode", ["not_worse", "proven"])
@pytest.mark.parametrize(("n", "pass_rate"), [(10, 0.6), (12, 0.5), (14, 0.8)])
def test_single_sample_sampled_suite_is_the_sequential_design(
    mode: Mode, n: int, pass_rate: float
) -> None:
    """Over every outcome sequence in canonical order, the stop's verdict and position have
    exactly the distribution `operating` gives for `design_for(N, ...)`, and a decision made on
    the prefix alone is the same."""
    rule = SuiteRule(n, 1, pass_rate, 0.9, mode, "sampled")
    design = design_for(n, pass_rate, 0.9, mode)
    p = Fraction(2, 5)
    verdicts = {"passed": Fraction(0), "failed": Fraction(0)}
    spent = [Fraction(0)] * n
    for outcomes in product((False, True), repeat=n):
        found = decide(rule, {i: (o,) for i, o in enumerate(outcomes)})
        assert found.verdict in verdicts
        prefix = {i: (outcomes[i],) for i in range(found.judged)}
        assert decide(rule, prefix) == found
        if found.judged > 1:
            assert decide(rule, dict(list(prefix.items())[:-1])).verdict is None
        weight = math.prod(p if o else 1 - p for o in outcomes)
        verdicts[found.verdict] += weight
        spent[found.judged - 1] += weight
    expected = operating(design, p)
    assert verdicts == {"passed": expected.passed, "failed": expected.failed}
    assert tuple(spent) == expected.spent


def test_a_sampled_decision_waits_for_the_canonical_prefix() -> None:
    """Cases finished beyond an unfinished position do not count, whatever they say."""
    rule = SuiteRule(20, 1, 0.9, 0.95, "not_worse", "sampled")
    failures = {i: (False,) for i in range(1, 20)}
    assert decide(rule, failures).verdict is None
    stop = decide(rule, {0: (False,), **failures})
    assert stop.verdict == "failed" and stop.judged < 20


def test_errors_settle_a_suite_as_error_once_too_few_cases_can_be_valid() -> None:
    for population in ("fixed", "sampled"):
        rule = SuiteRule(6, 1, 0.5, 0.9, "not_worse", population)
        stop = decide(rule, {i: () for i in range(4)})
        assert stop.verdict == "error", population
    # The full run with missing cases counted as errors.
    rule = SuiteRule(6, 2, 0.5, 0.9, "not_worse", "sampled")
    assert decide(rule, {0: (True, True)}, complete=True).verdict == "error"


def _rate_draws(
    dist: Sequence[tuple[Fraction, Sequence[tuple[Case, Fraction]]]],
) -> list[tuple[Case, Fraction]]:
    """A case's outcomes and their probability: a case rate drawn from `dist`, then samples."""
    found: dict[Case, Fraction] = {}
    for weight, draws in dist:
        for outcomes, q in draws:
            found[outcomes] = found.get(outcomes, Fraction(0)) + weight * q
    return list(found.items())


def _two_samples(r: Fraction) -> list[tuple[Case, Fraction]]:
    return [
        ((a, b), (r if a else 1 - r) * (r if b else 1 - r))
        for a, b in product((False, True), repeat=2)
    ]


@pytest.mark.parametrize("mode", ["not_worse", "proven"])
def test_the_betting_stop_keeps_its_guarantee_and_its_full_run_verdict(mode: Mode) -> None:
    """Five cases of two samples whose per-case rates are 0 or 1 (mean 1/2, the null hypothesis
    at pass_rate 0.5), every outcome: the false verdict rate is <= alpha, every decision on a
    prefix is the verdict over all five, and the stop happens before the end sometimes."""
    n, alpha = 5, Fraction(3, 10)
    rule = SuiteRule(n, 2, 0.5, 0.7, mode, "sampled")
    draws = _rate_draws([(Fraction(1, 2), _two_samples(Fraction(r))) for r in (0, 1)])
    wrong = "failed" if mode == "not_worse" else "passed"
    false, early = Fraction(0), 0
    for picked in product(draws, repeat=n):
        cases = {i: outcomes for i, (outcomes, _) in enumerate(picked)}
        full = decide(rule, cases)
        assert full.verdict in ("passed", "failed")
        for j in range(n):
            found = decide(rule, {i: cases[i] for i in range(j)})
            if found.verdict is not None:
                assert found.verdict == full.verdict
                early += 1
                break
        if full.verdict == wrong:
            false += math.prod(q for _, q in picked)
    assert false <= alpha
    assert early > 0


def test_the_betting_stop_rejects_a_clear_miss_early() -> None:
    rule = SuiteRule(60, 3, 0.8, 0.95, "not_worse", "sampled")
    stop = decide(rule, {i: (False, False, True) for i in range(60)})
    assert stop.verdict == "failed" and stop.bound == "capital reached 1/alpha"
    assert stop.judged < 30
    passing = decide(rule, {i: (True, True, True) for i in range(50)})
    assert passing.verdict == "passed" and passing.bound == "1/alpha out of reach"


@pytest.mark.parametrize(("samples", "n"), [(1, 4), (2, 3)])
def test_regression_settled_means_every_completion_agrees(samples: int, n: int) -> None:
    """Every baseline and current outcome of n cases, every finished subset: once settled, the
    sign test's `regressed` is the same for every completion of the rest."""
    alpha = 0.2
    options: list[Case] = [(), *product((False, True), repeat=samples)]
    settled_early = 0
    for before in product(options[1:], repeat=n):
        base = {str(i): o for i, o in enumerate(before)}
        regressed = {
            now: paired_regression(base, {str(i): o for i, o in enumerate(now)}, alpha).regressed
            for now in product(options, repeat=n)
        }
        for now, verdict in regressed.items():
            for known in subsets(n):
                seen = {str(i): now[i] for i in known}
                if not regression_settled(base, seen, alpha):
                    continue
                found = {
                    r for other, r in regressed.items() if all(other[i] == now[i] for i in known)
                }
                assert found == {verdict}, (base, seen)
                settled_early += len(known) < n
    assert settled_early > 0


def test_settle_reports_the_stop_and_its_overshoot() -> None:
    rule = SuiteRule(20, 1, 0.9, 0.95, "not_worse", "sampled")
    cases = {i: (False,) for i in range(12)}
    stop, overshoot = settle(rule, cases)
    assert stop.verdict == "failed" and overshoot == 12 - stop.judged > 0
    fixed = SuiteRule(10, 1, 0.8, 0.95, "not_worse", "fixed")
    stop, overshoot = settle(fixed, {i: (False,) for i in range(7)})
    assert (stop.verdict, stop.judged, overshoot) == ("failed", 7, 2)
    # Not settled by what ran: the full run's verdict, missing cases counted as errors.
    ran = {i: (i >= 4,) for i in range(9)}
    assert decide(fixed, ran).verdict is None
    stop, overshoot = settle(fixed, ran)
    full = suite_verdict([*ran.values(), ()], 0.8, 0.95, "not_worse", "fixed")
    assert (stop.verdict, overshoot) == (full.verdict, 0)
