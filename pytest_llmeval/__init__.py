"""pytest-llmeval: LLM output regression testing as ordinary pytest tests."""

from .code import extract_code, pass_at_k
from .sandbox import Limits, Sandbox, SandboxError, SandboxResult

__all__ = ["Limits", "Sandbox", "SandboxError", "SandboxResult", "extract_code", "pass_at_k"]
