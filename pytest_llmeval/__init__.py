"""pytest-llmeval: LLM output regression testing as ordinary pytest tests.

The helpers load on first use, so that loading the plugin in a run without LLM tests imports
neither jsonschema nor the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "check_choice": "checks",
    "check_json": "checks",
    "check_number": "checks",
    "check_tool_calls": "checks",
    "extract_choice": "checks",
    "extract_number": "checks",
    "SandboxError": "errors",
    "extract_code": "sandbox.code",
    "Limits": "sandbox.host",
    "Sandbox": "sandbox.host",
    "SandboxResult": "sandbox.host",
    "pass_at_k": "verdict.stats",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
