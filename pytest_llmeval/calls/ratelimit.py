"""Per-model request limits (concurrency, requests and tokens per minute) for the whole run on
one machine: in memory for a single process, in a shared file for xdist workers."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_llmeval.calls.shared_file import SharedFile, alive

CONCURRENCY_POLL_S = 0.01  # a caller blocked on concurrency looks again after this long
ASYNC_POLL_MAX_S = 0.05
RELATIVE_SLACK = 1e-9  # float rounding must not cost an extra sleep after an exact wait


@dataclass
class _Bucket:
    """Token bucket: holds up to `capacity`, refills at `rate` per second, may go into debt."""

    capacity: float
    rate: float
    level: float
    stamp: float

    @classmethod
    def per_minute(cls, capacity: float, now: float) -> _Bucket:
        return cls(capacity, capacity / 60.0, capacity, now)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now

    def saved(self) -> list[float]:
        """What changes: the level and its time (capacity and rate come from the config)."""
        return [self.level, self.stamp]

    def wait(self, cost: float) -> float:
        """Seconds until `cost` can be taken; a cost above capacity needs only a full bucket."""
        missing = min(cost, self.capacity) - self.level
        return 0.0 if missing <= RELATIVE_SLACK * self.capacity else missing / self.rate


@dataclass
class _State:
    """What admission depends on: the current cap, buckets, AIMD counters and who holds slots."""

    limit: int | None
    requests: _Bucket | None
    tokens: _Bucket | None
    holders: dict[int, int] = field(default_factory=dict)  # pid -> permits it holds
    peak: int = 0
    successes: int = 0
    epoch: int = 0

    @property
    def in_flight(self) -> int:
        return sum(self.holders.values())

    def dump(self) -> dict[str, Any]:
        """Plain data for the shared file; bucket sizes and rates come from the config."""
        return {
            "limit": self.limit,
            "holders": {str(pid): count for pid, count in self.holders.items()},
            "peak": self.peak,
            "successes": self.successes,
            "epoch": self.epoch,
            "requests": None if self.requests is None else self.requests.saved(),
            "tokens": None if self.tokens is None else self.tokens.saved(),
        }

    def load(self, data: dict[str, Any]) -> _State:
        """The state saved in `data`, with this (initial) state's bucket sizes and rates."""
        buckets = []
        for bucket, saved in ((self.requests, data["requests"]), (self.tokens, data["tokens"])):
            level, stamp = saved if saved is not None and bucket is not None else (0.0, 0.0)
            buckets.append(
                None if bucket is None else _Bucket(bucket.capacity, bucket.rate, level, stamp)
            )
        return _State(
            limit=data["limit"],
            requests=buckets[0],
            tokens=buckets[1],
            holders={int(pid): count for pid, count in data["holders"].items()},
            peak=data["peak"],
            successes=data["successes"],
            epoch=data["epoch"],
        )


class _Store(Protocol):
    def open(self) -> AbstractContextManager[_State]: ...

    def reclaim(self, state: _State) -> bool: ...


