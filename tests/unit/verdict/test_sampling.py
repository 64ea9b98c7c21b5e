"""The sampling engines on plain callables: no pytest plugin involved."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import openai
import pytest

from pytest_llmeval.errors import call_errors
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.sampling import (
    STOP_COMPLETED,
    STOP_ERRORS,
    STOP_SETTLED,
    Classifier,
    run_async,
    run_sync,
)

CLASSIFIER = Classifier(call_errors(), redact=lambda text: text.replace("sk-secret", "***"))


def scripted(outcomes: str):
    """A body whose n-th call passes (P), fails (F) or errors (E) as the script says."""
    counter = itertools.count()
    lock = threading.Lock()

    def body() -> None:
        with lock:
            step = outcomes[next(counter) % len(outcomes)]
        if step == "F":
            raise AssertionError("wrong answer")
        if step == "E":
            raise openai.APIConnectionError(request=None)  # type: ignore[arg-type]

    return body


def test_all_samples_run_when_the_verdict_stays_open() -> None:
    sampled = run_sync(Plan(0.8, 10, 0.95, "observed"), scripted("PFPPPPPPFP"), 1, CLASSIFIER)
    assert (sampled.passes, sampled.failures, sampled.errors) == (8, 2, 0)
    assert sampled.verdict == "passed" and sampled.stop_reason == STOP_COMPLETED
    assert [r.index for r in sampled.records] == list(range(10))


def test_curtailment_stops_at_the_first_decisive_sample() -> None:
    sampled = run_sync(Plan(1.0, 30, 0.95, "not_worse"), scripted("PPF"), 1, CLASSIFIER)
    assert sampled.verdict == "failed" and sampled.stop_reason == STOP_SETTLED
    assert len(sampled.records) == 3
    assert isinstance(sampled.first_failure, AssertionError)


def test_errors_are_counted_apart_and_too_many_give_an_error_verdict() -> None:
    sampled = run_sync(Plan(0.5, 10, 0.95, "observed"), scripted("PE"), 1, CLASSIFIER)
    assert (sampled.passes, sampled.failures, sampled.errors) == (4, 0, 3)
    assert sampled.verdict == "passed" and sampled.stop_reason == STOP_SETTLED
    broken = run_sync(Plan(0.5, 10, 0.95, "observed"), scripted("PEEE"), 1, CLASSIFIER)
    assert broken.verdict == "error" and broken.stop_reason == STOP_ERRORS
    assert broken.records[1].error_type == "APIConnectionError"
    assert broken.passes + broken.failures < 5


def test_other_exceptions_fail_and_secrets_are_redacted() -> None:
    def body() -> None:
        raise KeyError("sk-secret leaked into a message")

    sampled = run_sync(Plan(1.0, 1, 0.95, "observed"), body, 1, CLASSIFIER)
    assert sampled.verdict == "failed"
    assert sampled.records[0].error_type == "KeyError"
    assert "sk-secret" not in (sampled.records[0].message or "") and "***" in (
        sampled.records[0].message or ""
    )


def test_control_flow_exceptions_propagate() -> None:
    def body() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sync(Plan(1.0, 5, 0.95, "observed"), body, 2, CLASSIFIER)


def test_threads_run_samples_concurrently() -> None:
    active, peak, lock = 0, 0, threading.Lock()

    def body() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1

    sampled = run_sync(Plan(1.0, 16, 0.95, "observed"), body, 8, CLASSIFIER)
    assert sampled.passes == 16
    assert peak == 8


def test_async_engine_runs_tasks_concurrently_and_curtails() -> None:
    active, peak = 0, 0

    async def body() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1

    sampled = asyncio.run(run_async(Plan(1.0, 12, 0.95, "observed"), body, 4, CLASSIFIER))
    assert sampled.passes == 12 and peak == 4

    async def failing() -> None:
        raise AssertionError("no")

    stopped = asyncio.run(run_async(Plan(1.0, 50, 0.95, "not_worse"), failing, 1, CLASSIFIER))
    assert stopped.verdict == "failed" and len(stopped.records) == 1


def by_index(outcomes: str, slow_first: int, delay: float):
    """A body whose outcome depends on its sample index; the first samples can be slow."""
    from pytest_llmeval.verdict.records import current_trace

    def body() -> None:
        trace = current_trace()
        assert trace is not None and trace.index is not None
        if trace.index < slow_first:
            time.sleep(delay)
        if outcomes[trace.index] == "F":
            raise AssertionError("wrong answer")

    return body


def test_ordered_sampling_runs_the_same_samples_whatever_the_timing() -> None:
    """With the cache on, which samples run depends on outcomes only, so a fast (cached) rerun
    asks for exactly the samples of the slow first run."""
    plan = Plan(0.5, 30, 0.95, "observed")
    outcomes = "FFFF" + "P" * 26
    slow = run_sync(plan, by_index(outcomes, 4, 0.3), 4, CLASSIFIER, ordered=True)
    fast = run_sync(plan, by_index(outcomes, 4, 0.0), 4, CLASSIFIER, ordered=True)
    expected = list(range(22))  # settled on the prefix 0..18; 19..21 were already running
    assert [r.index for r in slow.records] == [r.index for r in fast.records] == expected
    assert slow.verdict == fast.verdict == "passed" and slow.stop_reason == STOP_SETTLED
    unordered = run_sync(plan, by_index(outcomes, 4, 0.3), 4, CLASSIFIER)
    assert unordered.verdict == "passed"


def test_ordered_async_sampling_matches_the_threads() -> None:
    plan = Plan(0.5, 30, 0.95, "observed")
    outcomes = "FFFF" + "P" * 26

    async def body() -> None:
        by_index(outcomes, 0, 0.0)()
        await asyncio.sleep(0)

    sampled = asyncio.run(run_async(plan, body, 4, CLASSIFIER, ordered=True))
    assert [r.index for r in sampled.records] == list(range(22))


def test_a_control_raised_in_one_async_sample_cancels_the_others() -> None:
    """Ctrl-C can land inside a sample task: the test ends at once, not when the rest answer."""

    class Stop(Exception):
        pass

    plan = Plan(pass_rate=0.5, samples=8, confidence=0.95, mode="not_worse", marked=True)
    classifier = Classifier(call_errors(), controls=(Stop,))
    calls = itertools.count()
    aborted: list[tuple[int, BaseException]] = []

    async def body() -> None:
        if next(calls) == 0:
            await asyncio.sleep(0.05)
            raise Stop
        await asyncio.sleep(30)

    async def sample() -> None:
        await run_async(
            plan, body, 4, classifier, on_abort=lambda s, exc: aborted.append((len(s.records), exc))
        )

    with pytest.raises(Stop):
        asyncio.run(asyncio.wait_for(sample(), timeout=10))
    assert [(n, type(exc)) for n, exc in aborted] == [(0, Stop)]
