"""State shared by the processes of one run on one machine (the xdist workers): small JSON
documents in files, each change a read-modify-write under an exclusive flock."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Box:
    """The document while the lock is held: None in a new file; assign `data` to change it."""

    data: Any


class SharedFile:
    """One JSON document that any process (and thread) of the run may update atomically.

    Every update opens the file anew, so flock excludes threads of one process as well. The
    file never shrinks (a shorter document is padded with spaces): a process killed mid-write
    cannot leave a truncated document behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def update(self) -> Iterator[Box]:
        """Hold the lock for a read-modify-write; the document is written back if it changed."""
        with os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            raw = handle.read()
            text = raw.rstrip()
            box = Box(json.loads(text) if text else None)
            yield box
            new = json.dumps(box.data, separators=(",", ":")).encode()
            if box.data is not None and new != text:
                handle.seek(0)
                handle.write(new.ljust(len(raw)))
                handle.flush()  # while the lock is still held


def alive(pid: int) -> bool:
    """Is process `pid` still running? A zombie (exited, not yet reaped) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:  # gone since the kill, unless there is no /proc at all
        return not os.path.exists("/proc/self/stat")
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")
