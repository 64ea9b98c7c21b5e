"""The dialogue helper through the plugin: history kept, every turn scored, per-turn rates."""

from __future__ import annotations

import json

import pytest

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
