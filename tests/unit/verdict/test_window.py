"""The concurrency window shared by threads and event loops: slots, waiting, waking, calling off.

No sleeps to hope a thread got somewhere: a waiter is known to be parked when its stack shows
it waiting inside the window, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from pytest_llmeval.verdict.window import Stopped, Window

TIMEOUT = 10.0  # a bound for waits that succeed at once when the code is right
T = TypeVar("T")


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll `condition` until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def waiting_in_acquire(thread: threading.Thread) -> bool:
    """Whether `thread` is parked on the window's condition inside `Window.acquire`."""
    frame = sys._current_frames().get(thread.ident or -1)
    return (
        frame is not None
        and frame.f_code.co_name == "wait"
        and frame.f_back is not None
        and frame.f_back.f_code is Window.acquire.__code__
    )


class LoopThread:
    """An event loop serving on its own thread, like another test's loop in the same process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the loop's thread and return its result (fails if the loop hangs)."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(TIMEOUT)

    def spawn(
        self, make: Callable[[], Coroutine[Any, Any, str]]
    ) -> tuple[asyncio.Task[str], Future[str]]:
        """Start a task on the loop; the future gets its result, or "cancelled"."""
        done: Future[str] = Future()

        def finished(task: asyncio.Task[str]) -> None:
            done.set_result("cancelled" if task.cancelled() else task.result())

        def start() -> asyncio.Task[str]:
            task = self.loop.create_task(make())
            task.add_done_callback(finished)
            return task

        return self.call(start), done

    def parked(self, task: asyncio.Task[str]) -> bool:
        """Whether `task` is suspended inside `Window.aacquire`, waiting for a slot."""

        def awaiting() -> bool:
            coro: Any = task.get_coro()
            while (
                coro is not None and getattr(coro, "cr_code", None) is not Window.aacquire.__code__
            ):
                coro = getattr(coro, "cr_await", None)
            return coro is not None and coro.cr_await is not None

        return self.call(awaiting)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        if not self.thread.is_alive():
            self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.mark.parametrize("size", [0, -2])
def test_a_window_needs_at_least_one_slot(size: int) -> None:
    with pytest.raises(ValueError, match=f"window size must be >= 1, got {size}"):
        Window(size)


def test_try_acquire_takes_free_slots_only_and_release_gives_them_back() -> None:
    window = Window(2)
    assert (window.try_acquire(), window.try_acquire(), window.try_acquire()) == (True, True, False)
    assert window.in_flight == 2
    window.release()
    assert window.in_flight == 1
    assert window.try_acquire() and window.in_flight == 2


def test_freed_is_done_while_a_slot_is_free_else_at_the_next_release() -> None:
    window = Window(1)
    assert window.freed().done()
    assert window.try_acquire()
    freed = window.freed()
    assert not freed.done()
    window.release()
    assert freed.done()
    assert window.in_flight == 0  # a hint only: it takes no slot


def test_never_more_than_size_holders_across_threads_and_event_loops() -> None:
    """Threads and tasks on three event loops take and give back slots at once; the first
    holders keep theirs until the window has been full, so the peak must reach the size."""
    window = Window(3)
    threads, loops, tasks, cycles = 6, 3, 4, 40
    lock = threading.Lock()
    full = threading.Event()
    holders = peak = completed = 0

    def enter() -> None:
        nonlocal holders, peak
        with lock:
            holders += 1
            peak = max(peak, holders)
            if holders == window.size:
                full.set()

    def leave() -> None:
        nonlocal holders, completed
        with lock:
            holders -= 1
            completed += 1

    def thread_worker() -> None:
        for _ in range(cycles):
            window.acquire()
            enter()
            full.wait(TIMEOUT)
            time.sleep(0)  # let others run while this thread holds its slot
            leave()
            window.release()

    async def task_worker() -> None:
        for _ in range(cycles):
            await window.aacquire()
            enter()
            if not full.is_set():
                await asyncio.to_thread(full.wait, TIMEOUT)
            await asyncio.sleep(0)
            leave()
            window.release()

    async def loop_main() -> None:
        await asyncio.gather(*(task_worker() for _ in range(tasks)))

    workers = [threading.Thread(target=thread_worker, daemon=True) for _ in range(threads)]
    workers += [
        threading.Thread(target=asyncio.run, args=(loop_main(),), daemon=True) for _ in range(loops)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    assert not any(worker.is_alive() for worker in workers), "a holder never got a slot"
    assert completed == (threads + loops * tasks) * cycles
    assert peak == window.size
    assert window.in_flight == 0


def test_a_full_window_makes_threads_and_tasks_wait_and_one_release_admits_one(
    loop_thread: LoopThread,
) -> None:
    window = Window(2)
    assert window.try_acquire() and window.try_acquire()
    thread_got = threading.Event()

    def thread_waiter() -> None:
        window.acquire()
        thread_got.set()

    async def task_waiter() -> str:
        await window.aacquire()
        return "acquired"

    thread = threading.Thread(target=thread_waiter, daemon=True)
    thread.start()
    task, task_done = loop_thread.spawn(task_waiter)
    assert wait_until(lambda: waiting_in_acquire(thread) and loop_thread.parked(task))
    window.release()
    assert wait_until(lambda: thread_got.is_set() or task_done.done())
    if thread_got.is_set():  # the other one goes back to waiting: no third holder
        assert wait_until(lambda: loop_thread.parked(task))
    else:
        assert wait_until(lambda: waiting_in_acquire(thread))
    assert window.in_flight == 2
    assert thread_got.is_set() != task_done.done()
    window.release()
    assert thread_got.wait(TIMEOUT) and task_done.result(TIMEOUT) == "acquired"
    assert window.in_flight == 2


def test_a_release_wakes_a_thread_waiting_for_a_slot() -> None:
    window = Window(1)
    assert window.try_acquire()
    got = threading.Event()

    def waiter() -> None:
        window.acquire()
        got.set()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert wait_until(lambda: waiting_in_acquire(thread))
    assert not got.is_set()
    window.release()
    assert got.wait(TIMEOUT)
    assert window.in_flight == 1  # the waiter holds the slot now
    assert not window.try_acquire()


def test_an_async_waiter_on_another_loop_is_woken_by_a_release_from_a_plain_thread(
    loop_thread: LoopThread,
) -> None:
    window = Window(1)
    assert window.try_acquire()

    async def waiter() -> str:
        await window.aacquire()
        return "acquired"

    task, done = loop_thread.spawn(waiter)
    assert wait_until(lambda: loop_thread.parked(task))
    assert loop_thread.call(lambda: "served") == "served"  # waiting does not block its loop
    releaser = threading.Thread(target=window.release)
    releaser.start()
    releaser.join(TIMEOUT)
    assert done.result(TIMEOUT) == "acquired"
    assert window.in_flight == 1


def test_a_cancelled_async_waiter_keeps_no_slot_and_the_next_waiter_gets_it(
    loop_thread: LoopThread,
) -> None:
    window = Window(1)
    assert window.try_acquire()

    async def waiter() -> str:
        await window.aacquire()
        return "acquired"

    first, first_done = loop_thread.spawn(waiter)
    assert wait_until(lambda: loop_thread.parked(first))
    second, second_done = loop_thread.spawn(waiter)
    assert wait_until(lambda: loop_thread.parked(second))
    loop_thread.call(first.cancel)
    assert first_done.result(TIMEOUT) == "cancelled"
    assert window.in_flight == 1  # still only the slot taken at the start
    window.release()
    assert second_done.result(TIMEOUT) == "acquired"
    assert window.in_flight == 1
    window.release()  # on the second waiter's behalf
    assert window.in_flight == 0 and window.try_acquire()


@pytest.mark.parametrize("when", ["before its wake-up runs", "after its wake-up ran"])
def test_a_waiter_cancelled_just_as_it_is_woken_passes_the_slot_on(
    loop_thread: LoopThread, when: str
) -> None:
    """The release picks the first waiter, which is cancelled before it can take the slot:
    the wake-up must go to the next waiter, not be lost with a free slot nobody takes."""
    window = Window(1)
    assert window.try_acquire()

    async def waiter() -> str:
        await window.aacquire()
        return "acquired"

    first, first_done = loop_thread.spawn(waiter)
    assert wait_until(lambda: loop_thread.parked(first))
    second, second_done = loop_thread.spawn(waiter)
    assert wait_until(lambda: loop_thread.parked(second))

    def release_then_cancel_the_woken() -> None:
        window.release()  # schedules the first waiter's wake-up on this loop
        if when == "before its wake-up runs":
            first.cancel()
        else:
            loop_thread.loop.call_soon(first.cancel)

    loop_thread.call(release_then_cancel_the_woken)
    assert first_done.result(TIMEOUT) == "cancelled"
    assert second_done.result(TIMEOUT) == "acquired"
    assert window.in_flight == 1
    window.release()
    assert window.in_flight == 0


def test_acquire_raises_stopped_once_its_stop_signal_is_set() -> None:
    window = Window(1)
    assert window.try_acquire()
    stop: Future[None] = Future()
    stop.add_done_callback(lambda _: window.wake_all())  # as run_sync wires it
    outcome: Future[str] = Future()

    def waiter() -> None:
        try:
            window.acquire(stop)
        except Stopped:
            outcome.set_result("stopped")
        else:
            outcome.set_result("acquired")

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert wait_until(lambda: waiting_in_acquire(thread))
    stop.set_result(None)
    assert outcome.result(TIMEOUT) == "stopped"
    assert window.in_flight == 1  # the called-off waiter took no slot
    with pytest.raises(Stopped):  # already called off: no waiting at all
        window.acquire(stop)
    window.release()
    assert window.in_flight == 0
