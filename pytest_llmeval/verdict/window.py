"""The concurrency window: slots shared by every sample of every test in this process, taken
from threads (synchronous bodies) and from event loops (async bodies) alike."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future


class Stopped(Exception):
    """Sampling was called off before its turn came (a run-ahead job that is no longer wanted)."""


class Window:
    """At most `size` samples in flight; `--llm-concurrency` sets the size."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self.size = size
        self._free = size
        self._cond = threading.Condition()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._watchers: list[Future[None]] = []

    @property
    def in_flight(self) -> int:
        return self.size - self._free

    def try_acquire(self) -> bool:
        with self._cond:
            if self._free <= 0:
                return False
            self._free -= 1
            return True

    def acquire(self, stop: Future[None] | None = None) -> None:
        """Take a slot, waiting for one; raises Stopped once `stop` is done (the caller has
        `stop` call `wake_all` when it is set)."""
        with self._cond:
            while self._free <= 0:
                if stop is not None and stop.done():
                    raise Stopped
                self._cond.wait()
            self._free -= 1

    async def aacquire(self) -> None:
        """Take a slot from an event loop, without blocking the loop or any executor thread."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._free > 0:
                    self._free -= 1
                    return
                waiter = (loop, loop.create_future())
                self._waiters.append(waiter)
            try:
                await waiter[1]
            except BaseException:
                with self._cond:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                self._wake_one()  # pass on a wake-up this waiter may have swallowed
                raise

    def freed(self) -> Future[None]:
        """Done once a slot may be free (now, or at the next release): for a thread that waits
        on its own samples and for a slot at once."""
        future: Future[None] = Future()
        with self._cond:
            if self._free <= 0:
                self._watchers.append(future)
                return future
        future.set_result(None)
        return future

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify()
            watchers, self._watchers = self._watchers, []
        for future in watchers:
            future.set_result(None)
        self._wake_one()

    def wake_all(self) -> None:
        """Let blocked threads look at their stop signal again."""
        with self._cond:
            self._cond.notify_all()

    def _wake_one(self) -> None:
        while True:
            with self._cond:
                if self._free <= 0 or not self._waiters:
                    return
                loop, future = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(_resolve, future)
                return
            except RuntimeError:  # that loop is closed: wake the next waiter
                continue


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
