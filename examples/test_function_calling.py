"""Function calling, as in the seed article: the right tools with valid arguments, any order."""

from __future__ import annotations

import pytest

from pytest_llmeval import check_tool_calls


def args_schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required}


def tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    parameters = {**args_schema(properties, required), "additionalProperties": False}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER_ARGS = {
    "city": {"type": "string", "minLength": 1},
    "unit": {"enum": ["celsius", "fahrenheit"]},
}
ORDER_ARGS = {"order_id": {"type": "string", "pattern": "^[A-Z]-[0-9]{3,}$"}}
TOOLS = [
    tool("get_weather", "Current weather in a city", WEATHER_ARGS, ["city", "unit"]),
    tool("get_order_status", "Shipping status of an order", ORDER_ARGS, ["order_id"]),
]
CASES = [
    pytest.param(
        "What is the weather in Paris right now, in celsius?",
        [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}],
        id="weather-exact",
    ),
    pytest.param(
        "Where is my order B-2291?",
        [{"name": "get_order_status", "arguments": {"order_id": "B-2291"}}],
        id="order-status",
    ),
    pytest.param(
        "I fly tomorrow: what is the weather in Oslo in fahrenheit, and has order A-1042 shipped?",
        [
            {"name": "get_order_status", "schema": args_schema(ORDER_ARGS, ["order_id"])},
            {"name": "get_weather", "schema": args_schema(WEATHER_ARGS, ["city", "unit"])},
        ],
        id="two-calls-any-order",
    ),
    pytest.param("Tell me a joke about testing.", [], id="no-tool-needed"),
]


@pytest.mark.llmeval(api="chat", pass_rate=0.8, samples=10)
@pytest.mark.parametrize(("request_text", "expected"), CASES)
def test_function_calling(llm, request_text: str, expected: list[dict]) -> None:
    completion = llm.chat(request_text, tools=TOOLS, temperature=0.7)
    check_tool_calls(completion, expected)
