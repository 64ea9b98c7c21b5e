"""HumanEval-style code completion for base models: the model continues a function signature.

The completion is checked without running it (the sandbox issue adds hidden tests): it must
parse as Python together with the prompt and return something. Gemma 3 270M (base) passed
40/40 to 37/40 of add, is_even, reverse and count_vowels, but `maximum` swung from 26/40 to
7/20 between two server set-ups (it often rambles past max_tokens), so its threshold is 0.3.
"""

from __future__ import annotations

import ast

import pytest

TASKS = {
    "add": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n',
    "is_even": 'def is_even(n: int) -> bool:\n    """Return True if n is even, else False."""\n',
    "reverse": 'def reverse(text: str) -> str:\n    """Return text reversed."""\n',
    "maximum": (
        "def maximum(values: list[int]) -> int:\n"
        '    """Return the largest number in a non-empty list."""\n'
    ),
    "count_vowels": (
        "def count_vowels(text: str) -> int:\n"
        '    """Return how many characters of text are vowels (a, e, i, o, u)."""\n'
    ),
}
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]


def function_of(source: str, name: str) -> ast.FunctionDef:
    tree = ast.parse(source)
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


@pytest.mark.llmeval(api="completion", pass_rate={"gemma-3-270m": 0.3, "*": 0.9}, samples=20)
@pytest.mark.parametrize("name", TASKS)
def test_completion_is_a_valid_function_body(llm, name: str) -> None:
    prompt = TASKS[name]
    completion = llm.complete(prompt, max_tokens=96, temperature=0.2, stop=STOP)
    source = prompt + completion.text
    try:
        function = function_of(source, name)
    except SyntaxError as exc:
        raise AssertionError(f"syntax error: {exc.msg} in\n{source}") from None
    returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    assert returns, f"no return statement in\n{source}"
