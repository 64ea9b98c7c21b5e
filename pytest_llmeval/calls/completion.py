"""What a model call returns to a test: the text plus usage, timing, cost and checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.checks import check_json


@dataclass(frozen=True)
class Usage:
    """Token counts as the server reported them (OpenAI field names)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for, arguments already parsed from JSON."""

    id: str
    name: str
    arguments: Any


@dataclass(frozen=True)
class Completion:
    """One model answer; `raw` is the `openai` response object (rebuilt when `cached`)."""

    text: str
    model: str
    usage: Usage
    latency_s: float
    cost_usd: float | None
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    ttft_s: float | None = None
    usage_estimated: bool = False
    attempts: int = 1
    cached: bool = False
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of generation (after the first token, when streamed)."""
        generating = self.latency_s - (self.ttft_s or 0.0)
        if generating <= 0 or not self.usage.completion_tokens:
            return None
        return self.usage.completion_tokens / generating

    def json(self, schema: dict[str, Any] | None = None) -> Any:
        """Parse the text as JSON (one markdown fence allowed) and validate it against `schema`.

        A parse or validation failure is an AssertionError, i.e. a failed sample.
        """
        return check_json(self.text, schema)


@dataclass(frozen=True)
class Embeddings:
    """Vectors for the texts of one `embed` call, in order, with what the call cost."""

    vectors: tuple[tuple[float, ...], ...]
    model: str
    usage: Usage
    latency_s: float
    cost_usd: float | None
    cached: bool = False
