"""Property-based hidden tests: the candidate against a reference solution on inputs that
Hypothesis generates (in the spirit of HumanEval+'s extra tests), judged in the sandbox."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pytest_llmeval.sandbox.host import Sandbox, SandboxResult

_lock = threading.Lock()

COMPARE = """
def same(a, b):
    if type(a) is float and type(b) is float and a != a and b != b:
        return True
    if type(a) in (list, tuple) and type(a) is type(b) and len(a) == len(b):
        return all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict and a.keys() == b.keys():
        return all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b if type(b) in (bool, int) else a == b

def check(candidate):
    for args, expected in CASES:
        got = candidate(*args)
        said = f"{candidate.__name__}{args!r} returned {got!r}"
        assert same(got, expected), f"{said}, the reference gives {expected!r}"
"""


def generated_inputs(strategy: Any, examples: int) -> list[tuple[Any, ...]]:
    """Up to `examples` distinct argument tuples from a Hypothesis strategy of tuples.

    Derandomized, so every sample of a test (and every run) gets the same hidden inputs, simple
    ones first, as Hypothesis generates them.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    found: dict[str, tuple[Any, ...]] = {}

    @settings(
        max_examples=examples,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(args: Any) -> None:
        args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        found.setdefault(repr(args), args)

    with _lock:  # Hypothesis's engine is not meant to run in several threads at once
        collect()
    return list(found.values())


def check_against_reference(
    sandbox: Sandbox,
    code: str,
    entry_point: str,
    reference: Callable[..., Any],
    strategy: Any,
    *,
    examples: int = 100,
    fixed: Sequence[tuple[Any, ...]] = (),
    timeout: float | None = None,
) -> SandboxResult:
    """Run `code`'s `entry_point` on the `fixed` argument tuples and on inputs generated from
    `strategy` (a Hypothesis strategy of argument tuples), comparing each result with what the
    trusted `reference` returns for the same arguments.

    The reference runs here, on the host (it is the test author's code); inputs where it raises
    are dropped as outside the function's domain. Only the inputs and expected outputs enter the
    sandbox, as plain data. Call `.check()` on the result.
    """
    cases = []
    for args in [*fixed, *generated_inputs(strategy, examples)]:
        try:
            expected = reference(*args)
        except Exception:
            continue
        cases.append((tuple(args), expected))
    if not cases:
        raise ValueError("the reference raised on every input; nothing to compare")
    cases.sort(key=lambda case: len(repr(case[0])))  # the first failure shown is a small one
    tests = f"CASES = {_literal(cases)}\n{COMPARE}"
    return sandbox.run(code, tests, entry_point, timeout=timeout)


def _literal(value: Any) -> str:
    """Python source for plain data (repr, with non-finite floats spelled out)."""
    kind = type(value)
    if kind is float and not math.isfinite(value):
        return f"float({str(value)!r})"
    if kind is list:
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if kind is tuple:
        return "(" + "".join(_literal(v) + ", " for v in value) + ")"
    if kind is dict:
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if kind in (set, frozenset):
        inner = ", ".join(_literal(v) for v in value)
        return f"{kind.__name__}([{inner}])"
    if value is None or kind in (bool, int, str, bytes, float, complex):
        return repr(value)
    raise TypeError(f"a {kind.__name__} cannot be a hidden test value (plain data only)")
