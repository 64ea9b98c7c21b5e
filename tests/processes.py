"""Helpers for tests that start and stop processes (imported by name: `tests/` is on sys.path,
and a module of its own, unlike a conftest, cannot be shadowed by another directory's)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

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


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pytest_llmeval ARGS` in `folder`, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_llmeval", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
