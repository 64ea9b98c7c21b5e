"""Code answers of the demo models: reference solutions of the tasks the code examples use
(HumanEval's canonical solutions, the reference code of the MBPP and stdin/stdout samples, and
the hand-written tasks below). A slip is a plausible wrong answer where one is written here
(one that fits the prompt's examples but not the hidden tests), else a wrong body, or every
third slip a syntax error, so the report shows each kind of failure."""

from __future__ import annotations

import functools
import inspect
import json
import random
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.datasets import load_humaneval, load_mbpp
from pytest_llmeval.testing import RecordedRequest

DATA = Path(__file__).parent / "data"

DEDUPE = "def dedupe(items):\n    return list(dict.fromkeys(items))\n"
DEDUPE_SLIP = "def dedupe(items):\n    return sorted(set(items))\n"

FASTAPI = """from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field
import httpx

app = FastAPI()


class UpstreamError(Exception):
    pass


class AnalyzeRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=100)


async def get_scorer():
    async def score(text):
        async with httpx.AsyncClient() as client:
            url = "https://sentiment-api.example.com/score"
            response = await client.post(url, json={"text": text})
        if response.status_code != 200:
            raise UpstreamError(response.status_code)
        return response.json()["score"]
    return score


@app.post("/analyze")
async def analyze(request: AnalyzeRequest, score=Depends(get_scorer)):
    try:
        return [{"text": text, "score": await score(text)} for text in request.texts]
    except UpstreamError:
        raise HTTPException(status_code=502, detail="Upstream error") from None
"""
FASTAPI_SLIP = FASTAPI.replace("Field(min_length=1, max_length=100)", "Field()")


def _rag() -> tuple[str, str]:
    import test_rag_task as rag

    helpers = inspect.getsource(rag.tokens) + "\n" + inspect.getsource(rag.normalize)
    code = "import math\nimport re\n\n" + helpers + "\n" + inspect.getsource(rag.reference)
    code = code.replace("def reference(", "def hybrid_search(")
    return code, code.replace("normalize(dense), normalize(keyword)", "dense, keyword")


@dataclass(frozen=True)
class Solution:
    code: str  # what a chat answer shows
    body: str  # what a completion continues the prompt with
    slip: str | None = None  # a plausible wrong chat answer


@functools.cache
def _solutions() -> dict[str, Solution]:
    """Prompt key (the stripped prompt, or its first line) -> solution."""
    known = {
        t.prompt.strip(): Solution(t.prompt + t.canonical_solution, t.canonical_solution)
        for t in load_humaneval()
    }
    for task in load_mbpp(DATA / "mbpp_sample.jsonl"):
        known[task.text] = Solution(task.code, task.code)
    for line in (DATA / "stdio_sample.jsonl").read_text().splitlines():
        row = json.loads(line)
        known[row["question"]] = Solution(row["reference_solution"], row["reference_solution"])
    import test_fastapi_task
    import test_property_based
    import test_rag_task

    rag, rag_slip = _rag()
    for prompt, right, wrong in (
        (test_property_based.TASK, DEDUPE, DEDUPE_SLIP),
        (test_rag_task.TASK, rag, rag_slip),
        (test_fastapi_task.TASK, FASTAPI, FASTAPI_SLIP),
    ):
        known[prompt.split("\n", 1)[0]] = Solution(right, right, wrong)
    return known


def answer(request: RecordedRequest, luck: random.Random, slipped: bool) -> str | None:
    """The demo's answer to a coding prompt, or None if the prompt is not one."""
    prompt = request.prompt
    solution = _solutions().get(prompt.strip()) or _solutions().get(prompt.split("\n", 1)[0])
    if solution is None:
        return None
    code, body = solution.code, solution.body
    chat = request.path.endswith("/chat/completions")
    if slipped and solution.slip and chat:
        code = solution.slip
    elif slipped:
        body = "    return (\n" if luck.random() < 1 / 3 else "    return None\n"
        head = code[: code.rfind('"""') + 3] if '"""' in code else code.split(":", 1)[0] + ":"
        code = head + "\n" + body
    return f"Here is the code:\n```python\n{code}```\n" if chat else body
