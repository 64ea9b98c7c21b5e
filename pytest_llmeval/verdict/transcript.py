"""Transcripts of samples for the report: which samples keep one, capped and redacted text.

Groundwork for issue 16 (not wired into the plugin yet): the pure rules, so the plugin glue
only collects what a sample sent and received and asks these functions what to keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RECORD_MODES = ("none", "failures", "all")
PASSING_KEPT = 2  # passing samples kept per test x model under "failures", as examples
TEXT_LIMIT = 4_000  # characters of one message or answer kept in the report
MIN_SECRET_LENGTH = 8  # shorter values ("EMPTY", "no-key") would garble ordinary text
_CUT = "\n[... {dropped} more characters cut by pytest-llmeval ...]"


def kept_samples(outcomes: Sequence[str], mode: str, passing: int = PASSING_KEPT) -> set[int]:
    """Indices of the samples whose transcripts the report keeps: none; every sample; or every
    failed and erred sample plus the first `passing` passing ones."""
    if mode not in RECORD_MODES:
        raise ValueError(f"mode must be one of {RECORD_MODES}, got {mode!r}")
    if mode == "none":
        return set()
    if mode == "all":
        return set(range(len(outcomes)))
    passed = [i for i, outcome in enumerate(outcomes) if outcome == "passed"]
    return {i for i, outcome in enumerate(outcomes) if outcome != "passed"} | set(passed[:passing])


@dataclass(frozen=True)
class Redactor:
    """Replaces every secret value (API keys, values of the variables the config names)."""

    secrets: frozenset[str]

    @classmethod
    def of(
        cls, env: Mapping[str, str], names: Iterable[str], extra: Iterable[str] = ()
    ) -> Redactor:
        values = [env.get(name, "") for name in names] + list(extra)
        return cls(frozenset(v for v in values if len(v) >= MIN_SECRET_LENGTH))

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):  # a key inside a longer one
            text = text.replace(secret, "***")
        return text


def capped(text: str, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """`text` cut to `limit` characters with a note of how much was cut, and whether it was."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + _CUT.format(dropped=len(text) - limit), True


def transcript(
    messages: Sequence[Mapping[str, Any]],
    answer: str,
    redact: Redactor,
    *,
    finish_reason: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    limit: int = TEXT_LIMIT,
) -> dict[str, Any]:
    """One call as the report keeps it: the messages sent and the answer, redacted, then capped
    (redacting first, so a cut never leaves half a key behind)."""
    cut = False
    sent = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else repr(content)
        text, was_cut = capped(redact(text), limit)
        cut = cut or was_cut
        sent.append({"role": str(message.get("role", "")), "content": text})
    text, was_cut = capped(redact(answer), limit)
    record: dict[str, Any] = {
        "messages": sent,
        "answer": text,
        "finish_reason": finish_reason,
        "tool_calls": [
            {"name": call.get("name"), "arguments": redact(repr(call.get("arguments")))}
            for call in tool_calls
        ],
        "truncated": cut or was_cut,
    }
    return record
