"""The gateway client directly (no pytest plugin): permits, budget reservations and records."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import openai
import pytest

from pytest_llmeval.calls.budget import Budget
from pytest_llmeval.calls.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.errors import BudgetExhausted, LLMUsageError
from pytest_llmeval.testing import FakeGateway, HTTPError
from pytest_llmeval.verdict.records import SampleTrace, tracing

PRICED = ModelSettings(
    name="m",
    model_id="m",
    max_concurrency=1,
    input_cost_per_mtok=1000.0,
    output_cost_per_mtok=1000.0,
)


def client(
    gateway: FakeGateway, budget: Budget | None = None, model: ModelSettings = PRICED
) -> LLM:
    return LLM(model, ClientPool(Settings(retries=0, timeout=5.0), {}, budget), gateway.base_url)


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


def worst_usd(content: str = "x", max_tokens: int = 10) -> float:
    """The worst case the client reserves for `llm.chat(content, max_tokens=...)` of model m:
    a token per character of the request's JSON plus max_tokens, at $1000 per 1M tokens."""
    body = {"max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]}
    return (len(json.dumps({**body, "model": "m"})) + max_tokens) * 1000.0 / 1e6


def run_threads(call: Callable[[], None], count: int) -> None:
    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)


def test_a_request_whose_worst_case_does_not_fit_is_never_sent(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS")
    budget = Budget.create(worst_usd() - 1e-6, tmp_path / "ledger")
    llm = client(gateway, budget)
    trace = SampleTrace()
    with tracing(trace), pytest.raises(BudgetExhausted, match="could cost up to"):
        llm.chat("x", max_tokens=10)
    (call,) = trace.calls
    assert (call.latency_s, call.cause, gateway.request_count()) == (0.0, "budget", 0)
    assert (budget.spent(), budget.reserved()) == (0.0, 0.0)
    budget = Budget.create(worst_usd(), tmp_path / "ledger")  # exactly the worst case fits
    assert client(gateway, budget).chat("x", max_tokens=10).text == "PASS"


def test_samples_queued_behind_a_limit_see_the_spent_budget(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.05)  # 1 + 1 tokens: $0.002 a call
    budget = Budget.create(worst_usd() + 0.0035, tmp_path / "ledger")
    llm = client(gateway, budget)
    outcomes: list[str] = []

    def call() -> None:
        try:
            llm.chat("x", max_tokens=10)
            outcomes.append("sent")
        except BudgetExhausted:
            outcomes.append("refused")

    run_threads(call, 6)
    assert gateway.request_count() == 2 and sorted(outcomes) == ["refused"] * 4 + ["sent"] * 2
    assert budget.spent() == pytest.approx(0.004) and budget.reserved() == 0.0


def test_requests_wait_while_reservations_in_flight_fill_the_budget(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.2)
    budget = Budget.create(2.5 * worst_usd(), tmp_path / "ledger")  # room for 2 worst cases
    llm = client(gateway, budget, replace(PRICED, max_concurrency=None))
    costs: list[float | None] = []
    run_threads(lambda: costs.append(llm.chat("x", max_tokens=10).cost_usd), 8)
    assert len(costs) == 8 and gateway.peak_in_flight == 2
    assert budget.spent() == pytest.approx(sum(c or 0.0 for c in costs)) == pytest.approx(0.016)
    assert budget.reserved() == 0.0


def test_a_failed_attempt_frees_its_reservation_and_a_retry_reserves_again(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS")
    budget = Budget.create(1.5 * worst_usd(), tmp_path / "ledger")  # one worst case at a time
    retrying = LLM(PRICED, ClientPool(Settings(retries=2), {}, budget), gateway.base_url)
    gateway.inject(HTTPError(500), times=2)
    assert retrying.chat("x", max_tokens=10).attempts == 3
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.002), 0.0)
    gateway.inject(HTTPError(500))
    with pytest.raises(openai.InternalServerError):
        client(gateway, budget).chat("x", max_tokens=10)
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.002), 0.0)


def test_a_stream_settles_at_its_end_and_one_left_early_frees_its_reservation(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "one two three")
    budget = Budget.create(1.0, tmp_path / "ledger")
    llm = client(gateway, budget)
    stream = llm.stream("count", max_tokens=10)
    for _ in stream:
        assert budget.reserved() > 0.0 and budget.spent() == 0.0  # held while it streams
    assert stream.completion is not None and stream.completion.cost_usd == pytest.approx(0.004)
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.004), 0.0)
    for _ in llm.stream("count", max_tokens=10):
        break
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.004), 0.0)


def test_async_calls_wait_for_reservations_without_blocking_the_loop(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.1)
    budget = Budget.create(1.5 * worst_usd(), tmp_path / "ledger")
    llm = client(gateway, budget, replace(PRICED, max_concurrency=None))

    async def four() -> list[str]:
        calls = [llm.achat("x", max_tokens=10) for _ in range(4)]
        return [c.text for c in await asyncio.wait_for(asyncio.gather(*calls), 10)]

    assert asyncio.run(four()) == ["PASS"] * 4
    assert gateway.peak_in_flight == 1 and budget.spent() == pytest.approx(0.008)


def test_models_without_prices_need_no_reservation(gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.add_model("free", "PASS")
    budget = Budget.create(1e-9, tmp_path / "ledger")
    llm = client(gateway, budget, ModelSettings(name="free", model_id="free"))
    assert llm.chat("x").cost_usd is None
    assert (budget.spent(), budget.reserved(), gateway.request_count()) == (0.0, 0.0, 1)


def test_an_embedding_model_refuses_chat_completions_and_streams(gateway: FakeGateway) -> None:
    llm = client(gateway, model=ModelSettings(name="e", model_id="e", api="embedding"))
    for call in (lambda: llm.chat("hi"), lambda: llm.complete("hi"), lambda: llm.stream("hi")):
        with pytest.raises(LLMUsageError, match="api='embedding': it only serves embeddings"):
            call()
    assert gateway.request_count() == 0


@pytest.mark.parametrize("transcripts", [True, False])
def test_calls_keep_their_exchange_unless_no_transcript_is_kept(
    gateway: FakeGateway, transcripts: bool
) -> None:
    gateway.add_model("m", "PASS")
    pool = ClientPool(Settings(retries=0, timeout=5.0), {}, transcripts=transcripts)
    trace = SampleTrace()
    with tracing(trace):
        LLM(PRICED, pool, gateway.base_url).chat("hello")
    (call,) = trace.calls
    if transcripts:
        assert call.exchange is not None and call.exchange["answer"] == "PASS"
    else:
        assert call.exchange is None and not call.cut
