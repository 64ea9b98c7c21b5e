"""Jobs run ahead of their turn with the real sampling engines: one shared window, lookahead
accounting, and calling off the jobs nobody takes."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from pytest_llmeval.errors import call_errors
from pytest_llmeval.verdict.ahead import Launched, RunAhead
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.sampling import (
    STOP_INTERRUPTED,
    Classifier,
    Sampled,
    run_async,
    run_sync,
)
from pytest_llmeval.verdict.window import Stopped, Window

TIMEOUT = 10.0  # a bound for waits that succeed at once when the code is right
CLASSIFIER = Classifier(call_errors())
ONE = Plan(1.0, 1, 0.95, "observed")
FOUR = Plan(1.0, 4, 0.95, "observed")  # open until the last sample: every sample runs


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


class Aborts:
    """What `on_abort` was handed: the finished samples' indexes, the stop reason, the cause."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], str, type[BaseException]]] = []

    def __call__(self, sampled: Sampled, exc: BaseException) -> None:
        self.calls.append(([r.index for r in sampled.records], sampled.stop_reason, type(exc)))


def second_sample_hangs(started: threading.Event, release: threading.Event) -> Callable[[], None]:
    """A body whose first sample passes and whose second one waits until `release`."""
    calls = itertools.count()

    def body() -> None:
        if next(calls) == 1:
            started.set()
            release.wait(TIMEOUT)

    return body


@pytest.fixture
def engines() -> Iterator[Callable[..., RunAhead]]:
    """RunAhead engines that are closed after the test, whatever it did."""
    made: list[RunAhead] = []

    def make(*args: Any, **kwargs: Any) -> RunAhead:
        made.append(RunAhead(*args, **kwargs))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def taken(engine: RunAhead, key: str) -> Launched:
    job = engine.take(key)
    assert job is not None, f"{key} was not launched"
    return job


def test_one_sample_jobs_run_ahead_in_one_shared_window(
    engines: Callable[..., RunAhead], make_holders: Callable[[int], Any]
) -> None:
    """Four one-sample jobs, two on threads and two on the engine's loop, in a window of two:
    two samples of different jobs run at once, never three."""
    window = Window(2)
    engine = engines(window, 8)
    holders = make_holders(window.size)

    async def held() -> None:
        await holders.ahold()

    for key in ("sync-1", "sync-2"):
        engine.launch(
            key,
            1,
            lambda stop: run_sync(ONE, holders.hold, 8, CLASSIFIER, window=window, stop=stop),
        )
    for key in ("async-1", "async-2"):
        engine.launch_async(key, 1, lambda: run_async(ONE, held, 8, CLASSIFIER, window=window))
    results = {key: taken(engine, key).wait() for key in ("sync-1", "sync-2", "async-1", "async-2")}
    assert {key: r.verdict for key, r in results.items()} == dict.fromkeys(results, "passed")
    assert holders.peak == window.size
    assert wait_until(lambda: window.in_flight == 0)


def test_wait_returns_the_result_and_reraises_what_the_job_raised(
    engines: Callable[..., RunAhead],
) -> None:
    engine = engines(Window(2), 8)
    engine.launch("ok", 1, lambda stop: run_sync(ONE, lambda: None, 1, CLASSIFIER, stop=stop))

    def broken(stop: Future[None]) -> Sampled:
        raise RuntimeError("the engine broke")

    engine.launch("broken", 1, broken)
    assert taken(engine, "ok").wait().passes == 1
    with pytest.raises(RuntimeError, match="the engine broke"):
        taken(engine, "broken").wait()


def test_close_calls_off_a_sync_job_which_hands_over_its_finished_samples(
    engines: Callable[..., RunAhead],
) -> None:
    window = Window(4)
    engine = engines(window, 8)
    started, release = threading.Event(), threading.Event()
    aborts = Aborts()
    raised: Future[BaseException] = Future()

    def run(stop: Future[None]) -> Sampled:
        body = second_sample_hangs(started, release)
        try:
            return run_sync(FOUR, body, 1, CLASSIFIER, on_abort=aborts, window=window, stop=stop)
        except BaseException as exc:
            raised.set_result(exc)
            raise

    go = threading.Event()
    engine.launch("called-off", 4, run)
    engine.launch(
        "taken", 1, lambda stop: run_sync(ONE, lambda: go.wait(TIMEOUT), 1, CLASSIFIER, stop=stop)
    )
    kept = taken(engine, "taken")
    assert started.wait(TIMEOUT)
    engine.close()
    assert isinstance(raised.result(TIMEOUT), Stopped)
    assert aborts.calls == [([0], STOP_INTERRUPTED, Stopped)]
    assert engine.take("called-off") is None
    go.set()
    assert kept.wait().verdict == "passed"  # a job already taken, still running, goes on
    release.set()
    assert wait_until(lambda: window.in_flight == 0)  # the hung sample gave its slot back


