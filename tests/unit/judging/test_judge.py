"""The judge directly, through the real client and the fake gateway: strict answers, grades,
preferences in both orders, and what it records on the running sample."""

from __future__ import annotations

import asyncio
import json

import pytest

from pytest_llmeval.calls.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.errors import JudgeError
from pytest_llmeval.judging.judge import MAX_ANSWER_TOKENS, Judge
from pytest_llmeval.judging.prompts import JudgePrompts, rubric_fingerprint
from pytest_llmeval.testing import FakeGateway, RecordedRequest
from pytest_llmeval.verdict.records import SampleTrace, tracing

RUBRIC = "The answer apologises and offers a refund."


def judge_of(gateway: FakeGateway, fmt: str = "json_schema") -> Judge:
    model = ModelSettings(name="j", model_id="judge-1", input_cost_per_mtok=1.0)
    pool = ClientPool(Settings(retries=0, timeout=5.0), {})
    return Judge(LLM(model, pool, gateway.base_url, role="judge"), JudgePrompts(), fmt)


def answer(**fields: object) -> str:
    return json.dumps(fields)


def test_a_pass_is_true_and_the_reason_is_kept(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="It apologises.", verdict="pass"))
    judgement = judge_of(gateway)("Sorry, refund sent.", RUBRIC)
    assert judgement and judgement.passed
    assert judgement.reason == "It apologises."
    assert judgement.rubric == rubric_fingerprint(JudgePrompts(), RUBRIC)
    assert "pass" in repr(judgement) and "It apologises." in repr(judgement)


def test_a_fail_is_false_and_its_repr_explains_an_assert(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="No refund offered.", verdict="fail"))
    judgement = judge_of(gateway)("No.", RUBRIC)
    assert not judgement
    with pytest.raises(AssertionError, match="No refund offered"):
        assert judgement, repr(judgement)


def test_the_request_carries_the_sections_and_the_schema(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="ok", verdict="pass", score=4))
    judge_of(gateway)("out", RUBRIC, question="q?", reference="ref", scale=(1, 5))
    body = gateway.requests[-1].body
    user = body["messages"][-1]["content"]
    for tag in ("<rubric>", "<scale>1-5</scale>", "<input>", "<reference>", "<output>"):
        assert tag in user
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["reason", "verdict", "score"]
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("json_object", {"type": "json_object"}), ("text", None)],
)
def test_the_judge_format_chooses_response_format(
    gateway: FakeGateway, fmt: str, expected: object
) -> None:
    gateway.add_model("judge-1", answer(reason="ok", verdict="pass"))
    judge_of(gateway, fmt)("out", RUBRIC)
    assert gateway.requests[-1].body.get("response_format") == expected


def test_one_markdown_fence_is_accepted(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", "```json\n" + answer(reason="ok", verdict="pass") + "\n```")
    assert judge_of(gateway)("out", RUBRIC).passed


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("It passes, I think.", "not JSON"),
        (answer(reason="hm", verdict="maybe"), "'maybe' is not one of"),
        (answer(reason="hm"), "'verdict' is a required property"),
        (answer(reason="hm", verdict="pass", extra=1), "Additional properties"),
        ("[1, 2]", "is not of type 'object'"),
        ("Sure: " + answer(reason="ok", verdict="pass"), "not JSON"),
    ],
)
def test_an_answer_outside_the_schema_is_a_judge_error(
    gateway: FakeGateway, reply: str, problem: str
) -> None:
    gateway.add_model("judge-1", reply)
    with pytest.raises(JudgeError, match="answered outside its schema") as caught:
        judge_of(gateway)("out", RUBRIC)
    assert problem in str(caught.value)


def test_a_score_decides_the_pass_when_pass_score_is_given(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="partly", verdict="pass", score=2))
    judge = judge_of(gateway)
    assert judge("out", RUBRIC, scale=(1, 5)).passed
    judged = judge("out", RUBRIC, scale=(1, 5), pass_score=4)
    assert not judged.passed and judged.score == 2
    assert judged.rubric != judge.fingerprint(RUBRIC, (1, 5))  # a different pass rule


def test_a_score_out_of_range_is_a_judge_error(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="x", verdict="pass", score=9))
    with pytest.raises(JudgeError, match="9 is greater than the maximum of 5"):
        judge_of(gateway)("out", RUBRIC, scale=(1, 5))


