"""Offline test helpers: an OpenAI-compatible fake gateway with scripted replies and faults,
and a scripted LLM judge with known error rates.

Names load lazily so ``python -m pytest_llmeval.testing.gateway`` runs without a runpy warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llmeval.testing.gateway import (
        BadRequest,
        Choice,
        Cycle,
        Drop,
        Echo,
        Embedder,
        FakeGateway,
        Fault,
        Fixed,
        HTTPError,
        Malformed,
        RecordedRequest,
        Reply,
        Responder,
        Stall,
        TruncateStream,
        hashed_embedding,
    )
    from pytest_llmeval.testing.judge import ScriptedJudge

__all__ = [
    "BadRequest",
    "Choice",
    "Cycle",
    "Drop",
    "Echo",
    "Embedder",
    "FakeGateway",
    "Fault",
    "Fixed",
    "HTTPError",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ScriptedJudge",
    "Stall",
    "TruncateStream",
    "hashed_embedding",
]


def __getattr__(name: str) -> Any:
    if name == "ScriptedJudge":
        from . import judge

        return judge.ScriptedJudge
    if name in __all__:
        from . import gateway

        return getattr(gateway, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
