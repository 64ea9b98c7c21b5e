"""Checks for model answers: plain functions that raise AssertionError saying expected vs got.

An AssertionError is a failed sample, so any of these can end a test body. Each takes the
answer's text or anything with a `.text` (a `Completion`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import jsonschema
import jsonschema.exceptions

_FENCE = re.compile(r"^```[\w-]*\s*\n(.*?)\n?```$", re.DOTALL)
_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_GSM8K = re.compile(rf"####\s*\$?\s*({_NUMBER})")
_ANSWER_IS = re.compile(
    rf"answer\s*(?:is|:|=)?\s*(?:\*\*)?\s*[:=]?\s*\$?\s*({_NUMBER})", re.IGNORECASE
)
_ANY_NUMBER = re.compile(_NUMBER)
_CHOICE_PATTERNS = (
    # "The answer is (B)", "Answer: B", "answer is **C**", "correct option is D."
    re.compile(
        r"(?i:answer|option|choice)\s*(?i:is|:|=)?\s*(?:\*\*)?\s*[:=]?\s*"
        r"[(\[]?([A-D])[)\].:]?(?![A-Za-z])"
    ),
    re.compile(r"\b([A-D])\b(?!\s*[A-Za-z'])\W*$"),  # "... it must be D" (a last line wins)
    re.compile(r"^\s*[(\[]?([A-D])(?:[)\].:]|\s*$)"),  # "B", "(B) Mars", "C. 42"
    re.compile(r"[(\[]([A-D])[)\]]"),  # "... so (C)"
)


class HasText(Protocol):
    text: str


class HasToolCalls(Protocol):
    text: str
    tool_calls: Sequence[Any]


def _text(answer: str | HasText) -> str:
    return answer if isinstance(answer, str) else answer.text


def excerpt(text: str, limit: int = 200) -> str:
    """`text` quoted for a failure message, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def validate(value: Any, schema: Mapping[str, Any], what: str = "JSON") -> None:
    """Raise AssertionError naming the JSON path of the most relevant schema violation."""
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(dict(schema))
    error = jsonschema.exceptions.best_match(validator_cls(dict(schema)).iter_errors(value))
    if error is not None:
        raise AssertionError(f"{what} at {error.json_path}: {error.message}")


def check_json(answer: str | HasText, schema: Mapping[str, Any] | None = None) -> Any:
    """Parse the answer as JSON (one markdown fence allowed), validate it against `schema`,
    and return the value."""
    text = _text(answer)
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"response is not valid JSON ({exc}): {excerpt(text)}") from None
    if schema is not None:
        validate(value, schema)
    return value


def check_tool_calls(
    completion: HasToolCalls, expected: Sequence[Mapping[str, Any]], ordered: bool = False
) -> None:
    """The model called exactly the `expected` tools: each `{"name": ..., "arguments": {...}}`
    (exact arguments) or `{"name": ..., "schema": {...}}` (arguments validated by a schema).

    Unordered by default: each expected call is matched with a distinct actual call.
    """
    calls = list(completion.tool_calls)
    got = ", ".join(f"{c.name}({json.dumps(c.arguments, sort_keys=True)})" for c in calls)
    got = got or f"no tool calls (text {excerpt(completion.text, 80)})"
    if len(calls) != len(expected):
        names = ", ".join(str(e["name"]) for e in expected)
        raise AssertionError(
            f"expected {len(expected)} tool call(s) [{names}], got {len(calls)}: {got}"
        )
    if ordered:
        for i, (want, call) in enumerate(zip(expected, calls, strict=True)):
            problem = _call_mismatch(want, call)
            if problem:
                raise AssertionError(f"tool call {i}: {problem}; got {got}")
        return
    fits = [[_call_mismatch(want, call) is None for call in calls] for want in expected]
    if _assignment(fits, 0, set()):
        return
    for want, row in zip(expected, fits, strict=True):
        if not any(row):
            problems = (_call_mismatch(want, call) for call in calls)
            detail = "; ".join(dict.fromkeys(p for p in problems if p))
            raise AssertionError(f"no call matches {want['name']!r} ({detail}); got {got}")
    raise AssertionError(f"no way to match each expected call to its own call; got {got}")


def _assignment(fits: list[list[bool]], want: int, taken: set[int]) -> bool:
    """Whether expected calls `want`.. can each take a different fitting call (backtracking)."""
    if want == len(fits):
        return True
    for call, fit in enumerate(fits[want]):
        if fit and call not in taken and _assignment(fits, want + 1, taken | {call}):
            return True
    return False


def _call_mismatch(want: Mapping[str, Any], call: Any) -> str | None:
    """Why `call` is not the expected call, or None when it is."""
    if call.name != want["name"]:
        return f"expected {want['name']!r}, got {call.name!r}"
    if "arguments" in want and call.arguments != want["arguments"]:
        return (
            f"{call.name} arguments: expected {json.dumps(want['arguments'], sort_keys=True)}, "
            f"got {json.dumps(call.arguments, sort_keys=True)}"
        )
    if "schema" in want:
        try:
            validate(call.arguments, want["schema"], what=f"{call.name} arguments")
        except AssertionError as exc:
            return str(exc)
    return None


def extract_choice(answer: str | HasText) -> str | None:
    """The letter A-D a multiple-choice answer picks ("The answer is (B)", "C. Paris"), or None."""
    text = _text(answer).strip()
    for pattern in _CHOICE_PATTERNS:
        matches = pattern.findall(text)
        if matches:
            return str(matches[-1]).upper()
    return None


def check_choice(answer: str | HasText, expected: str) -> str:
    """The answer picks the letter `expected`; returns the letter."""
    text = _text(answer)
    got = extract_choice(text)
    if got is None:
        raise AssertionError(f"expected choice {expected}, got no A-D answer in {excerpt(text)}")
    if got != expected.strip().upper():
        raise AssertionError(f"expected choice {expected}, got {got}: {excerpt(text)}")
    return got


def extract_number(answer: str | HasText) -> float | None:
    """The final number of an answer: after GSM8K's `####`, else after "answer is",
    else the last number in the text. `$1,234.50` reads as 1234.5."""
    text = _text(answer)
    for pattern in (_GSM8K, _ANSWER_IS, _ANY_NUMBER):
        matches = pattern.findall(text)
        if matches:
            return float(str(matches[-1]).replace(",", ""))
    return None


def check_number(answer: str | HasText, expected: float | str, tolerance: float = 1e-6) -> float:
    """The answer's final number equals `expected` (within `tolerance`); returns it."""
    text = _text(answer)
    want = float(str(expected).replace(",", ""))
    got = extract_number(text)
    if got is None:
        raise AssertionError(f"expected the number {want:g}, got no number in {excerpt(text)}")
    if not math.isclose(got, want, rel_tol=0.0, abs_tol=tolerance):
        raise AssertionError(f"expected the number {want:g}, got {got:g}: {excerpt(text)}")
    return got
