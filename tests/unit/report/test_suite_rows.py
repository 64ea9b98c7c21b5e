"""Dataset params: cases named by task id and marked with their subject."""

from __future__ import annotations

from pathlib import Path

from pytest_llmeval.datasets import load_mmlu
from pytest_llmeval.params import params

# Eight questions answered B and two answered C, over two subjects.
QUESTIONS = "question,A,B,C,D,answer,subject\n" + "".join(
    f"Question {i}?,w,x,y,z,{'C' if i in (3, 7) else 'B'},{'algebra' if i < 5 else 'history'}\n"
    for i in range(10)
)


def test_params_names_cases_by_id_and_marks_the_subject(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(QUESTIONS)
    first = params(load_mmlu(path))[0]
    assert first.id == "algebra-0"
    assert [(m.name, m.args) for m in first.marks] == [("llmeval_subject", ("algebra",))]
