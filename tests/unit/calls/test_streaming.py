"""Reassembling streamed chunks, on SDK-shaped objects (no server needed)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from pytest_llmeval.calls.streaming import StreamState
from pytest_llmeval.errors import StreamCutError


def chunk(content: str | None = None, finish: str | None = None, tool: NS | None = None) -> NS:
    delta = NS(content=content, tool_calls=[tool] if tool else None)
    return NS(usage=None, choices=[NS(delta=delta, finish_reason=finish)])


def test_text_usage_counted_when_the_server_sends_none() -> None:
    state = StreamState(start=10.0)
    assert state.add(chunk("Hello"), 10.25) == "Hello"
    state.add(chunk(" world"), 10.5)
    state.add(chunk(finish="stop"), 10.6)
    text, calls, usage, estimated = state.finish()
    assert (text, calls, state.ttft) == ("Hello world", (), 0.25)
    assert (usage.completion_tokens, estimated) == (2, True)


def test_reported_usage_wins_and_tool_call_deltas_are_joined() -> None:
    state = StreamState(start=0.0)
    first = NS(index=0, id="call_1", function=NS(name="refund", arguments='{"order'))
    rest = NS(index=0, id=None, function=NS(name=None, arguments='_id": "A-17"}'))
    state.add(chunk(tool=first), 0.1)
    state.add(chunk(tool=rest, finish="tool_calls"), 0.2)
    details = NS(cached_tokens=4)
    state.add(NS(usage=NS(prompt_tokens=9, completion_tokens=7, prompt_tokens_details=details),
                 choices=[]), 0.3)  # fmt: skip
    _, calls, usage, estimated = state.finish()
    assert calls[0].name == "refund" and calls[0].arguments == {"order_id": "A-17"}
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (9, 7, 4)
    assert not estimated and state.ttft == 0.1


def test_a_stream_without_a_finish_reason_was_cut() -> None:
    state = StreamState(start=0.0)
    state.add(chunk("partial"), 0.1)
    with pytest.raises(StreamCutError, match="ended after 1 chunks without a finish reason"):
        state.finish()
