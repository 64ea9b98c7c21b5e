"""Exact operating characteristics of sequential designs, against the figures of issue 17 and
against the binomial distribution."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_llmeval.verdict.sequential import (
    Design,
    curtailed,
    fixed,
    mean_samples,
    operating,
    truncated_sprt,
)
from pytest_llmeval.verdict.stats import binom_cdf

RATES = [0.5, 0.6, 0.8, 0.95, 0.99]


def test_the_fixed_design_is_the_binomial_test() -> None:
    design = fixed(30, 19)
    for p in (0.3, 0.8, 0.9):
        result = operating(design, p)
        assert result.failed == pytest.approx(binom_cdf(19, 30, p), abs=1e-12)
        assert result.spent[-1] == pytest.approx(1.0)
        assert result.expected_samples == pytest.approx(30)


def test_curtailment_keeps_the_verdict_and_spends_what_the_issue_says() -> None:
    for p in (0.5, 0.8, 0.95):
        assert operating(curtailed(30, 19), p).failed == pytest.approx(
            operating(fixed(30, 19), p).failed, abs=1e-12
        )
    spent = [round(x, 1) for x in mean_samples(curtailed(30, 19), RATES)]
    assert spent == [21.8, 25.4, 24.9, 21.1, 20.2]


def test_the_truncated_sprt_of_the_issue() -> None:
    design = truncated_sprt(30, 0.8, 0.55, 2.6, -2.1, 19)
    assert round(float(operating(design, 0.8).failed), 4) == 0.0490
    power = [round(float(operating(design, p).failed), 3) for p in (0.5, 0.6, 0.65)]
    assert power == [0.934, 0.709, 0.516]
    assert [round(x, 1) for x in mean_samples(design, RATES)][1:] == [16.1, 13.5, 7.1, 6.2]


def test_exact_in_fractions() -> None:
    design = truncated_sprt(12, 0.8, 0.55, 2.6, -2.1, 6)
    result = operating(design, Fraction(4, 5))
    assert isinstance(result.failed, Fraction)
    assert result.failed + result.passed == 1 and sum(result.spent) == 1
    assert math.isclose(float(result.failed), operating(design, 0.8).failed, abs_tol=1e-12)


def test_quantile_of_samples_spent() -> None:
    result = operating(curtailed(10, 4), 0.99)
    assert result.quantile(0.95) == 5  # five passes settle it almost always


def test_a_design_must_decide_at_its_last_sample() -> None:
    with pytest.raises(ValueError, match="every count must pass or fail"):
        Design((-1, 0), (3, 3))
    with pytest.raises(ValueError, match="one bound per sample"):
        Design((0,), (1, 2))
