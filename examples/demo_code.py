"""Code answers of the demo models: they replay the reference solutions of the tasks the code
examples use (HumanEval's canonical solutions, the MBPP sample's reference code). A slip is a
wrong body, or every third slip a syntax error, so the report has both kinds of failure."""

from __future__ import annotations

import functools
import random
from pathlib import Path

from pytest_llmeval.datasets import load_humaneval, load_mbpp
from pytest_llmeval.testing import RecordedRequest

MBPP = Path(__file__).parent / "data" / "mbpp_sample.jsonl"


@functools.cache
def _solutions() -> dict[str, tuple[str, str]]:
    """Prompt key -> (code a chat answer shows, body a completion continues with)."""
    known = {t.prompt.strip(): (t.prompt + t.canonical_solution, t.canonical_solution)
             for t in load_humaneval()}
    for task in load_mbpp(MBPP):
        known[task.text] = (task.code, task.code)
    return known


def answer(request: RecordedRequest, luck: random.Random, slipped: bool) -> str | None:
    """The demo's answer to a coding prompt, or None if the prompt is not one."""
    prompt = request.prompt
    key = prompt.strip() if prompt.strip() in _solutions() else prompt.split("\n", 1)[0]
    if key not in _solutions():
        return None
    code, body = _solutions()[key]
    chat = request.path.endswith("/chat/completions")
    if slipped:
        broken = luck.random() < 1 / 3
        body = "    return (\n" if broken else "    return None\n"
        head = code[: code.rfind('"""') + 3] if '"""' in code else code.split(":", 1)[0] + ":"
        code = head + "\n" + body
    return f"Here is the function:\n```python\n{code}```\n" if chat else body
