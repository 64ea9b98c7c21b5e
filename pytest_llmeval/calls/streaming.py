"""Reassembling a streamed answer: text, tool calls, usage and the time to the first token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.calls.completion import ToolCall, Usage
from pytest_llmeval.errors import StreamCutError


@dataclass
class StreamState:
    """Accumulates SDK chunks (chat or legacy completion) as they arrive."""

    start: float
    ttft: float | None = None
    parts: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    deltas: int = 0

    def add(self, chunk: Any, now: float) -> str:
        """Take one chunk; return its text delta ('' when it carries none)."""
        raw_usage = getattr(chunk, "usage", None)
        if raw_usage is not None:
            self.usage = usage_of(raw_usage)
        text = ""
        for choice in getattr(chunk, "choices", None) or ():
            delta = getattr(choice, "delta", None)
            if delta is not None:
                text += getattr(delta, "content", None) or ""
                for call in getattr(delta, "tool_calls", None) or ():
                    empty = {"id": "", "name": "", "arguments": ""}
                    slot = self.calls.setdefault(call.index, empty)
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
                        self._first(now)
            else:
                text += getattr(choice, "text", None) or ""
            self.finish_reason = choice.finish_reason or self.finish_reason
        if text:
            self._first(now)
            self.parts.append(text)
            self.deltas += 1
        return text

    def _first(self, now: float) -> None:
        if self.ttft is None:
            self.ttft = now - self.start

    def finish(self) -> tuple[str, tuple[ToolCall, ...], Usage, bool]:
        """Text, tool calls, usage, and whether usage was counted here (server sent none)."""
        if self.finish_reason is None:
            raise StreamCutError(
                f"the stream ended after {self.deltas} chunks without a finish reason"
            )
        calls = tuple(
            ToolCall(slot["id"], slot["name"], parse_arguments(slot["arguments"]))
            for _, slot in sorted(self.calls.items())
        )
        if self.usage is not None:
            return "".join(self.parts), calls, self.usage, False
        return "".join(self.parts), calls, Usage(0, self.deltas), True


def usage_of(raw: Any) -> Usage:
    """Usage from an SDK usage object, including cached prompt tokens when reported."""
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(raw.prompt_tokens or 0, raw.completion_tokens or 0, cached)


def parse_arguments(arguments: str) -> Any:
    """Tool call arguments as JSON when they parse, else the raw string."""
    try:
        return json.loads(arguments)
    except (TypeError, ValueError):
        return arguments
