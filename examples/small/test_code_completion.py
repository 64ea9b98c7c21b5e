"""HumanEval-style code completion for base models, judged by hidden tests in the sandbox.

The model continues a function signature; the completed function runs in the bubblewrap
sandbox against asserts the model never sees. Each task carries its own threshold for Gemma 3
270M (base), set well under what it scored here in 30 samples at temperature 0.2: add 30/30,
reverse 26/30, count_vowels 10/30, maximum 5/30. It writes is_even backwards (`n % 2 == 0`
returns False) in 30/30 samples, so that task is an expected failure for it.
"""

from __future__ import annotations

import pytest

TASKS = {
    "add": (
        'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n',
        "assert add(2, 3) == 5\nassert add(-4, 4) == 0\nassert add(0, 0) == 0\n",
    ),
    "is_even": (
        'def is_even(n: int) -> bool:\n    """Return True if n is even, else False."""\n',
        "assert is_even(4) is True\nassert is_even(7) is False\nassert is_even(0) is True\n",
    ),
    "reverse": (
        'def reverse(text: str) -> str:\n    """Return text reversed."""\n',
        "assert reverse('abc') == 'cba'\nassert reverse('') == ''\n"
        "assert reverse('a b') == 'b a'\n",
    ),
    "maximum": (
        "def maximum(values: list[int]) -> int:\n"
        '    """Return the largest number in a non-empty list."""\n',
        "assert maximum([1, 5, 3]) == 5\nassert maximum([-2, -7]) == -2\n"
        "assert maximum([4]) == 4\n",
    ),
    "count_vowels": (
        "def count_vowels(text: str) -> int:\n"
        '    """Return how many characters of text are vowels (a, e, i, o, u)."""\n',
        "assert count_vowels('banana') == 3\nassert count_vowels('xyz') == 0\n"
        "assert count_vowels('queue') == 4\n",
    ),
}
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert"]


GEMMA = {"add": 0.8, "reverse": 0.5, "count_vowels": 0.1, "maximum": 0.05}
CASES = [
    pytest.param(
        name,
        marks=pytest.mark.llmeval(
            api="completion", pass_rate={"gemma-3-270m": GEMMA.get(name, 0.9), "*": 0.9}
        ),
    )
    for name in TASKS
]


@pytest.fixture
def known_failures(request: pytest.FixtureRequest, llm_model) -> None:
    """is_even on Gemma 3 270M runs, and is reported XFAIL (XPASS if it ever gets it right)."""
    if llm_model.name == "gemma-3-270m" and request.node.callspec.params["name"] == "is_even":
        request.node.add_marker(pytest.mark.xfail(reason="Gemma 3 270M inverts is_even: 0/30"))


@pytest.mark.llmeval(api="completion", samples=20)
@pytest.mark.parametrize("name", CASES)
def test_completion_passes_hidden_tests(llm, sandbox, known_failures, name: str) -> None:
    prompt, hidden_tests = TASKS[name]
    completion = llm.complete(prompt, max_tokens=96, temperature=0.2, stop=STOP)
    sandbox.run(prompt + completion.text, hidden_tests, name).check()
