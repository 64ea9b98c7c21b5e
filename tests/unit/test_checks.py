"""Answer checks: what passes, and failure messages that say what was expected and what came."""

from __future__ import annotations

import pytest

from pytest_llmeval import (
    check_choice,
    check_json,
    check_number,
    check_tool_calls,
    extract_choice,
    extract_number,
)
from pytest_llmeval.calls.completion import Completion, ToolCall, Usage

SCHEMA = {
    "type": "object",
    "required": ["label"],
    "properties": {"label": {"enum": ["positive", "negative"]}, "tags": {"type": "array"}},
}


def answer(text: str = "", *calls: ToolCall) -> Completion:
    return Completion(text, "m", Usage(), 0.1, None, tool_calls=calls)


def test_check_json_accepts_text_or_completion_and_one_fence() -> None:
    assert check_json('{"label": "positive"}', SCHEMA) == {"label": "positive"}
    assert check_json(answer('```json\n{"label": "negative"}\n```'), SCHEMA)["label"] == "negative"
    assert check_json("[1, 2]") == [1, 2]


def test_check_json_failures_name_the_text_and_the_path() -> None:
    with pytest.raises(AssertionError, match=r"not valid JSON .*: 'Sure: \{\"label\"'"):
        check_json('Sure: {"label"')
    with pytest.raises(AssertionError, match=r"JSON at \$\.tags: 'x' is not of type 'array'"):
        check_json('{"label": "positive", "tags": "x"}', SCHEMA)
    with pytest.raises(AssertionError, match=r"JSON at \$\.label: 'meh' is not one of"):
        answer('{"label": "meh"}').json(SCHEMA)


WEATHER = ToolCall("1", "get_weather", {"city": "Paris", "unit": "celsius"})
TIME = ToolCall("2", "get_time", {"tz": "Europe/Paris"})
CITY_SCHEMA = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "additionalProperties": False,
}


def test_check_tool_calls_exact_and_schema_any_order() -> None:
    completion = answer("", WEATHER, TIME)
    check_tool_calls(
        completion,
        [{"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
         {"name": "get_weather", "schema": CITY_SCHEMA}],
    )  # fmt: skip
    check_tool_calls(completion, [{"name": "get_weather"}, {"name": "get_time"}], ordered=True)


def test_check_tool_calls_failures() -> None:
    with pytest.raises(
        AssertionError,
        match=r"expected 1 tool call\(s\) \[get_weather\], got 0: "
        r"no tool calls \(text 'It is sunny'\)",
    ):
        check_tool_calls(answer("It is sunny"), [{"name": "get_weather"}])
    with pytest.raises(
        AssertionError,
        match=r"tool call 0: expected 'get_time', got 'get_weather'; "
        r"got get_weather\(\{\"city\": \"Paris\"",
    ):
        check_tool_calls(answer("", WEATHER, TIME), [{"name": "get_time"}, {"name": "x"}], True)
    with pytest.raises(
        AssertionError,
        match=r"no call matches 'get_weather' \(get_weather arguments: expected "
        r"\{\"city\": \"Lyon\"\}, got \{\"city\": \"Paris\", \"unit\": \"celsius\"\}\)",
    ):
        check_tool_calls(
            answer("", WEATHER), [{"name": "get_weather", "arguments": {"city": "Lyon"}}]
        )
    bad = ToolCall("3", "get_weather", {"city": "Paris", "unit": "kelvin"})
    with pytest.raises(
        AssertionError, match=r"get_weather arguments at \$\.unit: 'kelvin' is not one of"
    ):
        check_tool_calls(answer("", bad), [{"name": "get_weather", "schema": CITY_SCHEMA}])


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("The answer is (B).", "B"),
        ("Answer: C", "C"),
        ("Let me think. Mars is red, so the correct option is **D**", "D"),
        ("(A) Mercury", "A"),
        ("C. 42", "C"),
        ("A is wrong and B is wrong, so I pick (C)", "C"),
        ("After elimination it must be D", "D"),
        ("Mars is red, so I pick **B**", "B"),
        ("A planet is not a star.", None),
        ("I do not know", None),
        ("the answer is a planet", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_check_choice_messages() -> None:
    assert check_choice(answer("The answer is (B)"), "b") == "B"
    with pytest.raises(AssertionError, match=r"expected choice B, got C: 'Answer: C'"):
        check_choice("Answer: C", "B")
    with pytest.raises(AssertionError, match=r"expected choice B, got no A-D answer in 'Mars'"):
        check_choice("Mars", "B")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("She sold 48 clips in April and 24 in May.\n#### 72", 72),
        ("#### 1,234", 1234),
        ("The answer is $1,234.50.", 1234.5),
        ("3 apples plus 4 apples makes 7 apples.", 7),
        ("Answer: -3 degrees, down from 5 at noon", -3),
        ("It costs .5 dollars", 0.5),
        ("no digits here", None),
    ],
)
def test_extract_number(text: str, number: float | None) -> None:
    assert extract_number(text) == number


def test_check_number_messages() -> None:
    assert check_number(answer("#### 72"), "72") == 72
    assert check_number("about 3.3333333", 10 / 3, tolerance=1e-3) == pytest.approx(3.3333333)
    with pytest.raises(AssertionError, match=r"expected the number 72, got 73: 'So 73.'"):
        check_number("So 73.", 72)
    with pytest.raises(AssertionError, match=r"expected the number 1234, got no number in 'many'"):
        check_number("many", "1,234")


def test_check_tool_calls_finds_a_matching_when_a_greedy_pass_would_not() -> None:
    paris = ToolCall("c1", "get", {"city": "Paris"})
    rome = ToolCall("c2", "get", {"city": "Rome"})
    either_then_paris = [{"name": "get"}, {"name": "get", "arguments": {"city": "Paris"}}]
    check_tool_calls(answer("", paris, rome), either_then_paris)
    with pytest.raises(AssertionError, match="no way to match each expected call"):
        check_tool_calls(
            answer("", paris, rome),
            [{"name": "get", "arguments": {"city": "Paris"}}] * 2,
        )


def test_extract_choice_prefers_the_last_line_over_a_listed_option() -> None:
    assert extract_choice("A) 4\nB) 5\nThe correct one is B") == "B"
