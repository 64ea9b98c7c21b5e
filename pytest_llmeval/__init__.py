"""pytest-llmeval: LLM output regression testing as ordinary pytest tests."""

from pytest_llmeval.checks import (
    check_choice,
    check_json,
    check_number,
    check_tool_calls,
    extract_choice,
    extract_number,
)
from pytest_llmeval.errors import SandboxError
from pytest_llmeval.sandbox.code import extract_code
from pytest_llmeval.sandbox.host import Limits, Sandbox, SandboxResult
from pytest_llmeval.verdict.stats import pass_at_k

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
