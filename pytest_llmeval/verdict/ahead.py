"""Run sampling jobs before their turn, a bounded number of samples ahead, so that the cases of
a benchmark share one concurrency window instead of running one after another.

Each job is launched at most once and consumed at most once, by its key; its result waits
until its turn comes. Jobs that are never consumed (the run stopped early) are called off.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.verdict.sampling import Sampled
from pytest_llmeval.verdict.window import Window

GRACE_S = 5.0  # how long a called-off job may take to hand over the samples it finished


@dataclass
class Launched:
    """A job running ahead: its result, and how to call it off."""

    key: str
    samples: int
    future: Future[Sampled] = field(default_factory=Future)
    stop: Future[None] = field(default_factory=Future)
    task: Future[None] | None = None

    def wait(self) -> Sampled:
        """The job's result; if waiting is cut short (Ctrl-C, a plugin's timeout), the job is
        called off and may hand over what it finished before the exception propagates."""
        try:
            return self.future.result()
        except BaseException:
            if not self.future.done():
                self.cancel()
                with contextlib.suppress(BaseException):
                    self.future.exception(timeout=GRACE_S)
            raise

    def cancel(self) -> None:
        if not self.stop.done():
            self.stop.set_result(None)
        if self.task is not None:
            self.task.cancel()


class RunAhead:
    """Launches jobs while fewer than `lookahead` samples wait for their turn."""

    def __init__(
        self,
        window: Window,
        lookahead: int,
        close_loop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.window = window
        self.lookahead = lookahead
        self._close_loop = close_loop
        self._jobs: dict[str, Launched] = {}
        self._waiting = 0
        self._seen: set[str] = set()
        self._context = contextvars.copy_context()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._threads = _Threads(window.size)

    def waiting(self) -> int:
        """Samples launched and not yet consumed (the most each job may spend)."""
        return self._waiting

    def has_room(self) -> bool:
        return not self._jobs or self._waiting < self.lookahead

    def seen(self, key: str) -> bool:
        return key in self._seen

    def launch(self, key: str, samples: int, run: Callable[[Future[None]], Sampled]) -> None:
        """Run a synchronous job on a thread of the engine; `run` gets the stop signal."""
        job = self._add(key, samples)
        context = self._context.copy()

        def target() -> None:
            try:
                job.future.set_result(context.run(run, job.stop))
            except BaseException as exc:
                job.future.set_exception(exc)

        self._threads.submit(target)

    def launch_async(
        self, key: str, samples: int, make: Callable[[], Coroutine[Any, Any, Sampled]]
    ) -> None:
        """Run an async job on this engine's event loop thread."""
        job = self._add(key, samples)

        async def runner() -> None:
            try:
                job.future.set_result(await make())
            except BaseException as exc:
                job.future.set_exception(exc)

        job.task = asyncio.run_coroutine_threadsafe(runner(), self._event_loop())

    def take(self, key: str) -> Launched | None:
        """The launched job for `key`, handed over once."""
        job = self._jobs.pop(key, None)
        if job is not None:
            self._waiting -= job.samples
        return job

    def close(self) -> None:
        """Call off every job not consumed, then stop the event loop thread."""
        jobs, self._jobs, self._waiting = list(self._jobs.values()), {}, 0
        for job in jobs:
            job.cancel()
        self._threads.close()
        deadline = time.monotonic() + GRACE_S
        for job in jobs:  # a cancelled task needs its loop to run to hand over its samples
            if job.task is not None:
                with contextlib.suppress(BaseException):
                    job.future.exception(timeout=max(0.0, deadline - time.monotonic()))
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._close_loop is not None:
            with contextlib.suppress(BaseException):
                asyncio.run_coroutine_threadsafe(_call(self._close_loop), loop).result(GRACE_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(GRACE_S)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def _add(self, key: str, samples: int) -> Launched:
        if key in self._seen:
            raise ValueError(f"job {key!r} was launched already")
        self._seen.add(key)
        job = self._jobs[key] = Launched(key, samples)
        self._waiting += samples
        return job

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=serve, name="llmeval-ahead-loop", daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
        return self._loop


async def _call(close: Callable[[], Awaitable[None]]) -> None:
    await close()


class _Threads:
    """At most `limit` daemon threads serving one queue of jobs. The caller starts only the
    first; a thread that takes a job while others wait starts the next one, so the caller never
    waits for a thread to start (milliseconds each, on a busy interpreter). No more threads
    than window slots are needed: a job beyond them would only wait for a slot."""

    def __init__(self, limit: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._limit = limit
        self._started = 0

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        with self._lock:
            first = self._started == 0
            if first:
                self._started = 1
        if first:
            self._start()

    def close(self) -> None:
        """Let every thread end once the jobs queued before have run."""
        with self._lock:
            started, self._started = self._started, self._limit  # no thread starts any more
        for _ in range(started):
            self._jobs.put(None)

    def _start(self) -> None:
        threading.Thread(target=self._serve, name="llmeval-ahead", daemon=True).start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                grow = not self._jobs.empty() and self._started < self._limit
                if grow:
                    self._started += 1
            if grow:
                self._start()
            job()
