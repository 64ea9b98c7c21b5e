"""Helpers for tests that start and stop processes (imported by name: `tests/` is on sys.path,
and a module of its own, unlike a conftest, cannot be shadowed by another directory's)."""

from __future__ import annotations

import signal
import time

from pytest_llmeval.calls.shared_file import alive


def default_sigint() -> None:
    """In a child about to be sent Ctrl-C: a parent run in the background (SIGINT ignored)
    must not pass that on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_dead(pid: int, seconds: float = 15) -> bool:
    """Wait until process `pid` has exited (a zombie counts as exited)."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)
