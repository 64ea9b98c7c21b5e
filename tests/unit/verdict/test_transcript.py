"""Which samples keep a transcript, and that kept text is redacted before it is capped."""

from __future__ import annotations

import pytest

from pytest_llmeval.verdict.transcript import (
    PASSING_KEPT,
    Redactor,
    capped,
    kept_samples,
    transcript,
)

KEY = "sk-test-0123456789abcdef"


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


def test_the_redactor_takes_the_named_variables_and_skips_short_values() -> None:
    env = {"GATEWAY_KEY": KEY, "OTHER": "long-enough-secret", "SHORT": "no-key"}
    redact = Redactor.of(env, ["GATEWAY_KEY", "SHORT", "MISSING"], extra=["another-secret-1"])
    assert redact.secrets == frozenset({KEY, "another-secret-1"})
    assert redact(f"key {KEY}, no-key, long-enough-secret") == "key ***, no-key, long-enough-secret"


def test_a_secret_inside_a_longer_one_does_not_leave_a_tail() -> None:
    redact = Redactor(frozenset({KEY, KEY + "-extended"}))
    assert redact(f"{KEY}-extended and {KEY}") == "*** and ***"


def test_capped_says_how_much_was_cut() -> None:
    assert capped("short", 10) == ("short", False)
    text, cut = capped("x" * 25, 10)
    assert cut and text.startswith("x" * 10) and "15 more characters cut" in text


def test_a_transcript_is_redacted_before_it_is_capped() -> None:
    redact = Redactor(frozenset({KEY}))
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": KEY * 3}]
    found = transcript(
        messages,
        f"answer with {KEY}",
        redact,
        finish_reason="stop",
        tool_calls=[{"name": "lookup", "arguments": {"token": KEY}}],
        limit=10,
    )
    assert found["messages"][0] == {"role": "system", "content": "be brief"}
    assert found["messages"][1]["content"] == "*********"  # three keys, redacted, then fits
    assert KEY not in str(found) and KEY[:7] not in str(found)
    assert found["answer"].startswith("answer ") and found["truncated"] is True
    assert (
        found["tool_calls"][0]["name"] == "lookup" and "***" in found["tool_calls"][0]["arguments"]
    )
    assert found["finish_reason"] == "stop"
