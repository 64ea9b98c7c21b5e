"""MBPP-format tasks as pytest tests: the model writes a function from a one-line description,
the sandbox runs it against the task's asserts (never shown to the model, except the first as
the usual MBPP signature hint). The tasks in examples/data are self-written in MBPP's format;
point `load_mbpp` at the real `mbpp.jsonl` for the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval import extract_code
from pytest_llmeval.datasets import MbppTask, load_mbpp

TASKS = load_mbpp(Path(__file__).parent / "data" / "mbpp_sample.jsonl")


@pytest.mark.llmeval(pass_rate=0.9, samples=10, suite=True)
@pytest.mark.parametrize("task", TASKS, ids=[task.id for task in TASKS])
def test_mbpp(llm, sandbox, task: MbppTask) -> None:
    prompt = (
        f"{task.text}\nYour code should pass this test:\n{task.test_list[0]}\n"
        "Answer with the function in a ```python block."
    )
    code = extract_code(llm.chat(prompt, temperature=0.2).text, task.entry_point)
    sandbox.run(code, task.tests, task.entry_point).check()
