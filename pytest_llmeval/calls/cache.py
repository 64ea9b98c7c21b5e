"""Response cache: successful model answers in one sqlite file, keyed by request and sample."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.calls import CACHE_MODES

FILE_NAME = "responses.sqlite"
BUSY_TIMEOUT_MS = 60_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    entry TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(
    endpoint: str, model: Sequence[str], body: Mapping[str, Any], stream: bool, sample: object
) -> str:
    """Hash of everything that makes an answer: endpoint name (not URL), the model (its name in
    the config and the id sent), full request, streaming, and which sample (and which
    identical call within it) asked."""
    canonical = json.dumps(
        {
            "endpoint": endpoint,
            "model": list(model),
            "body": body,
            "stream": stream,
            "sample": sample,
        },
        sort_keys=True,
        default=repr,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """One connection per process (xdist workers are processes), WAL so writers do not block
    readers, each write its own short transaction, so a killed run loses at most its last answer.
    """

    def __init__(self, directory: Path, mode: str) -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
        self.path = directory / FILE_NAME
        self.mode = mode
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def reads(self) -> bool:
        return self.mode in ("read", "readwrite", "replay")

    @property
    def writes(self) -> bool:
        return self.mode in ("write", "readwrite")

    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for `key`, or None."""
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT entry FROM responses WHERE key = ?", (key,))
                .fetchone()
            )
        return None if row is None else dict(json.loads(row[0]))

    def put(self, key: str, model_id: str, endpoint: str, fingerprint: str, entry: str) -> None:
        """Store one successful answer as JSON text (never errors, requests, headers or keys)."""
        with self._lock:
            self._connect().execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (key, model_id, endpoint, fingerprint, entry, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
