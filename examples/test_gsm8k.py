"""GSM8K-style word problems, as in the seed article: the final number must be right.

A tiny self-written sample in GSM8K's JSONL layout (`question`, `answer` ending in `#### N`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval import check_number
from pytest_llmeval.datasets import Gsm8kProblem, load_gsm8k
from pytest_llmeval.params import params

PROBLEMS = load_gsm8k(Path(__file__).parent / "data" / "gsm8k_sample.jsonl")
PROMPT = (
    "Solve the problem step by step, then give the final answer on a last line as "
    "'#### <number>'.\n\n{question}"
)


# The suite's accuracy is the gate: not significantly below 0.9 over the problems.
@pytest.mark.llmeval(api="chat", pass_rate=0.9, samples=1, suite=True)
@pytest.mark.parametrize("problem", params(PROBLEMS))
def test_gsm8k(llm, problem: Gsm8kProblem) -> None:
    answer = llm.chat(PROMPT.format(question=problem.question), temperature=0)
    check_number(answer, problem.answer)
