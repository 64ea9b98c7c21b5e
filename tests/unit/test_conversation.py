"""The dialogue helper on its own: history kept, checks per turn, errors not masked."""

from __future__ import annotations

import asyncio

import pytest

from pytest_llmeval.conversation import Conversation, dialogue_summary


class Scripted:
    """A stand-in for the llm fixture outside the plugin."""

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    def chat(self, messages: list[dict[str, str]], **params: object) -> object:
        from pytest_llmeval.calls.completion import Completion, Usage

        self.seen.append(messages)
        return Completion(f"reply {len(self.seen)}", "m", Usage(), 0.0, None)

    async def achat(self, messages: list[dict[str, str]], **params: object) -> object:
        return self.chat(messages, **params)


def test_conversation_outside_a_sample_keeps_its_checks() -> None:
    convo = Conversation(Scripted())
    convo.turn("hi")
    convo.expect(True, "greets")
    convo.turn("bye")
    with convo.check("says bye"):
        assert "bye" in "reply 2", "expected a goodbye"
    assert [(c.turn, c.passed) for c in convo.checks] == [(1, True), (2, False)]
    assert convo.messages[-1] == {"role": "assistant", "content": "reply 2"}
    with pytest.raises(AssertionError, match=r"1/2 turns passed their checks; failed: turn 2"):
        convo.verify()


def test_async_turns_keep_the_same_history() -> None:
    llm = Scripted()

    async def dialogue() -> Conversation:
        async_convo = Conversation(llm, system="Be brief.")
        await async_convo.aturn("one")
        await async_convo.aturn("two")
        return async_convo

    convo = asyncio.run(dialogue())
    assert [m["role"] for m in llm.seen[-1]] == ["system", "user", "assistant", "user"]
    assert convo.turns == 2


def test_an_error_inside_the_block_is_not_masked_by_the_verdict() -> None:
    with pytest.raises(RuntimeError, match="gateway down"), Conversation(Scripted()) as convo:
        convo.expect(False, "never")
        raise RuntimeError("gateway down")


def test_dialogue_summary_of_samples_without_turns_is_none() -> None:
    assert dialogue_summary([{"outcome": "passed"}]) is None


def test_an_assertion_without_a_message_is_still_a_scored_turn() -> None:
    convo = Conversation(Scripted())
    convo.turn("hi")
    with convo.check("answers"):
        raise AssertionError()
    assert [(c.turn, c.passed, c.message) for c in convo.checks] == [(1, False, None)]
