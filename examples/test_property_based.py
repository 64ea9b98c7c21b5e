"""Property-based hidden tests: the model's function is compared with a reference solution on
inputs Hypothesis generates, inside the sandbox (in the spirit of HumanEval+'s extra tests).
A solution that only fits the examples in the prompt fails on generated inputs."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from pytest_llmeval import extract_code
from pytest_llmeval.differential import check_against_reference

TASK = (
    "Write a Python function dedupe(items) that returns the list without repeated elements, "
    "keeping the first occurrence of each, in order. Examples: dedupe([1, 1, 2]) == [1, 2], "
    "dedupe([3, 3, 4, 4]) == [3, 4]. Answer with the function in a ```python block."
)


def reference(items: list[int]) -> list[int]:
    return list(dict.fromkeys(items))


@pytest.mark.llmeval(pass_rate=0.8, samples=10)
def test_dedupe_matches_the_reference_on_generated_inputs(llm, sandbox) -> None:
    code = extract_code(llm.chat(TASK, temperature=0.2).text, "dedupe")
    check_against_reference(
        sandbox, code, "dedupe", reference, st.tuples(st.lists(st.integers(-5, 5))),
        fixed=[([1, 1, 2],), ([3, 3, 4, 4],)], examples=200,
    ).check()  # fmt: skip
