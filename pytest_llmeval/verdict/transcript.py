"""Transcripts of samples for the report: which samples keep one, and each call's text redacted
and capped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_llmeval.report.schema import Exchange, Message, ToolCallText

RECORD_MODES = ("none", "failures", "all")
DEFAULT_RECORD = "failures"
PASSING_KEPT = 2  # passing samples kept per test x model under "failures", as examples
TEXT_LIMIT = 4_000  # characters of one message or answer kept in the report
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


def capped(text: str, limit: int = TEXT_LIMIT) -> tuple[str, bool]:
    """`text` cut to `limit` characters with a note of how much was cut, and whether it was."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + _CUT.format(dropped=len(text) - limit), True


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def sent_messages(endpoint: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of what a request sent: chat messages, a completion's prompt or an
    embedding's inputs (as user messages)."""
    if endpoint == "chat":
        messages = body.get("messages") or []
        return [
            (str(m.get("role", "")), _content(m)) if isinstance(m, Mapping) else ("", _text(m))
            for m in messages
        ]
    payload = body.get("prompt" if endpoint == "completion" else "input")
    items = payload if isinstance(payload, list) else [payload]
    return [("user", _text(item)) for item in items if item is not None]


def _content(message: Mapping[str, Any]) -> str:
    """A chat message's text; multi-part content as its text parts; tool calls as their JSON."""
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(part.get("text", part)) if isinstance(part, Mapping) else _text(part)
            for part in content
        )
    text = "" if content is None else _text(content)
    calls = message.get("tool_calls")
    if calls:
        text = (text + "\n" if text else "") + f"[tool calls] {_text(calls)}"
    return text


def exchange(
    role: str,
    endpoint: str,
    sent: Sequence[tuple[str, str]],
    answer: str,
    redact: Callable[[str], str],
    *,
    finish_reason: str | None = None,
    tool_calls: Sequence[tuple[str, object]] = (),
    error: str | None = None,
    limit: int = TEXT_LIMIT,
) -> tuple[Exchange, bool]:
    """One call as the report keeps it, and whether any text was cut: redacted before it is
    capped, so a cut never leaves half a key behind."""
    cut = False

    def keep(text: str) -> str:
        nonlocal cut
        kept, was_cut = capped(redact(text), limit)
        cut = cut or was_cut
        return kept

    messages: list[Message] = [{"role": r, "content": keep(text)} for r, text in sent]
    calls: list[ToolCallText] = [
        {"name": name, "arguments": keep(_text(arguments))} for name, arguments in tool_calls
    ]
    record: Exchange = {
        "role": role,
        "endpoint": endpoint,
        "messages": messages,
        "answer": keep(answer),
        "finish_reason": finish_reason,
        "tool_calls": calls,
        "error": None if error is None else keep(error),
    }
    return record, cut
