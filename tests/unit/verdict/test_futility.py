"""The baseline gate's futility stops: never a false alarm the fixed-N test would not raise,
and at most TOLERANCE of its power lost at any true rate, proved on the continuum."""

from __future__ import annotations

import itertools

import pytest

from pytest_llmeval.verdict.futility import (
    TOLERANCE,
    Futility,
    Gate,
    at_level,
    expected_samples,
    first_entries,
    futility,
    loss_bound,
    power_loss,
)
from pytest_llmeval.verdict.stats import binom_cdf, drop_p_value, regressed

ALPHAS = (0.01, 0.05, 0.1)


def loss_holds(design: Futility, tolerance: float = TOLERANCE) -> bool:
    """Is the power loss <= tolerance at every rate in [0, 1]? Intervals where the bound is
    too loose are halved, down to a width of 1e-5."""
    entries = first_entries(design)
    todo = [(i / 64, (i + 1) / 64) for i in range(64)]
    while todo:
        a, b = todo.pop()
        if loss_bound(design, a, b, entries) <= tolerance:
            continue
        if b - a < 1e-5:
            return False
        todo += [(a, (a + b) / 2), ((a + b) / 2, b)]
    return True


def gated_verdict(gate: Gate, outcomes: tuple[bool, ...]) -> bool:
    """Regressed? The run judged in order: a futility stop is "not regressed", a settled or
    complete one is Fisher's test on what ran."""
    passes = 0
    for valid, outcome in enumerate(outcomes, start=1):
        passes += outcome
        stop = gate(passes, valid, len(outcomes) - valid)
        if stop == "futile":
            assert not regressed(gate.base_passes, gate.base_valid, passes, valid, gate.alpha)
            return False
        if stop == "settled":
            return regressed(gate.base_passes, gate.base_valid, passes, valid, gate.alpha)
    return regressed(gate.base_passes, gate.base_valid, passes, len(outcomes), gate.alpha)


@pytest.mark.parametrize("base_valid", [4, 10])
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_a_gated_run_raises_an_alarm_only_where_the_fixed_test_does(
    base_valid: int, alpha: float
) -> None:
    n = 10
    for base_passes in range(base_valid + 1):
        gate = Gate(base_passes, base_valid, alpha, 1, n)
        for outcomes in itertools.product((False, True), repeat=n):
            if gated_verdict(gate, outcomes):
                assert regressed(base_passes, base_valid, sum(outcomes), n, alpha)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 30])
def test_futile_states_are_no_drop_on_their_own_samples(n: int, alpha: float) -> None:
    for base_valid in (n, 10):
        for base_passes in range(base_valid + 1):
            design = futility(base_passes, base_valid, n, alpha)
            for valid in range(1, n):
                for passes in range(design.stop_from[valid], valid + 1):
                    assert drop_p_value(base_passes, base_valid, passes, valid) > alpha


def test_power_loss_is_what_entries_times_later_rejections_give() -> None:
    design = futility(27, 30, 30, 0.05)
    p = 0.7
    by_paths = 0.0
    for outcomes in itertools.product((0, 1), repeat=12):  # the loss from entries by sample 12
        passes = 0
        for valid, outcome in enumerate(outcomes, start=1):
            passes += outcome
            if design.futile(passes, valid):
                weight = p**passes * (1 - p) ** (valid - passes)
                later = binom_cdf(design.reject_at_most - passes, 30 - valid, p)
                by_paths += weight * later / 2 ** (12 - valid)  # counted once per extension
                break
    entries = tuple(e for e in first_entries(design) if e[0] <= 12)
    assert power_loss(design, p, entries) == pytest.approx(by_paths, rel=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [1, 3, 10, 20, 30])
def test_power_loss_holds_on_the_continuum(n: int, alpha: float) -> None:
    for base_valid in sorted({n, 10, 30}):
        for base_passes in range(base_valid + 1):
            assert loss_holds(futility(base_passes, base_valid, n, alpha))


@pytest.mark.slow
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [*range(2, 16), 20, 25, 29, 40, 50])
def test_power_loss_holds_on_the_continuum_sweep(n: int, alpha: float) -> None:
    for base_valid in sorted({n, 20, 50}):
        for base_passes in range(base_valid + 1):
            assert loss_holds(futility(base_passes, base_valid, n, alpha))


@pytest.mark.parametrize(("base", "n"), [((30, 30), 30), ((27, 30), 30), ((45, 50), 50)])
def test_an_unchanged_model_spends_far_fewer_samples(base: tuple[int, int], n: int) -> None:
    design, curtailed = futility(*base, n, 0.05), at_level(*base, n, 0.05, 0.0)
    rate = min(base[0] / base[1], 0.995)
    assert expected_samples(design, rate) < 0.6 * expected_samples(curtailed, rate)
