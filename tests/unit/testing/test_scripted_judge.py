"""ScriptedJudge through the fake gateway and the real openai SDK: known error rates, position
bias, malformed answers, scores.

Rates are checked within 5 binomial standard deviations: a correct judge lands outside with
probability under 1e-6 for any seed (and the seeds are fixed, so a run repeats exactly).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from pytest_llmeval.testing import FakeGateway, ScriptedJudge


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    with FakeGateway() as gateway:
        yield gateway


@pytest.fixture
def client(gw: FakeGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=10) as c:
        yield c


def good(output: str, rubric: str) -> bool:
    return output.startswith("good")


def longer(a: str, b: str, criterion: str) -> str:
    return "tie" if len(a) == len(b) else "A" if len(a) > len(b) else "B"


def grade_prompt(output: str, *, scale: str | None = None) -> str:
    lines = [
        "Grade the output against the rubric.",
        "<rubric>",
        "The answer is correct and polite.",
        "</rubric>",
        "<input>",
        "What is 2 + 2?",
        "</input>",
        "<reference>",
        "good: 4",
        "</reference>",
        "<output>",
        output,
        "</output>",
    ]
    if scale:
        lines.append(f"<scale>{scale}</scale>")
    return "\n".join(lines)


def compare_prompt(a: str, b: str) -> str:
    sections = [("criterion", "More complete."), ("output_a", a), ("output_b", b)]
    return "\n".join(f"<{tag}>\n{text}\n</{tag}>" for tag, text in sections)


def ask(client: openai.OpenAI, prompt: str, model: str = "judge", **kwargs: Any) -> str:
    resp = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a strict grader. Answer in JSON."},
            {"role": "user", "content": prompt},
        ],
        temperature=0,
        **kwargs,
    )
    content: str | None = resp.choices[0].message.content
    assert content is not None
    return content


def verdict(client: openai.OpenAI, prompt: str, model: str = "judge") -> str:
    return str(json.loads(ask(client, prompt, model))["verdict"])


def better(client: openai.OpenAI, a: str, b: str, model: str = "judge") -> str:
    return str(json.loads(ask(client, compare_prompt(a, b), model))["better"])


def near(hits: int, n: int, rate: float) -> bool:
    """``hits`` of ``n`` lies within 5 binomial standard deviations of ``n * rate``."""
    return abs(hits - n * rate) <= 5 * math.sqrt(n * rate * (1 - rate))


def test_pass_rates_follow_sensitivity_and_specificity(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    se, sp, repeats = 0.9, 0.8, 5
    judge = ScriptedJudge(good, sensitivity=se, specificity=sp, seed=3)
    gw.add_model("judge", judge)
    outputs = [f"{'good' if i % 10 < 3 else 'bad'} answer {i}" for i in range(300)]
    verdicts = {o: [verdict(client, grade_prompt(o)) for _ in range(repeats)] for o in outputs}
    meets = [o for o in outputs if good(o, "")]
    fails = [o for o in outputs if not good(o, "")]
    passes_when_met = sum(v.count("pass") for o in meets for v in [verdicts[o]])
    passes_when_not = sum(v.count("pass") for o in fails for v in [verdicts[o]])
    assert near(passes_when_met, repeats * len(meets), se)
    assert near(passes_when_not, repeats * len(fails), 1 - sp)
    p = len(meets) / len(outputs)
    total = passes_when_met + passes_when_not
    assert near(total, repeats * len(outputs), se * p + (1 - sp) * (1 - p))
    # Asking the same prompt again draws new luck: repeats disagree as often as independent
    # draws would (a judge that remembered its first answer would never disagree).
    for group, rate in ((meets, se), (fails, 1 - sp)):
        mixed = sum(len(set(verdicts[o])) > 1 for o in group)
        assert near(mixed, len(group), 1 - rate**repeats - (1 - rate) ** repeats)
    assert judge.asked == repeats * len(outputs)
    assert judge.answers["pass"] == total


def test_answers_depend_on_seed_prompt_and_ask_number_only(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        gw.add_model(name, ScriptedJudge(good, sensitivity=0.5, seed=seed))
    prompts = [grade_prompt(f"good answer {i}") for i in range(30)]
    forward = {(p, n): verdict(client, p, "a") for n in (1, 2) for p in prompts}
    backward = {(p, n): verdict(client, p, "b") for n in (1, 2) for p in reversed(prompts)}
    other_seed = {(p, n): verdict(client, p, "c") for n in (1, 2) for p in prompts}
    assert forward == backward
    assert forward != other_seed
    assert {"pass", "fail"} == set(forward.values())


def test_position_bias_shows_when_the_order_is_swapped(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    gw.add_model("fair", ScriptedJudge(good, prefer=longer, seed=1))
    gw.add_model("biased", ScriptedJudge(good, prefer=longer, position_bias=0.25, seed=1))
    pairs = [(f"a complete and careful answer {i}", f"terse {i}") for i in range(200)]
    for full, terse in pairs[:20]:
        assert better(client, full, terse, "fair") == "A"
        assert better(client, terse, full, "fair") == "B"
    assert better(client, "same", "size", "fair") == "tie"
    first = [better(client, full, terse, "biased") for full, terse in pairs]
    swapped = [better(client, terse, full, "biased") for full, terse in pairs]
    assert set(first) == {"A"}  # the truth and the bias agree
    assert set(swapped) == {"A", "B"}
    assert near(swapped.count("A"), len(pairs), 0.25)


def test_malformed_answers_rotate_through_three_kinds(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    judge = ScriptedJudge(good, prefer=longer, malformed=1.0)
    gw.add_model("judge", judge)
    answers = [ask(client, grade_prompt(f"good answer {i}")) for i in range(3)]
    with pytest.raises(ValueError):
        json.loads(answers[0])
    assert "pass" in answers[0]  # prose that a lenient parser might misread
    assert json.loads(answers[1])["verdict"] == "maybe"
    missing = json.loads(answers[2])
    assert "verdict" not in missing and "reason" in missing
    with pytest.raises(ValueError):
        json.loads(ask(client, compare_prompt("long answer", "short")))
    assert json.loads(ask(client, compare_prompt("long answer", "short")))["better"] == "maybe"
    assert judge.answers["malformed"] == judge.asked == 5


def test_malformed_rate_leaves_the_other_verdicts_alone(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    gw.add_model("clean", ScriptedJudge(good, sensitivity=0.7, seed=5))
    gw.add_model("noisy", ScriptedJudge(good, sensitivity=0.7, malformed=0.2, seed=5))
    prompts = [grade_prompt(f"good answer {i}") for i in range(150)]
    broken = 0
    for prompt in prompts:
        answer = json.loads(ask(client, prompt, "clean"))
        try:
            noisy = json.loads(ask(client, prompt, "noisy"))
        except ValueError:
            broken += 1
            continue
        if noisy.get("verdict") in ("pass", "fail"):
            assert noisy == answer
        else:
            broken += 1
    assert near(broken, len(prompts), 0.2)


def test_scale_gives_a_score_that_matches_the_verdict(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    seen: list[tuple[str, str]] = []

    def truth(output: str, rubric: str) -> bool:
        seen.append((output, rubric))
        return output.startswith("good")

    gw.add_model("judge", ScriptedJudge(truth))
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "grade",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string"},
                    "verdict": {"enum": ["pass", "fail"]},
                    "score": {"type": "integer"},
                },
                "required": ["reason", "verdict", "score"],
                "additionalProperties": False,
            },
        },
    }
    passed = json.loads(ask(client, grade_prompt("good: 4", scale="1-5"), response_format=schema))
    failed = json.loads(ask(client, grade_prompt("bad: 5\nsecond line", scale="1-5")))
    plain = json.loads(ask(client, grade_prompt("good: 4")))
    assert (passed["verdict"], passed["score"]) == ("pass", 5)
    assert (failed["verdict"], failed["score"]) == ("fail", 1)
    assert set(plain) == {"reason", "verdict"} and plain["verdict"] == "pass"
    assert all(isinstance(answer["reason"], str) for answer in (passed, failed, plain))
    rubric = "The answer is correct and polite."
    assert seen == [("good: 4", rubric), ("bad: 5\nsecond line", rubric), ("good: 4", rubric)]


def test_other_requests_are_400_and_not_counted(gw: FakeGateway, client: openai.OpenAI) -> None:
    judge = ScriptedJudge(good)
    gw.add_model("judge", judge)
    with pytest.raises(openai.BadRequestError, match="judge prompts only"):
        ask(client, "What is 2 + 2?")
    with pytest.raises(openai.BadRequestError, match="no `prefer`"):
        ask(client, compare_prompt("a", "b"))
    with pytest.raises(openai.BadRequestError, match="<rubric>"):
        ask(client, "<output>\nhello\n</output>")
    with pytest.raises(openai.BadRequestError, match="LO < HI"):
        ask(client, grade_prompt("good", scale="5-1"))
    assert judge.asked == 0
    with pytest.raises(ValueError, match="sensitivity"):
        ScriptedJudge(good, sensitivity=1.5)
