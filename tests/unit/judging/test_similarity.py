"""`similar`: cosine of two embeddings through the real client and the fake gateway."""

from __future__ import annotations

import math

import pytest

from pytest_llmeval.calls.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.errors import LLMUsageError
from pytest_llmeval.judging.similarity import Similarity, cosine
from pytest_llmeval.testing import FakeGateway
from pytest_llmeval.verdict.records import SampleTrace, tracing


def similar_of(gateway: FakeGateway) -> Similarity:
    model = ModelSettings(name="e", model_id="emb", input_cost_per_mtok=0.02)
    pool = ClientPool(Settings(retries=0, timeout=5.0), {})
    return Similarity(LLM(model, pool, gateway.base_url, role="embedding"))


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [2.0, 0.0]) == 1.0
    assert cosine([1.0, 0.0], [0.0, 3.0]) == 0.0
    assert math.isclose(cosine([1.0, 1.0], [-1.0, -1.0]), -1.0)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert math.isclose(cosine([1.0, 2.0], [2.0, 1.0]), 0.8)
    with pytest.raises(ValueError, match="different lengths"):
        cosine([1.0], [1.0, 2.0])


def test_one_call_embeds_both_texts_and_is_recorded(gateway: FakeGateway) -> None:
    gateway.add_embedding_model("emb")
    similar = similar_of(gateway)
    trace = SampleTrace(0)
    with tracing(trace):
        same = similar("Refunds take 14 days.", "refunds take 14 days")
        other = similar("Refunds take 14 days.", "The warehouse is in Berlin.")
    assert same > 0.99 and other < 0.5
    assert gateway.request_count("emb") == 2
    assert [c.role for c in trace.calls] == ["embedding", "embedding"]
    assert all(c.endpoint == "embedding" and c.cost_usd for c in trace.calls)


def test_a_blank_text_is_similar_to_nothing_without_a_request(gateway: FakeGateway) -> None:
    gateway.add_embedding_model("emb")
    similar = similar_of(gateway)
    assert similar("", "Refunds take 14 days.") == 0.0
    assert similar("Refunds take 14 days.", "  \n") == 0.0
    assert gateway.request_count() == 0
    with pytest.raises(LLMUsageError):
        similar(None, "text")  # type: ignore[arg-type]