def test_close_cancels_an_async_job_then_closes_the_loop_on_its_own_thread(
    engines: Callable[..., RunAhead],
) -> None:
    window = Window(4)
    closed_on: list[threading.Thread] = []

    async def close_loop() -> None:
        closed_on.append(threading.current_thread())

    engine = engines(window, 8, close_loop)
    started = threading.Event()
    calls = itertools.count()
    aborts = Aborts()
    raised: Future[BaseException] = Future()

    async def body() -> None:
        if next(calls) == 1:
            started.set()
            await asyncio.Future()  # never answers

    async def job() -> Sampled:
        try:
            return await run_async(FOUR, body, 1, CLASSIFIER, on_abort=aborts, window=window)
        except BaseException as exc:
            raised.set_result(exc)
            raise

    engine.launch_async("called-off", 4, job)
    assert started.wait(TIMEOUT)
    engine.close()
    assert isinstance(raised.result(TIMEOUT), asyncio.CancelledError)
    assert aborts.calls == [([0], STOP_INTERRUPTED, asyncio.CancelledError)]
    [thread] = closed_on
    assert thread.name == "llmeval-ahead-loop" and thread is not threading.current_thread()
    assert not thread.is_alive()
    assert window.in_flight == 0


def waiting_in(thread: threading.Thread, code: Any) -> bool:
    """Whether `code` is on `thread`'s stack."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


class Interrupted(Exception):
    """Stands for Ctrl-C or another plugin's timeout landing in the waiting thread."""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_a_wait_cut_short_calls_the_job_off_and_lets_it_hand_over_its_samples(
    engines: Callable[..., RunAhead],
) -> None:
    main = threading.current_thread()
    if main is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    engine = engines(Window(4), 8)
    started, release = threading.Event(), threading.Event()
    aborts = Aborts()
    engine.launch(
        "a",
        4,
        lambda stop: run_sync(
            FOUR, second_sample_hangs(started, release), 1, CLASSIFIER, on_abort=aborts, stop=stop
        ),
    )
    job = taken(engine, "a")

    interrupted = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        if not interrupted.is_set():
            interrupted.set()
            raise Interrupted

    def poke() -> None:
        """Signal the main thread once it waits for the job; again if the signal came just
        before it blocked (then it is only handled once the thread wakes up)."""
        if started.wait(TIMEOUT) and wait_until(lambda: waiting_in(main, Launched.wait.__code__)):
            deadline = time.monotonic() + TIMEOUT
            while not interrupted.is_set() and time.monotonic() < deadline:
                signal.pthread_kill(main.ident or 0, signal.SIGUSR1)
                interrupted.wait(0.01)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        poker = threading.Thread(target=poke, daemon=True)
        poker.start()
        with pytest.raises(Interrupted):
            job.wait()
        handed_over = list(aborts.calls)  # before wait() re-raised
        poker.join(TIMEOUT)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    assert job.stop.done()  # the job was called off
    assert handed_over == [([0], STOP_INTERRUPTED, Stopped)]
    assert isinstance(job.future.exception(0), Stopped)


async def nothing() -> None:
    pass


def quick(plan: Plan) -> Callable[[Future[None]], Sampled]:
    return lambda stop: run_sync(plan, lambda: None, 1, CLASSIFIER, stop=stop)


def test_lookahead_counts_samples_launched_and_not_yet_taken(
    engines: Callable[..., RunAhead],
) -> None:
    engine = engines(Window(2), 5)
    assert engine.has_room() and engine.waiting() == 0
    engine.launch("a", 3, quick(Plan(1.0, 3, 0.95, "observed")))
    assert engine.waiting() == 3 and engine.has_room()
    engine.launch("b", 2, quick(Plan(1.0, 2, 0.95, "observed")))
    assert engine.waiting() == 5 and not engine.has_room()
    assert taken(engine, "a").wait().passes == 3
    assert engine.waiting() == 2 and engine.has_room()
    assert engine.take("a") is None  # handed over once
    assert engine.seen("a") and engine.seen("b") and not engine.seen("c")
    assert taken(engine, "b").wait().passes == 2
    assert engine.waiting() == 0


@pytest.mark.parametrize("lookahead", [0, 2])
def test_one_job_may_run_ahead_whatever_its_size_when_nothing_waits(
    engines: Callable[..., RunAhead], lookahead: int
) -> None:
    engine = engines(Window(2), lookahead)
    assert engine.has_room()
    engine.launch("big", 4, quick(FOUR))
    assert engine.waiting() == 4 and not engine.has_room()
    assert taken(engine, "big").wait().passes == 4
    assert engine.has_room()


def test_a_key_is_launched_at_most_once(engines: Callable[..., RunAhead]) -> None:
    engine = engines(Window(2), 8)
    engine.launch("a", 1, quick(ONE))
    with pytest.raises(ValueError, match="job 'a' was launched already"):
        engine.launch("a", 1, quick(ONE))
    assert taken(engine, "a").wait().passes == 1
    with pytest.raises(ValueError, match="job 'a' was launched already"):  # even once taken
        engine.launch_async("a", 1, lambda: run_async(ONE, nothing, 1, CLASSIFIER))
    assert engine.waiting() == 0


def test_close_hands_over_an_async_job_before_the_loop_stops(
    engines: Callable[..., RunAhead],
) -> None:
    """Without a `close_loop` round trip, close still waits for the cancelled task: the samples
    it finished are handed over and its window slot comes back."""
    window = Window(4)
    engine = engines(window, 8)  # no close_loop
    started, calls, aborts = threading.Event(), itertools.count(), Aborts()

    async def body() -> None:
        if next(calls) == 1:
            started.set()
            await asyncio.Future()  # a sample that never answers

    engine.launch_async(
        "k", 4, lambda: run_async(FOUR, body, 1, CLASSIFIER, on_abort=aborts, window=window)
    )
    assert started.wait(TIMEOUT)
    engine.close()
    assert aborts.calls == [([0], "interrupted", asyncio.CancelledError)]
    assert window.in_flight == 0
