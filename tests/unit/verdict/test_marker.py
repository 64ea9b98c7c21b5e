from __future__ import annotations

from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.verdict.marker import (
    UNMARKED,
    Plan,
    check_models,
    check_plan,
    check_rate_covers,
    parse_marker,
)


def test_defaults_and_resolution() -> None:
    spec = parse_marker((), {"pass_rate": 0.8, "samples": 20}, "t.py::test")
    plan = spec.resolve("gpt-4o", default_samples=10, samples_override=None)
    assert (plan.pass_rate, plan.samples, plan.confidence, plan.mode) == (
        0.8,
        20,
        0.95,
        "not_worse",
    )
    assert spec.resolve("gpt-4o", 10, samples_override=5).samples == 5
    assert parse_marker((), {}, "t").resolve("m", 7, None).samples == 7


def test_unmarked_tests_run_once_even_with_override() -> None:
    plan = UNMARKED.resolve("m", 10, samples_override=50)
    assert (plan.samples, plan.pass_rate, plan.marked) == (1, 1.0, False)


def test_per_model_pass_rate_with_default() -> None:
    spec = parse_marker((), {"pass_rate": {"gpt-4o": 0.9, "*": 0.6}}, "t")
    assert spec.resolve("gpt-4o", 10, None).pass_rate == 0.9
    assert spec.resolve("other", 10, None).pass_rate == 0.6
    check_rate_covers(spec, "other", "t")
    strict = parse_marker((), {"pass_rate": {"gpt-4o": 0.9}}, "t")
    with pytest.raises(ConfigError, match="no entry for model 'mini'"):
        check_rate_covers(strict, "mini", "t")


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((), {"pass_rate": 1.5}, "pass_rate=1.5 must be a number in [0, 1]"),
        ((), {"pass_rate": -0.1}, "pass_rate=-0.1"),
        ((), {"pass_rate": "high"}, "pass_rate='high'"),
        ((), {"pass_rate": {"a": 2}}, "pass_rate['a']=2"),
        ((), {"samples": 0}, "samples=0 must be an integer >= 1"),
        ((), {"samples": 2.5}, "samples=2.5"),
        ((), {"confidence": 1.0}, "confidence=1.0 must be strictly between 0 and 1"),
        ((), {"mode": "lenient"}, "mode='lenient' must be one of not_worse, proven, observed"),
        ((), {"pas_rate": 0.8}, "unknown argument 'pas_rate'"),
        ((), {"models": [1]}, "models=[1] must be a list of model names"),
        ((0.8,), {}, "keyword arguments only"),
        ((), {"api": "embeddings"}, "api='embeddings' must be one of chat, completion"),
        ((), {"suite": "yes"}, "suite='yes' must be True or False"),
        ((), {"suite": 1}, "suite=1 must be True or False"),
        (
            (),
            {"suite": True, "population": "random"},
            "population='random' must be one of fixed, sampled",
        ),
        ((), {"population": "sampled"}, "population= is about a suite gate; add suite=True"),
        ((), {"suite": False, "population": "fixed"}, "population= is about a suite gate"),
    ],
)
def test_bad_marker_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_marker(args, kwargs, "tests/t.py::test_x")
    assert str(info.value).startswith("tests/t.py::test_x: llmeval marker")
    assert expected in str(info.value)


def test_marker_models_must_be_known() -> None:
    spec = parse_marker((), {"models": ["gpt-4o"], "pass_rate": {"gpt4o-mini": 0.5, "*": 0.9}}, "t")
    with pytest.raises(ConfigError, match=r"unknown model.*'gpt4o-mini'"):
        check_models(spec, {"gpt-4o", "gpt-4o-mini"}, "t")
    check_models(parse_marker((), {"models": "gpt-4o"}, "t"), {"gpt-4o"}, "t")


def test_suite_and_population_reach_the_plan_and_its_report_entry() -> None:
    spec = parse_marker((), {"pass_rate": 0.7, "samples": 3, "suite": True}, "t")
    plan = spec.resolve("m", 10, None)
    assert (plan.suite, plan.population) == (True, "fixed")
    assert plan.to_dict() == {
        "pass_rate": 0.7, "samples": 3, "confidence": 0.95, "mode": "not_worse",
        "marked": True, "suite": True, "population": "fixed",
    }  # fmt: skip
    sampled = parse_marker((), {"suite": True, "population": "sampled"}, "t").resolve("m", 5, 2)
    assert (sampled.suite, sampled.population, sampled.samples) == (True, "sampled", 2)
    assert sampled.to_dict()["population"] == "sampled"


def test_a_plan_without_suite_writes_no_suite_keys() -> None:
    plan = parse_marker((), {"pass_rate": 0.7, "suite": False}, "t").resolve("m", 10, None)
    assert not plan.suite
    info = plan.to_dict()
    assert "suite" not in info and "population" not in info
    assert "suite" not in UNMARKED.resolve("m", 10, None).to_dict()


def test_check_plan_leaves_suite_plans_to_the_suite_gate() -> None:
    """One sample per case can neither prove 0.9 nor fail 0.5 on its own; as a suite's case it
    is neither an error nor a warning: the suite judges all its cases together."""
    never_passes = Plan(0.9, 1, 0.95, "proven")
    with pytest.raises(ConfigError, match="mode='proven' can never pass with samples=1"):
        check_plan(never_passes, "t")
    never_fails = Plan(0.5, 1, 0.95, "not_worse")
    assert "can never fail with samples=1" in (check_plan(never_fails, "t") or "")
    assert check_plan(Plan(0.9, 1, 0.95, "proven", suite=True), "t") is None
    assert (
        check_plan(Plan(0.5, 1, 0.95, "not_worse", suite=True, population="sampled"), "t") is None
    )
