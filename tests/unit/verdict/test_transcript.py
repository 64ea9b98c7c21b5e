"""Which samples keep a transcript, what a call sent, and that kept text is redacted before it
is capped."""

from __future__ import annotations

import pytest

from pytest_llmeval.verdict.transcript import (
    PASSING_KEPT,
    capped,
    exchange,
    kept_samples,
    sent_messages,
)

KEY = "sk-test-0123456789abcdef"


def redact(text: str) -> str:
    return text.replace(KEY, "***")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("none", set()), ("all", {0, 1, 2, 3, 4, 5}), ("failures", {0, 1, 2, 4})],
)
def test_kept_samples(mode: str, expected: set[int]) -> None:
    outcomes = ["passed", "failed", "passed", "passed", "error", "passed"]
    assert PASSING_KEPT == 2
    assert kept_samples(outcomes, mode) == expected


def test_an_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        kept_samples(["passed"], "some")


def test_capped_says_how_much_was_cut() -> None:
    assert capped("short", 10) == ("short", False)
    text, cut = capped("x" * 25, 10)
    assert cut and text.startswith("x" * 10) and "15 more characters cut" in text


def test_what_each_endpoint_sent() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        ]
    }
    sent = sent_messages("chat", chat)
    assert sent[0] == ("system", "be brief")
    assert sent[1][0] == "user" and sent[1][1].startswith("look\n")
    assert sent[2] == ("assistant", "[tool calls] [{'id': 'c1'}]")
    assert sent_messages("completion", {"prompt": "def f():"}) == [("user", "def f():")]
    assert sent_messages("embedding", {"input": ["a", "b"]}) == [("user", "a"), ("user", "b")]


def test_an_exchange_is_redacted_before_it_is_capped() -> None:
    found, cut = exchange(
        "model",
        "chat",
        [("system", "be brief"), ("user", KEY * 3)],
        f"answer with {KEY}",
        redact,
        finish_reason="stop",
        tool_calls=[("lookup", {"t": KEY})],
        limit=10,
    )
    assert found["messages"][0] == {"role": "system", "content": "be brief"}
    assert found["messages"][1]["content"] == "*********"  # three keys, redacted, then fits
    assert KEY not in str(found) and KEY[:7] not in str(found)
    assert found["answer"].startswith("answer ") and cut is True
    assert found["tool_calls"][0]["name"] == "lookup"
    assert "***" in found["tool_calls"][0]["arguments"]
    assert found["finish_reason"] == "stop" and found["error"] is None


def test_a_failed_call_keeps_its_error() -> None:
    found, cut = exchange("judge", "chat", [("user", "grade")], "", redact, error=f"Boom: {KEY}")
    assert found["error"] == "Boom: ***" and found["role"] == "judge" and not cut
