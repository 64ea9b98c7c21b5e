"""Per-model request limits (concurrency, requests and tokens per minute) for one worker process."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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

    def wait(self, cost: float) -> float:
        """Seconds until `cost` can be taken; a cost above capacity needs only a full bucket."""
        missing = min(cost, self.capacity) - self.level
        return 0.0 if missing <= RELATIVE_SLACK * self.capacity else missing / self.rate


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
    """Admission control for one model, shared by sync and async callers: caps, buckets, AIMD."""

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._max = max_concurrency
        self._adaptive = adaptive
        self._clock = clock
        self._lock = threading.Lock()
        now = clock() if rpm is not None or tpm is not None else 0.0
        self._requests = None if rpm is None else _Bucket.per_minute(rpm, now)
        self._tokens = None if tpm is None else _Bucket.per_minute(tpm, now)
        self._limit = max_concurrency
        self._in_flight = 0
        self._peak = 0
        self._successes = 0
        self._epoch = 0

    @property
    def concurrency_limit(self) -> int | None:
        with self._lock:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def try_acquire(self, tokens: int = 0) -> Permit | float:
        """A permit now, or the seconds to wait before trying again; `tokens` is an estimate."""
        with self._lock:
            full = self._limit is not None and self._in_flight >= self._limit
            wait = CONCURRENCY_POLL_S if full else 0.0
            if self._requests is not None or self._tokens is not None:
                now = self._clock()
                for bucket, cost in ((self._requests, 1), (self._tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait(cost))
                if wait > 0.0:
                    return wait
                if self._requests is not None:
                    self._requests.level -= 1
                if self._tokens is not None:
                    self._tokens.level -= tokens
            elif full:
                return wait
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return Permit(self, tokens, self._epoch)

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
        with self._lock:
            if permit.released:
                return
            permit.released = True
            if tokens is not None and self._tokens is not None:
                self._tokens.refill(self._clock())
                self._tokens.level = min(
                    self._tokens.capacity, self._tokens.level - (tokens - permit.estimate)
                )
            if self._adaptive and throttled:
                self._decrease(permit.epoch)
            elif self._adaptive:
                self._increase()
            self._in_flight -= 1

    def _decrease(self, epoch: int) -> None:
        """Halve to in-flight // 2, once per burst of 429s: permits from before a cut don't cut."""
        if epoch != self._epoch:
            return
        self._limit = max(1, self._in_flight // 2)
        self._successes = 0
        self._epoch += 1

    def _increase(self) -> None:
        """Additive increase: one more slot per `limit` successes, until the cut is undone."""
        if self._limit is None or self._limit == self._max:
            return
        self._successes += 1
        if self._successes < self._limit:
            return
        self._successes = 0
        self._limit += 1
        if self._max is None and self._limit > self._peak:
            self._limit = None
