"""The sampler with a sequential design: it judges samples in launch order, stops at the design's
bounds, counts nothing launched past the stop, and takes the safe side when errors cut it short."""

from __future__ import annotations

import asyncio
import math
import time

import openai
import pytest

from pytest_llmeval.errors import call_errors
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.records import current_trace
from pytest_llmeval.verdict.sampling import STOP_SETTLED, Classifier, run_async, run_sync
from pytest_llmeval.verdict.sequential import Design, design_for

CLASSIFIER = Classifier(call_errors())
PLAN = Plan(0.8, 30, 0.95, "not_worse")


def by_index(script: str, slow_passes: float = 0.0):
    """A body whose sample i passes (P), fails (F) or errors (E) as script[i] says; passes take
    `slow_passes` seconds, so that failures finish first."""

    def outcome() -> str:
        trace = current_trace()
        assert trace is not None and trace.index is not None
        return script[trace.index % len(script)]

    def body() -> None:
        step = outcome()
        if step == "P":
            time.sleep(slow_passes)
        elif step == "F":
            raise AssertionError("wrong answer")
        else:
            raise openai.APIConnectionError(request=None)  # type: ignore[arg-type]

    async def abody() -> None:
        step = outcome()
        if step == "P":
            await asyncio.sleep(slow_passes)
        elif step == "F":
            raise AssertionError("wrong answer")
        else:
            raise openai.APIConnectionError(request=None)  # type: ignore[arg-type]

    return body, abody


def first_stop(design: Design, script: str) -> tuple[str, int]:
    """The design applied by hand to the outcomes in index order: (verdict, samples judged)."""
    passes = valid = 0
    for i, step in enumerate(script, start=1):
        if step == "E":
            continue
        valid += 1
        passes += step == "P"
        if passes <= design.fail_at[valid - 1]:
            return "failed", i
        if passes >= design.pass_at[valid - 1]:
            return "passed", i
    raise AssertionError("the script ended before the design decided")


def run(plan: Plan, script: str, width: int, engine: str, slow: float = 0.0):
    body, abody = by_index(script, slow)
    if engine == "threads":
        return run_sync(plan, body, width, CLASSIFIER)
    return asyncio.run(run_async(plan, abody, width, CLASSIFIER))


@pytest.mark.parametrize("engine", ["threads", "asyncio"])
def test_one_at_a_time_it_stops_where_the_design_does(engine: str) -> None:
    design = design_for(30, 0.8, 0.95, "not_worse")
    for script in ("P" * 30, "PPFPFFPFFFFF" + "F" * 18, "PPPPFPPPPPPPPPPFPPPP" + "P" * 10):
        sampled = run(PLAN, script, 1, engine)
        verdict, at = first_stop(design, script)
        assert (sampled.verdict, len(sampled.records)) == (verdict, at)
        assert sampled.decision is not None and sampled.decision["at"] == at
        assert sampled.decision["overshoot"] == 0 and sampled.stop_reason == STOP_SETTLED
    assert len(run(PLAN, "P" * 30, 1, engine).records) < 15  # curtailment would need 20


@pytest.mark.parametrize("engine", ["threads", "asyncio"])
def test_out_of_order_results_are_judged_in_launch_order(engine: str) -> None:
    """Failures finish first; judged as they finish, the first three failures would fail the
    test. In launch order the passes before them decide, as at concurrency 1."""
    script = "PPPPPPPPFFF" + "P" * 19
    design = design_for(30, 0.8, 0.95, "not_worse")
    verdict, at = first_stop(design, script)
    sampled = run(PLAN, script, 12, engine, slow=0.2)
    assert (sampled.verdict, sampled.decision and sampled.decision["at"]) == (verdict, at)
    assert verdict == "passed"
    ran = len(sampled.records)
    assert sampled.decision is not None and sampled.decision["overshoot"] == ran - at
    assert at < ran < 30  # launched before the stop was known, not counted


def test_the_fixed_design_keeps_curtailment() -> None:
    fixed = Plan(0.8, 30, 0.95, "not_worse", design="fixed")
    sampled = run(fixed, "P" * 30, 1, "threads")
    assert len(sampled.records) == 20 and sampled.decision is None  # 20 passes settle it


def test_a_run_errors_cut_short_takes_the_safe_side() -> None:
    """Undecided when the samples are spent: not_worse passes (it fails only on evidence)."""
    plan = Plan(0.8, 12, 0.95, "not_worse")
    design = design_for(12, 0.8, 0.95, "not_worse")
    script = "PPFPPFPFEEEE"
    with pytest.raises(AssertionError):
        first_stop(design, script)  # no bound crossed in the 8 valid samples
    sampled = run(plan, script, 1, "threads")
    assert sampled.verdict == "passed" and sampled.decision is not None
    assert "no bound crossed" in sampled.decision["why"]
    assert run(plan, "EEEEEEEPPPPP", 1, "threads").verdict == "error"  # at most 5 valid of 12


def test_the_plan_reports_its_design_and_expected_samples() -> None:
    info = PLAN.to_dict()
    assert info["design"] == "sequential" and 5 < info["expected_samples"] < 20
    assert Plan(0.8, 30, 0.95, "not_worse", design="fixed").to_dict()["expected_samples"] == 24.9
    assert "design" not in Plan(0.8, 30, 0.95, "observed").to_dict()


def test_a_sequential_test_keeps_a_quarter_of_its_expected_samples_in_flight() -> None:
    expected = PLAN.expected()
    assert PLAN.width(64) == max(2, math.ceil(expected / 4)) < 8
    assert PLAN.width(1) == 1 and PLAN.cost() == math.ceil(expected)
    fixed = Plan(0.8, 30, 0.95, "not_worse", design="fixed")
    assert fixed.width(64) == 30 and fixed.cost() == 30
