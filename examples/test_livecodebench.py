"""LiveCodeBench-style tasks as pytest tests: a whole program reads stdin and writes stdout,
and the sandbox runs it once per hidden case. The tasks in examples/data are self-written in
the LiveCodeBench format (`load_stdio` also reads LiveCodeBench's own field names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval import extract_code
from pytest_llmeval.datasets import StdioTask, load_stdio

TASKS = load_stdio(Path(__file__).parent / "data" / "stdio_sample.jsonl")


@pytest.mark.llmeval(pass_rate=0.9, samples=10, suite=True)
@pytest.mark.parametrize("task", TASKS, ids=[task.id for task in TASKS])
def test_stdin_stdout_program(llm, sandbox, task: StdioTask) -> None:
    prompt = (
        f"{task.question}\nRead from standard input and write to standard output. "
        "Answer with the whole program in a ```python block."
    )
    program = extract_code(llm.chat(prompt, temperature=0.2).text)
    sandbox.run_io(program, [(case.input, case.output) for case in task.tests]).check()
