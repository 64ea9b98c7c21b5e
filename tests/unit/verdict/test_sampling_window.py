"""The sampling engines in the shared window, with a stop signal, and for the cases of a suite."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from pytest_llmeval.errors import call_errors
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.sampling import (
    STOP_COMPLETED,
    STOP_INTERRUPTED,
    Classifier,
    Sampled,
    run_async,
    run_sync,
)
from pytest_llmeval.verdict.window import Stopped, Window

TIMEOUT = 10.0  # a bound for waits that succeed at once when the code is right
CLASSIFIER = Classifier(call_errors())
TWELVE = Plan(1.0, 12, 0.95, "observed")


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_thread_samples_never_exceed_the_window_when_concurrency_is_larger(
    make_holders: Callable[[int], Any],
) -> None:
    window = Window(3)
    holders = make_holders(window.size)
    sampled = run_sync(TWELVE, holders.hold, 8, CLASSIFIER, window=window)
    assert sampled.passes == 12
    assert holders.peak == window.size
    assert wait_until(lambda: window.in_flight == 0)


def test_async_samples_never_exceed_the_window_when_concurrency_is_larger(
    make_holders: Callable[[int], Any],
) -> None:
    window = Window(3)
    holders = make_holders(window.size)
    sampled = asyncio.run(run_async(TWELVE, holders.ahold, 8, CLASSIFIER, window=window))
    assert sampled.passes == 12
    assert holders.peak == window.size
    assert window.in_flight == 0


@pytest.mark.parametrize("engine", ["threads", "asyncio"])
def test_slots_held_elsewhere_leave_a_job_the_rest_and_it_still_runs_every_sample(
    engine: str, make_holders: Callable[[int], Any]
) -> None:
    """Two of three slots belong to other tests: the job runs one sample at a time."""
    window = Window(3)
    assert window.try_acquire() and window.try_acquire()
    holders = make_holders(1)
    if engine == "threads":
        sampled = run_sync(TWELVE, holders.hold, 8, CLASSIFIER, window=window)
    else:
        sampled = asyncio.run(run_async(TWELVE, holders.ahold, 8, CLASSIFIER, window=window))
    assert sampled.passes == 12 and sampled.stop_reason == STOP_COMPLETED
    assert holders.peak == 1
    assert wait_until(lambda: window.in_flight == 2)


def waiting_for_a_slot(thread: threading.Thread) -> bool:
    """Whether `thread` is blocked inside `Window.acquire`."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code is Window.acquire.__code__:
            return True
        frame = frame.f_back
    return False


