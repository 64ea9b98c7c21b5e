"""Shared by the window, sampling and run-ahead tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

TIMEOUT = 10.0  # a bound for waits that succeed at once when the code is right


class Holders:
    """Counts the samples in their bodies at once; the first ones stay until `size` are in,
    so the peak reaches `size` exactly when that many may run together."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.full = threading.Event()
        self.now = self.peak = 0

    def _enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.now >= self.size:
                self.full.set()

    def _leave(self) -> None:
        with self.lock:
            self.now -= 1

    def hold(self) -> None:
        self._enter()
        self.full.wait(TIMEOUT)
        time.sleep(0)
        self._leave()

    async def ahold(self) -> None:
        self._enter()
        if not self.full.is_set():
            await asyncio.to_thread(self.full.wait, TIMEOUT)
        await asyncio.sleep(0)
        self._leave()


@pytest.fixture
def make_holders() -> Callable[[int], Holders]:
    """`make_holders(size)`: a `Holders` counter for sample bodies."""
    return Holders
