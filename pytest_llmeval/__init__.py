"""pytest-llmeval: LLM output regression testing as ordinary pytest tests."""

from .checks import (
    check_choice,
    check_json,
    check_number,
    check_tool_calls,
    extract_choice,
    extract_number,
)

__all__ = [
    "check_choice",
    "check_json",
    "check_number",
    "check_tool_calls",
    "extract_choice",
    "extract_number",
]
