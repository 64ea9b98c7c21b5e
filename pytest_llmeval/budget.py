"""A spending cap for the whole run, shared by every xdist worker through one locked file."""

from __future__ import annotations

import fcntl
from pathlib import Path


class BudgetExhausted(Exception):
    """The run has spent its budget; no new request is sent."""


class Budget:
    """`--llm-budget`: requests start only while the run's spend is below the limit.

    Requests already running finish and are charged, so the final spend can pass the limit by
    what was in flight; the ledger file holds the spend in USD as text, updated under flock.
    """

    def __init__(self, limit_usd: float, ledger: Path) -> None:
        self.limit_usd = limit_usd
        self.ledger = ledger

    @classmethod
    def create(cls, limit_usd: float, ledger: Path) -> Budget:
        ledger.write_text("0.0")
        return cls(limit_usd, ledger)

    def spent(self) -> float:
        with self.ledger.open("r") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            return float(handle.read() or 0.0)

    def check(self) -> None:
        """Raise BudgetExhausted once the spend has reached the limit."""
        spent = self.spent()
        if spent >= self.limit_usd:
            raise BudgetExhausted(
                f"budget exhausted: ${spent:.4f} spent of --llm-budget=${self.limit_usd:g}; "
                "no new requests are sent"
            )

    def charge(self, usd: float) -> None:
        if usd <= 0:
            return
        with self.ledger.open("r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            total = float(handle.read() or 0.0) + usd
            handle.seek(0)
            handle.write(repr(total))
            handle.truncate()
