"""Two scripted demo "models" for the fake gateway, so the example suite runs with no API key.

They are rule-based stand-ins, NOT language models: `demo-careful` answers correctly almost
always, `demo-sloppy` often wraps JSON in prose or slips on arithmetic. For the benchmark
examples they read the answer keys of the sample files in `examples/data` (a demo "model" that
has memorised its benchmark), then slip. Point the suite at a real gateway (`--llm-base-url`,
`OPENAI_BASE_URL` or `[tool.llmeval]`) to evaluate real models.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import demo_code

from pytest_llmeval.datasets import load_gsm8k, load_mmlu
from pytest_llmeval.testing import FakeGateway, RecordedRequest, Reply

DATA = Path(__file__).parent / "data"
MMLU_KEY = {q.question: q.answer for q in load_mmlu(DATA / "mmlu")}
GSM8K_KEY = {p.question: p for p in load_gsm8k(DATA / "gsm8k_sample.jsonl")}
ORDER_ID = re.compile(r"\b[A-Z]-\d{3,}\b")

POSITIVE = {"gorgeous", "great", "love", "excellent", "fast", "perfect"}
NEGATIVE = {"broke", "never", "terrible", "refund", "slow", "worst"}
CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi"}


class DemoModel:
    """Answers the example prompts by rule, then makes a mistake with probability `slip`."""

    def __init__(self, slip: float, seed: int) -> None:
        self.slip = slip
        self.seed = seed
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
        if "STATUS order=" in json.dumps(request.body.get("messages", [])[:1]):
            return _support(request.body["messages"], slipped, luck)
        if "Answer with the letter" in prompt:
            return _choice(prompt, slipped)
        if "#### <number>" in prompt:
            return _word_problem(prompt, slipped)
        if "sentiment" in prompt.lower():
            return self._sentiment(prompt, slipped)
        sums = re.search(r"(\d+)\s*\+\s*(\d+)", prompt)
        if sums:
            total = int(sums.group(1)) + int(sums.group(2))
            return str(total + 1 if slipped else total)
        for country, capital in CAPITALS.items():
            if country in prompt.lower():
                return "Lyon" if slipped else capital
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


def install(gateway: FakeGateway) -> None:
    """Serve `demo-careful` and `demo-sloppy` from `gateway`."""
    gateway.add_model("demo-careful", DemoModel(slip=0.02, seed=1), latency_s=0.05)
    gateway.add_model("demo-sloppy", DemoModel(slip=0.3, seed=2), latency_s=0.05)
