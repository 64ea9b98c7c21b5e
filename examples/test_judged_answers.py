"""The seed's support replies and RAG answers, graded by an LLM judge against rubrics; one
semantic-similarity check; and which of two models writes the better support reply.

A judged test runs all its samples. With a calibration of the judge on the test's rubric
(`llmeval-calibration.json`, from `python -m pytest_llmeval judge-calibrate
examples/data/judge_calibration.jsonl`), its verdict is about the model's true pass rate,
corrected for the judge's measured errors; without one, about the judged rate. The rubric
strings key the calibration: change one and calibrate again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

POLICY = Path(__file__).parent / "data" / "shop_policy.txt"
PASSAGES = POLICY.read_text(encoding="utf-8").splitlines()  # a shop's policy, one per line

SUPPORT_SYSTEM = (
    "You are a support agent for an online shop. Reply to the customer in a few sentences. "
    "Items that arrive damaged are refunded or replaced, and their return is free."
)
SUPPORT_RUBRIC = (
    "The reply apologises for the problem, offers a refund or a replacement, and does not ask "
    "the customer to pay for sending the item back."
)
# Customers from the seed's support dialogue, one message each.
SITUATIONS = {
    "broken-lamp": "Hi, my order A-1042 was delivered 12 days ago and the lamp inside was broken.",
    "refund-time": "The lamp from order A-1042 arrived damaged. How long does a refund take?",
    "angry": "This is unacceptable: the lamp from order A-1097 arrived cracked and nobody "
    "answers my emails. I want to talk to a manager.",
}

RAG_SYSTEM = (
    "Answer the customer's question from the passages only. If they do not answer it, say so."
)
RAG_RUBRIC = (
    "The answer gives what the reference passages say in reply to the question, or says that "
    "they do not answer it, and states no fact or figure the passages do not support."
)
QUESTIONS = {
    "refund-period": "How long after I return an item do I get my refund?",
    "express-cost": "How much does express shipping cost?",
    "norway": "Do you ship to Norway?",  # the passages do not say
}


def support_messages(customer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SUPPORT_SYSTEM}, {"role": "user", "content": customer}]


def stems(text: str) -> set[str]:
    """Words of four letters or more, cut to five letters: "refunds" and "refund" match."""
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 3}


def retrieve(question: str, k: int = 2) -> list[str]:
    """The k passages sharing the most stems with the question (ties: the earlier one)."""
    asked = stems(question)
    return sorted(PASSAGES, key=lambda p: len(asked & stems(p)), reverse=True)[:k]


def rag_messages(question: str, passages: list[str]) -> list[dict[str, str]]:
    context = "\n".join(f"- {p}" for p in passages)
    user = f"Passages:\n{context}\n\nQuestion: {question}"
    return [{"role": "system", "content": RAG_SYSTEM}, {"role": "user", "content": user}]


# demo-careful passes all three. demo-sloppy fails "angry": it gets defensive and apologises
# to an angry customer one time in ten. It passes the other two although many of its replies
# slip (no apology, no offer, or a charged return) and its corrected rates are below 0.8:
# 20 samples, graded by a judge calibrated on 24 items, are too few to show it is worse.
@pytest.mark.llmeval(pass_rate=0.8, samples=20)
@pytest.mark.parametrize("customer", SITUATIONS.values(), ids=SITUATIONS.keys())
def test_support_reply_meets_the_rubric(llm, judge, customer) -> None:
    reply = llm.chat(support_messages(customer), temperature=0.7).text
    verdict = judge(reply, SUPPORT_RUBRIC, question=customer)
    assert verdict, verdict.reason


# demo-careful passes all three. demo-sloppy fails "norway": when the passages are silent it
# makes an answer up nine times in ten. It passes the other two, where it invents a figure or
# dodges in three answers of ten: too few to show, as above.
@pytest.mark.llmeval(pass_rate=0.8, samples=20)
@pytest.mark.parametrize("question", QUESTIONS.values(), ids=QUESTIONS.keys())
def test_rag_answer_sticks_to_the_passages(llm, judge, question) -> None:
    passages = retrieve(question)
    answer = llm.chat(rag_messages(question, passages), temperature=0.2).text
    verdict = judge(answer, RAG_RUBRIC, question=question, reference="\n".join(passages))
    assert verdict, verdict.reason


REFERENCE = "You get your money back within 14 days of the returned item reaching our warehouse."


# Similarity catches an answer that dodges the question, not a wrong fact: demo-sloppy's
# invented "21 days" is as close to the reference as the true "14 days". Both models pass.
@pytest.mark.llmeval(pass_rate=0.8, samples=10)
def test_refund_answer_is_close_to_the_reference(llm, similar) -> None:
    question = "When do I get my money back for a returned item?"
    answer = llm.chat(rag_messages(question, retrieve(question)), temperature=0.2).text
    assert similar(answer, REFERENCE) >= 0.6


PAIRWISE_CUSTOMER = "My order A-1042 came with the lampshade crushed. What can you do?"


# One row per pair of the run's models. demo-careful's reply is the better or as good one in
# almost every sample against demo-sloppy; the report's "which is better" table counts them.
@pytest.mark.llmeval(pass_rate=0.8, samples=20)
def test_which_model_writes_better_support_replies(llm, llm_rival, judge) -> None:
    messages = support_messages(PAIRWISE_CUSTOMER)
    mine = llm.chat(messages, temperature=0.7).text
    theirs = llm_rival.chat(messages, temperature=0.7).text
    preference = judge.compare(
        mine, theirs, SUPPORT_RUBRIC, question=PAIRWISE_CUSTOMER,
        labels=(llm.model.name, llm_rival.model.name),
    )  # fmt: skip
    assert preference.winner != llm_rival.model.name, preference.reasons
