"""The gateway client directly (no pytest plugin): permits, budget and records under stress."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from pytest_llmeval.budget import Budget, BudgetExhausted
from pytest_llmeval.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.records import SampleTrace, tracing
from pytest_llmeval.testing import FakeGateway

PRICED = ModelSettings(
    name="m",
    model_id="m",
    max_concurrency=1,
    input_cost_per_mtok=1000.0,
    output_cost_per_mtok=1000.0,
)


def client(gateway: FakeGateway, budget: Budget | None = None) -> LLM:
    return LLM(PRICED, ClientPool(Settings(retries=0, timeout=5.0), {}, budget), gateway.base_url)


def finishes(target: object, seconds: float = 10.0) -> bool:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_a_stream_left_early_frees_its_slot(gateway: FakeGateway) -> None:
    gateway.add_model("m", "one two three")
    llm = client(gateway)
    for _ in llm.stream("count"):
        break
    assert finishes(lambda: llm.chat("again"))  # max_concurrency=1: a leaked permit would block


def test_an_async_stream_left_early_frees_its_slot(gateway: FakeGateway) -> None:
    gateway.add_model("m", "one two three")
    llm = client(gateway)

    async def leave_early_then_ask() -> str:
        async for _ in llm.astream("count"):
            break
        return (await asyncio.wait_for(llm.achat("again"), 10)).text

    assert asyncio.run(leave_early_then_ask()) == "one two three"


def test_samples_queued_behind_a_limit_see_the_spent_budget(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.05)
    llm = client(gateway, Budget.create(1e-9, tmp_path / "spent"))
    outcomes: list[str] = []

    def call() -> None:
        try:
            llm.chat("x")
            outcomes.append("sent")
        except BudgetExhausted:
            outcomes.append("refused")

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert gateway.request_count() == 1 and sorted(outcomes) == ["refused"] * 5 + ["sent"]


def test_a_refused_call_records_no_latency(gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.add_model("m", "PASS")
    llm = client(gateway, Budget.create(0.0, tmp_path / "spent"))
    trace = SampleTrace()
    with tracing(trace), pytest.raises(BudgetExhausted):
        llm.chat("x")
    (call,) = trace.calls
    assert (call.latency_s, call.cause, gateway.request_count()) == (0.0, "budget", 0)
