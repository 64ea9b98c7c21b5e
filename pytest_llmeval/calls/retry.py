"""Retry decisions for model calls: which failures to retry and how long to wait."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

import openai

from pytest_llmeval.errors import TRANSPORT, http_error

RETRYABLE_STATUSES = frozenset({408, 409, 429})


MAX_EXPONENT = 1000  # 2.0 ** 1024 overflows; any cap is reached long before this


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked us to wait (uncapped, may be negative), or None if it did not say.

    `retry-after-ms` wins over `retry-after`: seconds, or an HTTP date compared with epoch `now`.
    """
    for name, per_second in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / per_second
        except ValueError:
            continue
        if not math.isnan(seconds):
            return seconds
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a model call; the SDK's own retries are turned off."""

    retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0

    def retryable(self, exc: BaseException) -> bool:
        """Rate limits, timeouts, lock conflicts, server and connection errors may pass on retry."""
        if isinstance(exc, openai.RateLimitError | openai.APIConnectionError):
            return True
        if http_error(exc, TRANSPORT):
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
        return False

    def delay(
        self,
        attempt: int,
        exc: BaseException,
        rng: random.Random,
        *,
        clock: Callable[[], float] = time.time,
    ) -> float:
        """Seconds before retry `attempt` (0-based): the server's Retry-After, else full jitter."""
        if isinstance(exc, openai.APIStatusError):
            asked = retry_after(exc.response.headers, clock())
            if asked is not None:
                return min(max(asked, 0.0), self.max_retry_after_s)
        cap = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt, MAX_EXPONENT))
        return rng.uniform(0.0, cap)
