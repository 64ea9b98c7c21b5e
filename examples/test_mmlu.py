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


# Each question must be answered right; the suite row gives the model's accuracy per subject.
@pytest.mark.llmeval(api="chat", pass_rate=1.0, samples=1, mode="observed")
@pytest.mark.parametrize("q", params(QUESTIONS))
def test_mmlu(llm, q: MmluQuestion) -> None:
    answer = llm.chat(PROMPT.format(*q.choices, question=q.question), temperature=0)
    check_choice(answer, q.answer)