def test_a_stop_signal_ends_a_run_waiting_for_a_slot_with_stopped() -> None:
    window = Window(1)
    assert window.try_acquire()
    stop: Future[None] = Future()
    outcome: Future[BaseException | Sampled] = Future()
    aborted: list[tuple[int, type[BaseException]]] = []

    def run() -> None:
        try:
            outcome.set_result(
                run_sync(
                    TWELVE,
                    lambda: None,
                    4,
                    CLASSIFIER,
                    window=window,
                    stop=stop,
                    on_abort=lambda s, exc: aborted.append((len(s.records), type(exc))),
                )
            )
        except BaseException as exc:
            outcome.set_result(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert wait_until(lambda: waiting_for_a_slot(thread))
    stop.set_result(None)
    assert isinstance(outcome.result(TIMEOUT), Stopped)
    assert aborted == [(0, Stopped)]
    assert window.in_flight == 1  # the stopped run took no slot


def scripted(outcomes: str) -> Callable[[], None]:
    """A body whose n-th call passes (P) or fails (F) as the script says."""
    counter = itertools.count()
    lock = threading.Lock()

    def body() -> None:
        with lock:
            step = outcomes[next(counter) % len(outcomes)]
        if step == "F":
            raise AssertionError("wrong answer")

    return body


@pytest.mark.parametrize(
    ("pass_rate", "samples", "mode", "script", "alone", "in_suite"),
    [
        # A case alone stops at its first failure; in a suite all 30 samples run: 20/30 < 1.0.
        (1.0, 30, "not_worse", "PPF", "failed", "failed"),
        # 7/10 cannot prove a rate above 0.6, but observed 0.7 meets it.
        (0.6, 10, "proven", "PPPPPPPFFF", "failed", "passed"),
        # 7/10 is not significantly below 0.8, but observed 0.7 misses it.
        (0.8, 10, "not_worse", "PPPPPPPFFF", "passed", "failed"),
    ],
)
def test_a_suite_case_runs_every_sample_and_observes_its_rate(
    pass_rate: float, samples: int, mode: str, script: str, alone: str, in_suite: str
) -> None:
    single = run_sync(Plan(pass_rate, samples, 0.95, mode), scripted(script), 1, CLASSIFIER)
    assert single.verdict == alone
    plan = Plan(pass_rate, samples, 0.95, mode, True, suite=True, population="fixed")
    case = run_sync(plan, scripted(script), 1, CLASSIFIER)
    assert case.verdict == in_suite
    assert [r.index for r in case.records] == list(range(samples))
    assert case.stop_reason == STOP_COMPLETED
    assert case.passes == sum(script[i % len(script)] == "P" for i in range(samples))


def test_an_async_suite_case_runs_every_sample_too() -> None:
    plan = Plan(1.0, 20, 0.95, "not_worse", True, suite=True, population="sampled")
    sync_body = scripted("PF")

    async def body() -> None:
        sync_body()

    case = asyncio.run(run_async(plan, body, 4, CLASSIFIER))
    assert (case.passes, case.failures, case.verdict) == (10, 10, "failed")
    assert len(case.records) == 20 and case.stop_reason == STOP_COMPLETED


def test_a_stopped_run_hands_over_the_samples_it_finished() -> None:
    """A run called off mid-way (a run-ahead job nobody wants) gives `on_abort` what it has."""
    stop: Future[None] = Future()
    calls = itertools.count()
    release = threading.Event()
    aborted: list[Sampled] = []

    def body() -> None:
        if next(calls) == 2:
            stop.set_result(None)
            release.wait(TIMEOUT)

    plan = Plan(1.0, 6, 0.95, "observed")
    with pytest.raises(Stopped):
        run_sync(plan, body, 1, CLASSIFIER, on_abort=lambda s, exc: aborted.append(s), stop=stop)
    release.set()
    [handed] = aborted
    assert [r.index for r in handed.records] == [0, 1]
    assert handed.stop_reason == STOP_INTERRUPTED


@pytest.mark.parametrize("engine", ["threads", "asyncio"])
def test_a_slot_freed_while_the_job_waits_on_a_held_sample_starts_the_next_one(
    engine: str,
) -> None:
    """Another test frees its slot while the job's only sample is held (a request that has
    not been answered): the job takes the slot at once instead of waiting for that sample."""
    window = Window(2)
    assert window.try_acquire()  # another test's sample
    started = itertools.count(1)
    count = 0
    release = threading.Event()

    def hold() -> None:
        nonlocal count
        count = next(started)
        if count > 1:
            release.wait(TIMEOUT)

    async def ahold() -> None:
        nonlocal count
        count = next(started)
        if count > 1:
            await asyncio.to_thread(release.wait, TIMEOUT)

    plan = Plan(1.0, 4, 0.95, "observed")
    outcome: Future[Sampled] = Future()

    def run() -> None:
        if engine == "threads":
            outcome.set_result(run_sync(plan, hold, 2, CLASSIFIER, window=window))
        else:
            outcome.set_result(asyncio.run(run_async(plan, ahold, 2, CLASSIFIER, window=window)))

    threading.Thread(target=run, daemon=True).start()
    try:
        assert wait_until(lambda: count == 2)
        time.sleep(0.05)  # the job is waiting on its held sample now, with the window full
        window.release()
        assert wait_until(lambda: count == 3, timeout=2.0)
    finally:
        release.set()
    assert outcome.result(TIMEOUT).passes == 4
    assert wait_until(lambda: window.in_flight == 0)


class SlowRelease(Window):
    """A window whose `release` starts late, as on a busy machine that pauses the thread."""

    def release(self) -> None:
        time.sleep(0.05)
        super().release()


def test_a_run_that_returned_holds_no_slot() -> None:
    """The next test starts with the whole window, not with slots the last one still holds."""
    window = SlowRelease(2)
    sampled = run_sync(Plan(1.0, 4, 0.95, "observed"), lambda: None, 2, CLASSIFIER, window=window)
    assert sampled.passes == 4
    assert window.in_flight == 0


@pytest.mark.parametrize("engine", ["threads", "asyncio"])
def test_a_run_settled_while_it_waits_for_a_slot_returns_without_one(engine: str) -> None:
    window = Window(2)
    assert window.try_acquire()  # another test's sample, held throughout
    plan = Plan(1.0, 30, 0.95, "not_worse")  # the first failure settles it

    def fail() -> None:
        time.sleep(0.05)  # the run waits for a slot meanwhile
        raise AssertionError("wrong answer")

    async def afail() -> None:
        await asyncio.sleep(0.05)
        raise AssertionError("wrong answer")

    if engine == "threads":
        sampled = run_sync(plan, fail, 2, CLASSIFIER, window=window)
    else:
        sampled = asyncio.run(run_async(plan, afail, 2, CLASSIFIER, window=window))
    assert (sampled.verdict, len(sampled.records)) == ("failed", 1)
    assert window.in_flight == 1
    window.release()
    assert window.try_acquire() and window.try_acquire()  # no waiter was left holding one
