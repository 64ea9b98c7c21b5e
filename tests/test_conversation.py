"""The dialogue helper through the plugin: history kept, every turn scored, per-turn rates."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_llmeval.conversation import Conversation, dialogue_summary
from pytest_llmeval.testing import FakeGateway, RecordedRequest


def count_turns(request: RecordedRequest) -> str:
    """Replies 'ok N' on the N-th user turn, but loses track on turn 3."""
    users = sum(1 for m in request.body["messages"] if m["role"] == "user")
    return "lost" if users == 3 else f"ok {users}"


DIALOGUE = """
import pytest
from pytest_llmeval.conversation import Conversation

@pytest.mark.llmeval(pass_rate=0.5, samples=4, mode="observed")
def test_dialogue(llm):
    with Conversation(llm, system="You count turns.", temperature=0) as convo:
        for i in range(1, 6):
            reply = convo.turn(f"message {i}")
            with convo.check("counts"):
                assert reply.text == f"ok {i}", f"expected 'ok {i}', got {reply.text!r}"
            convo.expect(len(convo.messages) == 1 + 2 * i, "history kept")
"""


def test_every_turn_is_scored_and_a_failed_turn_fails_the_sample(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", count_turns)
    suite.makepyfile(test_dialogue=DIALOGUE)
    result = suite.runpytest("--llm-models=m", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*first failure: AssertionError: 4/5 turns passed their checks; failed: "
            "turn 3 'counts': expected 'ok 3', got 'lost'",
            "dialogue*model*turn*passed*rate*checks (rate)",
            "test_dialogue.py::test_dialogue*m*all*4.0/5 turns*0.0%*whole dialogue",
            "*2*4/4*100.0%*counts 100.0%, history kept 100.0%",
            "*3*0/4*0.0%*counts 0.0%, history kept 100.0%",
            "*5*4/4*100.0%*",
        ]
    )
    [row] = json.loads((suite.path / "report.json").read_text())["tests"]
    assert row["failed"] == 4
    turns = row["samples"][0]["turns"]
    assert [(t["turn"], t["name"], t["passed"]) for t in turns[4:6]] == [
        (3, "counts", False), (3, "history kept", True),
    ]  # fmt: skip
    assert [t["rate"] for t in row["dialogue"]["turns"]] == [1.0, 1.0, 0.0, 1.0, 1.0]
    last = gateway.requests[-1].body
    assert [m["role"] for m in last["messages"]] == ["system"] + ["user", "assistant"] * 4 + [
        "user"
    ]
    assert last["messages"][6] == {"role": "assistant", "content": "lost"}
    assert last["temperature"] == 0


def test_optional_checks_are_scored_without_failing_the_sample(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", count_turns)
    suite.makepyfile(test_dialogue=DIALOGUE.replace('"counts"', '"counts", required=False'))
    result = suite.runpytest("--llm-models=m", "--llm-report=report.json")
    result.assert_outcomes(passed=1)
    [row] = json.loads((suite.path / "report.json").read_text())["tests"]
    assert row["dialogue"]["mean_turns_passed"] == 4.0
    assert row["dialogue"]["turns"][2]["checks"][0] == {
        "name": "counts", "passed": 0, "total": 4, "rate": 0.0,
    }  # fmt: skip


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