class _Local:
    """The state in this process's memory: the serial fast path."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def open(self) -> _Local:
        return self

    def __enter__(self) -> _State:
        return self.state

    def __exit__(self, *exc_info: object) -> None:
        return None

    def reclaim(self, state: _State) -> bool:
        return False


class _Shared:
    """The state in a file that every process of the run on this machine updates under flock."""

    def __init__(self, path: Path, initial: _State) -> None:
        self._file = SharedFile(path)
        self._initial = initial  # the first process to open the file starts from this

    @contextmanager
    def open(self) -> Iterator[_State]:
        with self._file.update() as box:
            saved = box.data if box.data is not None else self._initial.dump()
            state = self._initial.load(saved)
            yield state
            box.data = state.dump()

    def reclaim(self, state: _State) -> bool:
        """Free the slots of processes that died holding them (a crashed worker)."""
        dead = [pid for pid in state.holders if pid != os.getpid() and not alive(pid)]
        for pid in dead:
            del state.holders[pid]
        return bool(dead)


@dataclass(eq=False)
class Permit:
    """One admitted request; release it when the call ends to free its slot and settle tokens."""

    limiter: ModelLimiter
    estimate: int
    epoch: int
    released: bool = False

    def release(self, *, tokens: int | None = None, throttled: bool = False) -> None:
        """Free the slot; `tokens` corrects the estimate, `throttled` reports a 429. Idempotent."""
        self.limiter._release(self, tokens, throttled)


class ModelLimiter:
    """Admission control for one model, shared by sync and async callers: caps, buckets, AIMD.

    With `shared` (a file path) the state lives in that file and holds for every process that
    uses the same path, so xdist workers share one limit; slots of a dead process are freed.
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        shared: Path | None = None,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._max = max_concurrency
        self._adaptive = adaptive
        self._clock = clock  # shared: must be comparable across processes (monotonic is)
        self._pid = os.getpid()
        now = clock() if rpm is not None or tpm is not None else 0.0
        state = _State(
            limit=max_concurrency,
            requests=None if rpm is None else _Bucket.per_minute(rpm, now),
            tokens=None if tpm is None else _Bucket.per_minute(tpm, now),
        )
        self._store: _Store = _Local(state) if shared is None else _Shared(shared, state)
        self._lock = threading.Lock()  # a C lock in `with`: Ctrl-C cannot leave it held

    @property
    def concurrency_limit(self) -> int | None:
        with self._lock, self._store.open() as state:
            return state.limit

    @property
    def in_flight(self) -> int:
        with self._lock, self._store.open() as state:
            return state.in_flight

    def try_acquire(self, tokens: int = 0) -> Permit | float:
        """A permit now, or the seconds to wait before trying again; `tokens` is an estimate."""
        with self._lock, self._store.open() as state:
            full = state.limit is not None and state.in_flight >= state.limit
            if full and self._store.reclaim(state):
                full = state.limit is not None and state.in_flight >= state.limit
            wait = CONCURRENCY_POLL_S if full else 0.0
            if state.requests is not None or state.tokens is not None:
                now = self._clock()
                for bucket, cost in ((state.requests, 1), (state.tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait(cost))
                if wait > 0.0:
                    return wait
                if state.requests is not None:
                    state.requests.level -= 1
                if state.tokens is not None:
                    state.tokens.level -= tokens
            elif full:
                return wait
            state.holders[self._pid] = state.holders.get(self._pid, 0) + 1
            state.peak = max(state.peak, state.in_flight)
            return Permit(self, tokens, state.epoch)

    def acquire(self, tokens: int = 0, sleep: Callable[[float], None] = time.sleep) -> Permit:
        """Block the calling thread (via `sleep`) until the request is admitted."""
        while not isinstance(result := self.try_acquire(tokens), Permit):
            sleep(result)
        return result

    async def aacquire(self, tokens: int = 0) -> Permit:
        """Wait without blocking the event loop until the request is admitted."""
        while not isinstance(result := self.try_acquire(tokens), Permit):
            await asyncio.sleep(min(result, ASYNC_POLL_MAX_S))
        return result

    def _release(self, permit: Permit, tokens: int | None, throttled: bool) -> None:
        if permit.released:  # a permit belongs to one request, released by its own thread
            return
        with self._lock, self._store.open() as state:
            if permit.released:
                return
            permit.released = True
            if tokens is not None and state.tokens is not None:
                state.tokens.refill(self._clock())
                state.tokens.level = min(
                    state.tokens.capacity, state.tokens.level - (tokens - permit.estimate)
                )
            if self._adaptive and throttled:
                self._decrease(state, permit.epoch)
            elif self._adaptive:
                self._increase(state)
            held = state.holders.get(self._pid, 0) - 1
            if held > 0:
                state.holders[self._pid] = held
            else:
                state.holders.pop(self._pid, None)

    def _decrease(self, state: _State, epoch: int) -> None:
        """Halve to in-flight // 2, once per burst of 429s: permits from before a cut don't cut."""
        if epoch != state.epoch:
            return
        state.limit = max(1, state.in_flight // 2)
        state.successes = 0
        state.epoch += 1

    def _increase(self, state: _State) -> None:
        """Additive increase: one more slot per `limit` successes, until the cut is undone."""
        if state.limit is None or state.limit == self._max:
            return
        state.successes += 1
        if state.successes < state.limit:
            return
        state.successes = 0
        state.limit += 1
        if self._max is None and state.limit > state.peak:
            state.limit = None
