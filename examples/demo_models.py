"""Two scripted demo "models" for the fake gateway, so the example suite runs with no API key.

They are rule-based stand-ins, NOT language models: `demo-careful` answers correctly almost
always, `demo-sloppy` often wraps JSON in prose or slips on arithmetic. Point the suite at a
real gateway (`--llm-base-url`, `OPENAI_BASE_URL` or `[tool.llmeval]`) to evaluate real models.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter

import demo_code

from pytest_llmeval.testing import FakeGateway, RecordedRequest

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

    def __call__(self, request: RecordedRequest) -> str:
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


def install(gateway: FakeGateway) -> None:
    """Serve `demo-careful` and `demo-sloppy` from `gateway`."""
    gateway.add_model("demo-careful", DemoModel(slip=0.02, seed=1), latency_s=0.05)
    gateway.add_model("demo-sloppy", DemoModel(slip=0.3, seed=2), latency_s=0.05)
