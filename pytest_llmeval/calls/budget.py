"""A spending cap for the whole run: every request reserves its worst-case cost before it is
sent and settles it with its real cost, in one ledger shared by every xdist worker on the
machine, so the spend plus what is in flight never passes the limit."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.calls.shared_file import SharedFile, alive
from pytest_llmeval.errors import BudgetExhausted

DEFAULT_MAX_OUTPUT_TOKENS = 32_768  # the worst case of a request without max_tokens
RESERVE_POLL_S = 0.02  # a request waiting for others' reservations to settle looks again
SLACK_USD = 1e-12  # float rounding must not refuse a request that fits exactly


def worst_case_tokens(body: Mapping[str, Any], max_output_tokens: int) -> tuple[int, int]:
    """Upper bounds of a request's prompt and output tokens.

    Prompt: one token per character of the whole request as JSON (tokenizers make at most one
    token per byte; the JSON's keys and quotes cover the chat template's own tokens; non-ASCII
    text is escaped to more characters than it has bytes). Output: `max_completion_tokens` or
    `max_tokens`, else `max_output_tokens`, for each of the `n` (or `best_of`) answers.
    """
    prompt = len(json.dumps(body, default=str))
    asked = [body.get(key) for key in ("max_completion_tokens", "max_tokens")]
    limits = [value for value in asked if isinstance(value, int) and value > 0]
    choices = [body.get(key) for key in ("n", "best_of")]
    answers = max([1, *(value for value in choices if isinstance(value, int))])
    return prompt, max(limits, default=max_output_tokens) * answers


@dataclass(eq=False)
class Reservation:
    """A request's worst-case cost, held against the budget while the request runs."""

    budget: Budget
    usd: float
    settled: bool = False

    def settle(self, cost_usd: float = 0.0) -> None:
        """Free the reservation and charge the real cost (0 for a failed request). Idempotent."""
        if not self.settled:
            self.settled = True
            self.budget._settle(self.usd, cost_usd)


class Budget:
    """`--llm-budget`: a request is sent only if its worst case fits next to the run's spend
    and the reservations of the requests in flight; one that could never fit is refused.

    The ledger is a JSON file, `{"spent": USD, "reserved": {pid: [requests, USD]}}`, updated
    under flock. Reservations of a process that died (a crashed worker) are charged in full:
    its requests may have been billed, and the cap must hold.
    """

    def __init__(self, limit_usd: float, ledger: Path) -> None:
        self.limit_usd = limit_usd
        self.ledger = ledger
        self._file = SharedFile(ledger)

    @classmethod
    def create(cls, limit_usd: float, ledger: Path) -> Budget:
        ledger.write_text(json.dumps({"spent": 0.0, "reserved": {}}))
        return cls(limit_usd, ledger)

    @contextmanager
    def _open(self) -> Iterator[dict[str, Any]]:
        with self._file.update() as box:
            if box.data is None:
                box.data = {"spent": 0.0, "reserved": {}}
            yield box.data

    def spent(self) -> float:
        """USD charged so far, including the reservations of processes that died."""
        with self._open() as ledger:
            _reclaim(ledger)
            return float(ledger["spent"])

    def reserved(self) -> float:
        """USD held by the requests in flight."""
        with self._open() as ledger:
            return _outstanding(ledger)

    def try_reserve(self, usd: float) -> Reservation | float:
        """Reserve `usd` now, or return the seconds to wait for other reservations to settle;
        raise BudgetExhausted when it does not fit even if they all settled at no cost."""
        with self._open() as ledger:
            if not self._fits(ledger, usd) and not (_reclaim(ledger) and self._fits(ledger, usd)):
                return RESERVE_POLL_S
            held = ledger["reserved"].setdefault(str(os.getpid()), [0, 0.0])
            held[0] += 1
            held[1] += usd
        return Reservation(self, usd)

    def _fits(self, ledger: Mapping[str, Any], usd: float) -> bool:
        """Does `usd` fit next to the reservations? Raise if it cannot fit without them either."""
        left = self.limit_usd - ledger["spent"]
        if usd > left + SLACK_USD:
            raise BudgetExhausted(
                f"budget exhausted: ${ledger['spent']:.4f} spent of --llm-budget="
                f"${self.limit_usd:g}; this request could cost up to ${usd:.4g} (its prompt "
                f"and max_tokens at the model's prices), more than the ${max(left, 0.0):.4g} "
                "left, so it is not sent"
            )
        return bool(usd <= left - _outstanding(ledger) + SLACK_USD)

    def reserve(self, usd: float, sleep: Callable[[float], None] = time.sleep) -> Reservation:
        """Block the calling thread (via `sleep`) until `usd` is reserved."""
        while not isinstance(result := self.try_reserve(usd), Reservation):
            sleep(result)
        return result

    async def areserve(self, usd: float) -> Reservation:
        """Wait without blocking the event loop until `usd` is reserved."""
        while not isinstance(result := self.try_reserve(usd), Reservation):
            await asyncio.sleep(result)
        return result

    def _settle(self, reserved_usd: float, cost_usd: float) -> None:
        with self._open() as ledger:
            pid = str(os.getpid())
            held = ledger["reserved"].get(pid)
            if held is not None:
                held[0] -= 1
                held[1] -= reserved_usd
                if held[0] <= 0:  # no float residue outlives the last reservation
                    del ledger["reserved"][pid]
            ledger["spent"] += max(cost_usd, 0.0)


def _outstanding(ledger: Mapping[str, Any]) -> float:
    return float(sum(usd for _, usd in ledger["reserved"].values()))


def _reclaim(ledger: dict[str, Any]) -> bool:
    """Charge the reservations of processes that died; True if there were any."""
    dead = [pid for pid in ledger["reserved"] if int(pid) != os.getpid() and not alive(int(pid))]
    for pid in dead:
        ledger["spent"] += ledger["reserved"].pop(pid)[1]
    return bool(dead)
