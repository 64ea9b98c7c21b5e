"""A 12-turn support dialogue, as in the seed article: does the model keep track of the order id,
the escalation level and refund eligibility? Every turn is scored (the report gives a pass rate
per turn, like the seed's "9/12"); a dialogue passes only if every turn's state is right."""

from __future__ import annotations

import re

import pytest

from pytest_llmeval.conversation import Conversation

SYSTEM = (
    "You are a support agent for an online shop. Keep track of three things: the customer's "
    "order id (the latest one they give, like A-1042), the escalation level (0 at the start, +1 "
    "for each message in which the customer asks for a manager or calls the service "
    "unacceptable, at most 3) and whether a refund is allowed (yes if the item arrived damaged "
    "and was delivered at most 30 days ago, no if it was delivered more than 30 days ago, "
    "unknown until you know). End every reply with exactly one line:\n"
    "STATUS order=<id or none> escalation=<0-3> refund=<yes|no|unknown>"
)
# What the customer says, and the state the agent must report after it.
TURNS = [
    ("Hi, I have a problem with a recent purchase.", "none", 0, "unknown"),
    ("The order number is A-1042.", "A-1042", 0, "unknown"),
    ("It was delivered 12 days ago.", "A-1042", 0, "unknown"),
    ("When I opened the box the lamp inside was broken.", "A-1042", 0, "yes"),
    ("How long does a refund usually take?", "A-1042", 0, "yes"),
    ("This is taking far too long, it is unacceptable.", "A-1042", 1, "yes"),
    ("Sorry, I gave you the wrong number: the order is A-1097.", "A-1097", 1, "yes"),
    ("Do you also ship to Norway?", "A-1097", 1, "yes"),
    ("I want to talk to a manager.", "A-1097", 2, "yes"),
    ("I checked my email again: it was delivered 45 days ago.", "A-1097", 2, "no"),
    ("That is unacceptable, get me your manager now.", "A-1097", 3, "no"),
    ("Fine. Please summarise where we are.", "A-1097", 3, "no"),
]
STATUS = re.compile(r"STATUS order=(\S+) escalation=(\d) refund=(yes|no|unknown)")


@pytest.mark.llmeval(api="chat", pass_rate=0.7, samples=10)
def test_support_dialogue(llm) -> None:
    with Conversation(llm, system=SYSTEM, temperature=0.7) as convo:
        for text, order, escalation, refund in TURNS:
            reply = convo.turn(text).text
            found = STATUS.findall(reply)
            state = found[-1] if found else ("(no STATUS line)", "-", "-")
            with convo.check("order id"):
                assert state[0] == order, f"expected order={order}, got {state[0]}"
            with convo.check("escalation"):
                assert state[1] == str(escalation), f"expected {escalation}, got {state[1]}"
            with convo.check("refund"):
                assert state[2] == refund, f"expected refund={refund}, got {state[2]}"
