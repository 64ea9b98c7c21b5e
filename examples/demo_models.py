"""Scripted demo "models" for the fake gateway, so the example suite runs with no API key.

They are rule-based stand-ins, NOT language models: `demo-careful` answers correctly almost
always, `demo-sloppy` often wraps JSON in prose or slips on arithmetic. For the benchmark
examples they read the answer keys of the sample files in `examples/data` (a demo "model" that
has memorised its benchmark), then slip. `demo-judge` grades by a readable rule per rubric,
wrong at known rates, and `demo-embed` embeds text by hashed words. Point the suite at a real
gateway (`--llm-base-url`, `OPENAI_BASE_URL` or `[tool.llmeval]`) to evaluate real models.

`python examples/demo_models.py [--port N]` serves them all until Ctrl-C (for the
`judge-calibrate` command).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import demo_code

from pytest_llmeval.datasets import load_gsm8k, load_mmlu
from pytest_llmeval.testing import BadRequest, FakeGateway, RecordedRequest, Reply, ScriptedJudge

DATA = Path(__file__).parent / "data"
MMLU_KEY = {q.question: q.answer for q in load_mmlu(DATA / "mmlu")}
GSM8K_KEY = {p.question: p for p in load_gsm8k(DATA / "gsm8k_sample.jsonl")}
ORDER_ID = re.compile(r"\b[A-Z]-\d{3,}\b")

POSITIVE = {"gorgeous", "great", "love", "excellent", "fast", "perfect"}
NEGATIVE = {"broke", "never", "terrible", "refund", "slow", "worst"}
SKY_WHY = "The sky looks blue because the air scatters blue sunlight more than red light."
CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi"}
POLICY = (DATA / "shop_policy.txt").read_text(encoding="utf-8").splitlines()
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "can", "do", "does", "for", "how", "i", "in", "is", "it", "my"}
    | {"of", "on", "or", "the", "to", "what", "you", "your"}
)
FIGURE = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:working\s+)?"
    r"(day|week|month|euro|hour)s?\b",
    re.I,
)
POLICY_FIGURES = {(n.lower(), unit.lower()) for n, unit in FIGURE.findall(" ".join(POLICY))}
SORRY = re.compile(r"\b(sorry|apologi[sz]e|apologies)\b", re.I)
OFFER = re.compile(r"\b(refund|replace|new\b)", re.I)
REFUSAL = re.compile(r"\b(not|cannot|can't|unable)\b", re.I)
CHARGED = re.compile(
    r"at your own (cost|expense)|\byou(?:'ll| will)? (?:need to |have to )?pay\b|return fee", re.I
)
NOT_SAID = re.compile(r"\b(do|does) not (say|mention)|\bno information\b", re.I)


class DemoModel:
    """Answers the example prompts by rule, then makes a mistake with probability `slip`."""

    def __init__(self, slip: float, seed: int, opener: str) -> None:
        self.slip = slip
        self.seed = seed
        # How its free-text answers start: no two models give the judge the same output, so
        # the judge's luck (per prompt and ask) does not depend on which model asked first.
        self.opener = opener
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> str | Reply:
        prompt = request.prompt
        with self._lock:
            self._seen[prompt] += 1
            nth = self._seen[prompt]
        # The n-th ask of a prompt always gets the same luck, whatever the order of tests.
        luck = random.Random(f"{self.seed}:{prompt}:{nth}")
        slipped = luck.random() < self.slip
        code = demo_code.answer(request, luck, slipped)
        if code is not None:
            return code
        if request.body.get("tools"):
            return _tools(prompt, slipped)
        system = json.dumps(request.body.get("messages", [])[:1])
        if "STATUS order=" in system:
            return _support(request.body["messages"], slipped, luck)
        if "Reply to the customer" in system:
            return " ".join([self.opener, *_reply(prompt, luck, self.slip)])
        if "Passages:" in prompt and "Question:" in prompt:
            return f"{self.opener} {_answer(prompt, luck, self.slip)}"
        if "Answer with the letter" in prompt:
            return _choice(prompt, slipped)
        if "#### <number>" in prompt:
            return _word_problem(prompt, slipped)
        if "sentiment" in prompt.lower():
            return self._sentiment(prompt, slipped)
        sums = re.search(r"(\d+)\s*\+\s*(\d+)", prompt)
        if sums:
            total = int(sums.group(1)) + int(sums.group(2))
            answer = str(total + 1 if slipped else total)
            if "working" in prompt:
                return f"{sums.group(1)} + {sums.group(2)} = {answer}, so the answer is {answer}."
            return answer
        for country, capital in CAPITALS.items():
            if country in prompt.lower():
                return "Lyon" if slipped else capital
        if "why is the sky blue" in prompt.lower():
            return "Blue." if slipped else SKY_WHY
        if "sky" in prompt.lower():
            return "Green." if slipped else "Blue."
        if "word PASS" in prompt:
            return "Sorry?" if slipped else "PASS"
        return "I am not sure."

    def _sentiment(self, prompt: str, slipped: bool) -> str:
        review = prompt.rsplit("Review:", 1)[-1].lower()
        words = set(re.findall(r"[a-z]+", review))
        label = "positive" if words & POSITIVE else "negative" if words & NEGATIVE else "neutral"
        answer = json.dumps({"label": label, "confidence": 0.9})
        return f"Sure! Here is the JSON you asked for: {answer}" if slipped else answer


def _choice(prompt: str, slipped: bool) -> str:
    letter = next((key for q, key in MMLU_KEY.items() if q in prompt), "A")
    if slipped:
        letter = "ABCD"[("ABCD".index(letter) + 1) % 4]
    return f"The answer is ({letter})."


def _word_problem(prompt: str, slipped: bool) -> str:
    problem = next((p for q, p in GSM8K_KEY.items() if q in prompt), None)
    if problem is None:
        return "I am not sure."
    if slipped:
        return f"The answer is ${float(problem.answer) + 10:g}."
    return problem.solution


def _tools(prompt: str, slipped: bool) -> str | Reply:
    calls: list[dict[str, Any]] = []
    for city in re.findall(r"weather in ([A-Z][a-z]+)", prompt):
        unit = "fahrenheit" if "fahrenheit" in prompt.lower() else "celsius"
        calls.append({"name": "get_weather", "arguments": {"city": city, "unit": unit}})
    for order in ORDER_ID.findall(prompt):
        calls.append({"name": "get_order_status", "arguments": {"order_id": order}})
    if slipped and calls:
        calls = calls[:-1] if len(calls) > 1 else [{**calls[0], "arguments": {}}]
    return Reply(tool_calls=calls) if calls else "Here is one: why did the tester cross the road?"


def _support(messages: list[dict[str, Any]], slipped: bool, luck: random.Random) -> str:
    """Track the support dialogue's state from the customer's messages, by rule."""
    said = [m["content"] for m in messages if m["role"] == "user"]
    orders = [found for text in said for found in ORDER_ID.findall(text)]
    order = orders[-1] if orders else "none"
    escalation = min(3, sum(bool(re.search(r"manager|unacceptable", t, re.I)) for t in said))
    days = [int(d) for t in said for d in re.findall(r"delivered (\d+) days ago", t)]
    damaged = any(re.search(r"broken|damaged|cracked", t, re.I) for t in said)
    refund = "unknown"
    if days and days[-1] > 30:
        refund = "no"
    elif days and damaged:
        refund = "yes"
    if slipped:
        slip = luck.choice(["order", "escalation", "refund"])
        order = "none" if slip == "order" else order
        escalation = (escalation + 1) % 4 if slip == "escalation" else escalation
        refund = "unknown" if slip == "refund" and refund != "unknown" else refund
    return (
        "Thank you, I have noted that and I am here to help.\n"
        f"STATUS order={order} escalation={escalation} refund={refund}"
    )


def _reply(customer: str, luck: random.Random, slip: float) -> list[str]:
    """A reply to a complaint: an apology, a refund or replacement, a free return, each of
    which can slip; to an angry customer the apology slips three times as often."""
    orders = ORDER_ID.findall(customer)
    order = f"order {orders[-1]}" if orders else "your order"
    angry = re.search(r"manager|unacceptable", customer, re.I)
    if luck.random() >= (min(1.0, 3 * slip) if angry else slip):
        said = [f"I am sorry that {order} arrived damaged."]
    elif angry:
        said = ["I understand you are upset, but damage in transit does happen."]
    else:
        said = ["Thanks for letting us know."]
    if luck.random() < slip:
        said.append("I have passed your message on to our warehouse team.")
    else:
        said.append("I can send you a replacement or give you a full refund, as you prefer.")
    if luck.random() < slip:
        said.append("Please send the item back at your own cost; the postage is about 6 euros.")
    else:
        said.append("Your prepaid return label is on your order page: returning it is free.")
    if "how long" in customer.lower():
        said.append("Refunds are paid within 14 days of the item reaching our warehouse.")
    return said


def _answer(prompt: str, luck: random.Random, slip: float) -> str:
    """Answer from the passages in the prompt: the passage sharing most words with the question,
    or "they do not say" when the question names something they never mention. A slip invents a
    figure or dodges; an unanswerable question tempts three times as often to invent."""
    passages: list[str] = re.findall(r"^- (.+)$", prompt, re.M)
    question = prompt.rsplit("Question:", 1)[-1].strip()
    names = [w.strip("?.,!") for w in question.split()[1:] if w[:1].isupper() and len(w) > 1]
    if not passages or any(name not in " ".join(passages) for name in names):
        if luck.random() < min(1.0, 3 * slip):
            return "Yes, no problem: delivery there takes 4 working days."
        return "The passages do not say; our support team can tell you more."
    asked = _words(question)
    best = max(passages, key=lambda p: len(asked & _words(p)))
    if luck.random() < slip:
        invented = re.sub(r"\d+", lambda m: str(int(m.group()) + 7), best, count=1)
        if invented != best and luck.random() < 0.5:
            return invented
        return "Please contact our support team about that."
    return best


def _words(text: str) -> set[str]:
    """Lower-cased words, common function words left out, without a plural s."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return {w.removesuffix("s") if len(w) > 3 else w for w in found if w not in STOPWORDS}


