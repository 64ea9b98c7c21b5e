"""Per-process state of a run: the SDK clients and the event loop that runs async test bodies."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pytest_llmeval.calls.budget import Budget
    from pytest_llmeval.calls.cache import ResponseCache
    from pytest_llmeval.calls.client import ClientPool
    from pytest_llmeval.config import Settings

T = TypeVar("T")


class Runtime:
    """Per-process state: SDK clients and the event loop that runs async test bodies."""

    def __init__(
        self,
        settings: Settings,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        limits: Path | None = None,
        transcripts: bool = True,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.cache = cache
        self.limits = limits
        self.transcripts = transcripts
        self._pool: ClientPool | None = None
        self._runner: asyncio.Runner | None = None

    @property
    def pool(self) -> ClientPool:
        """SDK clients, created on first use so runs without LLM tests never import `openai`."""
        if self._pool is None:
            from pytest_llmeval.calls.client import ClientPool

            self._pool = ClientPool(
                self.settings, os.environ, self.budget, self.cache, self.limits, self.transcripts
            )
        return self._pool

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on this process's loop; if anything (Ctrl-C, a plugin's timeout signal)
        cuts it short, cancel it and let it clean up before re-raising, so nothing lingers."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        loop = self._runner.get_loop()
        task = loop.create_task(coro)
        try:
            return loop.run_until_complete(task)
        except BaseException:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            raise

    async def aclose_clients(self) -> None:
        """Close the async SDK clients of the running loop, if any were made."""
        if self._pool is not None:
            await self._pool.aclose()

    def redact(self, text: str) -> str:
        return self._pool.redact(text) if self._pool is not None else text

    def close(self) -> None:
        if self._runner is not None:
            if self._pool is not None:
                self._runner.run(self._pool.aclose())
            self._runner.close()
        if self._pool is not None:
            self._pool.close()
        if self.cache is not None:
            self.cache.close()
