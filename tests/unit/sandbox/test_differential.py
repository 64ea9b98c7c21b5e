"""Property-based hidden tests: the candidate against a reference on generated inputs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import strategies as st

from pytest_llmeval.differential import check_against_reference, generated_inputs
from pytest_llmeval.sandbox.host import Sandbox

ORDERED = (
    "def dedupe(xs):\n    seen, out = set(), []\n    for x in xs:\n        if x not in seen:\n"
    "            seen.add(x)\n            out.append(x)\n    return out\n"
)
SORTED = "def dedupe(xs):\n    return sorted(set(xs))\n"  # right on sorted input only
FIXED = [([1, 1, 2],), ([3, 3, 4, 4],)]
LISTS = st.tuples(st.lists(st.integers()))


def dedupe(xs: list[int]) -> list[int]:
    return list(dict.fromkeys(xs))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(size=1) as pool:
        yield pool


def test_catches_a_candidate_that_passes_the_fixed_tests(box: Sandbox) -> None:
    fixed_only = "\n".join(f"assert dedupe({args[0]!r}) == {dedupe(*args)!r}" for args in FIXED)
    assert box.run(SORTED, fixed_only, "dedupe").passed
    result = check_against_reference(box, SORTED, "dedupe", dedupe, LISTS, fixed=FIXED)
    assert result.status == "failed"
    assert "dedupe(" in (result.message or "") and "the reference gives" in (result.message or "")
    assert check_against_reference(box, ORDERED, "dedupe", dedupe, LISTS, fixed=FIXED).passed


def test_inputs_are_generated_the_same_way_every_time() -> None:
    first = generated_inputs(LISTS, 50)
    assert first == generated_inputs(LISTS, 50)
    assert len(first) == len({repr(args) for args in first}) > 40


def test_nan_equals_nan_and_types_must_match(box: Sandbox) -> None:
    floats = st.tuples(st.floats())
    halve = "def f(x):\n    return x / 2\n"
    assert check_against_reference(box, halve, "f", lambda x: x / 2, floats).passed
    as_bool = "def f(x):\n    return x > 0\n"
    result = check_against_reference(
        box, as_bool, "f", lambda x: int(x > 0), st.tuples(st.integers())
    )
    assert result.status == "failed" and "returned False, the reference gives 0" in str(
        result.message
    )


def test_inputs_where_the_reference_raises_are_out_of_domain(box: Sandbox) -> None:
    def reciprocal(x: int) -> float:
        return 1 / x

    code = "def f(x):\n    return 1 / x\n"
    assert check_against_reference(box, code, "f", reciprocal, st.tuples(st.integers())).passed
    with pytest.raises(ValueError, match="raised on every input"):
        check_against_reference(box, code, "f", reciprocal, st.tuples(st.just(0)))