def _good_reply(reply: str) -> list[bool]:
    """The support rubric's three parts, by rule: it apologises; a sentence offers a refund, a
    replacement or a new item without a refusal word; nothing asks the customer to pay for the
    return."""
    sentences = re.split(r"(?<=[.!?;:])\s+", reply)
    offered = any(OFFER.search(s) and not REFUSAL.search(s) for s in sentences)
    return [bool(SORRY.search(reply)), offered, not CHARGED.search(reply)]


def _faithful(answer: str) -> bool:
    """The RAG rubric, by rule: every figure in the answer ("14 days", "9 euros") is one the
    shop's policy passages give, and the answer gives one, repeats a passage or says the
    passages do not say."""
    figures = {(n.lower(), unit.lower()) for n, unit in FIGURE.findall(answer)}
    repeats = any(passage.rstrip(".") in answer for passage in POLICY)
    return figures <= POLICY_FIGURES and bool(figures or repeats or NOT_SAID.search(answer))


def _meets(output: str, rubric: str) -> bool:
    """demo-judge's truth: the rule of the rubric it is given."""
    if "apologises" in rubric:
        return all(_good_reply(output))
    if "passages" in rubric:
        return _faithful(output)
    raise BadRequest("demo-judge has rules for the support and RAG rubrics of the examples only")


