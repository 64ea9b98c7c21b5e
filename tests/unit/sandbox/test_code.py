"""extract_code on the shapes models answer in, and the unbiased pass@k estimator."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval import extract_code, pass_at_k


@pytest.mark.parametrize(
    ("text", "entry_point", "expected"),
    [
        ("```python\ndef f():\n    return 1\n```", None, "def f():\n    return 1"),
        ("Sure!\n```py\ndef f():\n    return 1\n```\nThanks.", None, "def f():\n    return 1"),
        ("~~~\nx = 1\n~~~", None, "x = 1"),
        ("def f():\n    return 1\n", None, "def f():\n    return 1"),
        ("```python\ndef f():\n    return 1\n", None, "def f():\n    return 1"),  # unclosed fence
        (
            "Helper first:\n```python\ndef g():\n    pass\n```\nThen:\n```python\n"
            "import math\n\ndef f(x):\n    return math.floor(x)\n```",
            "f",
            "import math\ndef f(x):\n    return math.floor(x)",
        ),
        (
            "```text\nexample output\n```\n```python\ndef f():\n    return 2\n```",
            None,
            "def f():\n    return 2",
        ),
        (
            "```python\ndef f(a):\n    return a\n\nprint(f(1))\nif __name__ == '__main__':\n"
            "    f(2)\n```",
            "f",
            "def f(a):\n    return a",
        ),
        (
            "You can use:\nimport os\ndef f(a):\n    return a\nThis returns a.",
            "f",
            "import os\ndef f(a):\n    return a",
        ),
        ("    return a + b\n", "f", "    return a + b"),  # a bare body stays a body
        (
            "```python\n@cache\ndef f(n):\n    return n\n```",
            "f",
            "@cache\ndef f(n):\n    return n",
        ),
    ],
    ids=[
        "fenced", "prose around", "tilde fence", "bare code", "unclosed", "picks the def",
        "python block over text block", "drops demo calls", "def in prose", "bare body",
        "decorator kept",
    ],
)  # fmt: skip
def test_extract_code(text: str, entry_point: str | None, expected: str) -> None:
    assert extract_code(text, entry_point) == expected


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """P(at least one of k distinct samples drawn from n passes), by enumeration."""
    outcomes = [True] * c + [False] * (n - c)
    draws = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(outcomes[i] for i in d) for d in draws), len(draws))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_matches_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)))


@given(st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_pass_at_1_is_the_pass_rate(nc: tuple[int, int]) -> None:
    n, c = nc
    assert pass_at_k(n, c, 1) == pytest.approx(c / n)


def test_pass_at_k_rejects_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(5, 6, 1)