def test_bad_arguments_are_type_errors(gateway: FakeGateway) -> None:
    judge = judge_of(gateway)
    with pytest.raises(TypeError):
        judge("out", "  ")
    with pytest.raises(TypeError):
        judge("out", RUBRIC, scale=(5, 1))
    with pytest.raises(TypeError):
        judge("out", RUBRIC, pass_score=3)


def test_grades_are_recorded_on_the_sample_with_judge_calls(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="fine", verdict="pass"))
    trace = SampleTrace(0)
    with tracing(trace):
        judge_of(gateway)("out", RUBRIC)
    [judged] = trace.judgements
    assert judged["kind"] == "grade" and judged["passed"] is True
    assert judged["judge"] == "j" and judged["judge_model_id"] == "judge-1"
    assert [call.role for call in trace.calls] == ["judge"]


def prefers_first(request: RecordedRequest) -> str:
    return answer(reason="first", better="A")


def prefers_the_refund(request: RecordedRequest) -> str:
    text = request.body["messages"][-1]["content"]
    a = text.split("<output_a>")[1].split("</output_a>")[0]
    return answer(reason="refund", better="A" if "refund" in a else "B")


def test_a_judge_that_flips_with_the_order_gives_a_tie(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", prefers_first)
    trace = SampleTrace(0)
    with tracing(trace):
        preference = judge_of(gateway).compare("x", "y", "helpful", labels=("m1", "m2"))
    assert preference.winner == "tie" and not preference.consistent
    assert trace.judgements[0]["winner"] == "tie"
    assert len(gateway.requests) == 2


def test_a_consistent_preference_names_the_winner_in_both_orders(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", prefers_the_refund)
    judge = judge_of(gateway)
    assert judge.compare("a refund", "no", "helpful", labels=("m1", "m2")).winner == "m1"
    assert judge.compare("no", "a refund", "helpful", labels=("m1", "m2")).winner == "m2"
    both = [r.body["messages"][-1]["content"] for r in gateway.requests[:2]]
    assert both[0].index("a refund") < both[0].index("no") and both[1].index("no") < both[1].index(
        "a refund"
    )


def test_a_tie_in_both_orders_is_a_consistent_tie(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="same", better="tie"))
    preference = judge_of(gateway).compare("x", "y", "helpful")
    assert preference.winner == "tie" and preference.consistent


def test_the_async_twins(gateway: FakeGateway) -> None:
    def by_kind(request: RecordedRequest) -> str:
        if "<output_a>" in request.body["messages"][-1]["content"]:
            return answer(reason="ok", better="tie")
        return answer(reason="ok", verdict="pass")

    gateway.add_model("judge-1", by_kind)
    judge = judge_of(gateway)

    async def both() -> tuple[bool, str]:
        graded = await judge.agrade("out", RUBRIC)
        compared = await judge.acompare("x", "y", "c")
        await judge.llm._pool.aclose()
        return graded.passed, compared.winner

    assert asyncio.run(both()) == (True, "tie")


def test_a_cut_answer_is_a_judge_error(gateway: FakeGateway) -> None:
    from pytest_llmeval.testing import Reply

    gateway.add_model("judge-1", Reply('{"reason": "lo', finish_reason="length"))
    with pytest.raises(JudgeError, match="cut at the token limit"):
        judge_of(gateway)("out", RUBRIC)


def test_the_answer_is_capped_unless_the_config_sets_a_length(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="ok", verdict="pass"))
    judge_of(gateway)("out", RUBRIC)
    assert gateway.requests[-1].body["max_tokens"] == MAX_ANSWER_TOKENS
    model = ModelSettings(name="j", model_id="judge-1", params={"max_completion_tokens": 50})
    pool = ClientPool(Settings(retries=0, timeout=5.0), {})
    Judge(LLM(model, pool, gateway.base_url, role="judge"), JudgePrompts())("out", RUBRIC)
    body = gateway.requests[-1].body
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


def test_a_shorter_max_output_tokens_caps_the_answer_instead(gateway: FakeGateway) -> None:
    gateway.add_model("judge-1", answer(reason="ok", verdict="pass"))
    model = ModelSettings(name="j", model_id="judge-1", max_output_tokens=20)
    pool = ClientPool(Settings(retries=0, timeout=5.0), {})
    Judge(LLM(model, pool, gateway.base_url, role="judge"), JudgePrompts())("out", RUBRIC)
    assert gateway.requests[-1].body["max_tokens"] == 20