def _better_reply(a: str, b: str, criterion: str) -> str:
    """The reply meeting more of the support rubric's parts is better; as many: a tie."""
    score_a, score_b = sum(_good_reply(a)), sum(_good_reply(b))
    return "A" if score_a > score_b else "B" if score_b > score_a else "tie"


def install(gateway: FakeGateway) -> None:
    """Serve `demo-careful`, `demo-sloppy`, `demo-judge` and `demo-embed` from `gateway`."""
    careful = DemoModel(slip=0.02, seed=1, opener="Thank you for your message.")
    gateway.add_model("demo-careful", careful, latency_s=0.05)
    gateway.add_model("demo-sloppy", DemoModel(slip=0.3, seed=2, opener="Hi!"), latency_s=0.05)
    judge = ScriptedJudge(
        _meets, sensitivity=0.95, specificity=0.92, prefer=_better_reply, position_bias=0.1, seed=3
    )
    gateway.add_model("demo-judge", judge, latency_s=0.05)
    gateway.add_embedding_model("demo-embed", latency_s=0.02)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the demo models until Ctrl-C; print the base URL."""
    parser = argparse.ArgumentParser(description="Serve the example suite's demo models.")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    args = parser.parse_args(argv)
    gateway = FakeGateway(port=args.port)
    install(gateway)
    gateway.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
