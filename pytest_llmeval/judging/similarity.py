"""Semantic similarity: the cosine of two texts' embeddings from the run's embedding model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_llmeval.errors import LLMUsageError

if TYPE_CHECKING:
    from pytest_llmeval.calls.client import LLM


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of the angle between two vectors; 0.0 when either is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths: {len(a)} and {len(b)}")
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norm == 0.0:
        return 0.0
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(a, b, strict=True)) / norm))


class Similarity:
    """`similar(a, b)`: one `/v1/embeddings` call for both texts (cached, costed, recorded
    under the embedding role), and their cosine similarity."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    def __repr__(self) -> str:
        return f"Similarity({self.llm.model.name!r})"

    def __call__(self, a: str, b: str) -> float:
        if _blank(a, b):
            return 0.0
        first, second = self.llm.embed([a, b]).vectors
        return cosine(first, second)

    async def asimilar(self, a: str, b: str) -> float:
        """Async twin of calling it."""
        if _blank(a, b):
            return 0.0
        first, second = (await self.llm.aembed([a, b])).vectors
        return cosine(first, second)


def _blank(a: str, b: str) -> bool:
    """An empty answer is like nothing (similarity 0), not a request the endpoint refuses
    (an error sample, left out of the verdict)."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise LLMUsageError("similar(a, b) compares two strings")
    return not a.strip() or not b.strip()
