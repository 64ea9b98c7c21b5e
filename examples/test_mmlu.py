"""MMLU-style multiple choice, as in the seed article: one case per question, rates per subject.

The questions are a tiny self-written sample in the MMLU CSV layout (one headerless file per
subject in `data/mmlu`); point `load_mmlu` at the real MMLU `test/` folder to run the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval import check_choice
from pytest_llmeval.datasets import MmluQuestion, load_mmlu
from pytest_llmeval.params import params

QUESTIONS = load_mmlu(Path(__file__).parent / "data" / "mmlu")
PROMPT = (
    "{question}\n\nA. {0}\nB. {1}\nC. {2}\nD. {3}\n\nAnswer with the letter of the correct option."
)


# One gate for the whole benchmark: accuracy over the questions must not be significantly below
# 0.9 (a question is a case, and answers it gets wrong are observations, not failures). The
# suite row gives the accuracy, its exact interval and the rate per subject.
@pytest.mark.llmeval(api="chat", pass_rate=0.9, samples=1, suite=True)
@pytest.mark.parametrize("q", params(QUESTIONS))
def test_mmlu(llm, q: MmluQuestion) -> None:
    answer = llm.chat(PROMPT.format(*q.choices, question=q.question), temperature=0)
    check_choice(answer, q.answer)
