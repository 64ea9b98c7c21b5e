"""pytest-llmeval: LLM output regression testing as ordinary pytest tests."""

from .checks import (
    check_choice,
    check_json,
    check_number,
    check_tool_calls,
    extract_choice,
    extract_number,
)
from .code import extract_code, pass_at_k
from .sandbox import Limits, Sandbox, SandboxError, SandboxResult

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "check_choice",
    "check_json",
    "check_number",
    "check_tool_calls",
    "extract_choice",
    "extract_code",
    "extract_number",
    "pass_at_k",
]
