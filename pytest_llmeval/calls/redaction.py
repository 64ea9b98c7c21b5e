"""Secrets out of text: whole keys, and the pieces of one that a shortened repr leaves behind
(pytest shows a long string as 'sk-proj-ab...89xyz')."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MIN_SECRET_LENGTH = 8  # shorter "keys" are placeholders ("EMPTY", "ollama"); redacting garbles
MASK = "***"


class Redactor:
    """Replaces every run of characters made of pieces of a secret (each piece at least
    MIN_SECRET_LENGTH long) with MASK; secrets shorter than that are not secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            pieces = {
                s[i : i + MIN_SECRET_LENGTH]
                for s in self._secrets
                for i in range(len(s) - MIN_SECRET_LENGTH + 1)
            }
            alternatives = "|".join(map(re.escape, sorted(pieces)))
            self._pattern = re.compile(f"(?=({alternatives}))")  # every start, overlaps too

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        spans: list[list[int]] = []
        for match in pattern.finditer(text):
            start, end = match.start(), match.start() + MIN_SECRET_LENGTH
            if spans and start <= spans[-1][1]:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        if not spans:
            return text
        out, at = [], 0
        for start, end in spans:
            out += [text[at:start], MASK]
            at = end
        out.append(text[at:])
        return "".join(out)
