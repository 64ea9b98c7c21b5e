"""The budget: worst cases, reservations, settling, and the shared ledger."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_llmeval.calls.budget import RESERVE_POLL_S, Budget, Reservation, worst_case_tokens
from pytest_llmeval.calls.shared_file import alive
from pytest_llmeval.errors import BudgetExhausted

SAFETY_TIMEOUT_S = 30.0


@pytest.fixture
def budget(tmp_path: Path) -> Budget:
    return Budget.create(1.0, tmp_path / "ledger")


def reservation(result: Reservation | float) -> Reservation:
    assert isinstance(result, Reservation), f"expected a reservation, got a wait of {result}"
    return result


MESSAGES = [{"role": "user", "content": "Say PASS"}]


@pytest.mark.parametrize(
    ("params", "output"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_tokens": 50, "max_completion_tokens": 70}, 70),
        ({}, 4096),  # nothing asked: the model's output limit
        ({"max_tokens": 50, "n": 3}, 150),  # every answer is billed
        ({"max_tokens": 50, "n": 2, "best_of": 5}, 250),
    ],
)
def test_worst_case_output_is_what_the_request_allows(params: dict[str, int], output: int) -> None:
    body = {**params, "messages": MESSAGES, "model": "m"}
    assert worst_case_tokens(body, 4096) == (len(json.dumps(body)), output)


def test_worst_case_prompt_counts_every_byte_of_any_text() -> None:
    text = "naïve 日本語 text 🙂 " * 20
    body = {"messages": [{"role": "user", "content": text}], "tools": [{"name": "f" * 300}]}
    prompt, _ = worst_case_tokens(body, 1)
    assert prompt >= len(text.encode()) + 300  # more than any tokenizer's tokens: 1 per byte


def test_reservations_wait_for_each_other_and_settle_at_the_real_cost(budget: Budget) -> None:
    first = reservation(budget.try_reserve(0.4))
    second = reservation(budget.try_reserve(0.4))
    assert budget.try_reserve(0.4) == RESERVE_POLL_S  # would fit once the others settle
    assert budget.reserved() == pytest.approx(0.8)
    first.settle(0.1)
    first.settle(0.1)  # idempotent
    third = reservation(budget.try_reserve(0.4))
    second.settle()  # a failed request: nothing charged
    third.settle(0.25)
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.35), 0.0)
    with pytest.raises(BudgetExhausted, match=r"\$0.3500 spent of --llm-budget=\$1; this request "):
        budget.try_reserve(0.66)  # more than the $0.65 left, whatever settles
    reservation(budget.try_reserve(0.65)).settle(0.65)  # exactly what is left
    assert budget.spent() == pytest.approx(1.0)


def test_a_reservation_that_can_never_fit_raises_at_once(budget: Budget) -> None:
    held = reservation(budget.try_reserve(0.9))
    with pytest.raises(BudgetExhausted, match=r"could cost up to \$1.5 .* more than the \$1 left"):
        budget.reserve(1.5, sleep=lambda _: pytest.fail("waited for a request that cannot fit"))
    held.settle(0.0)


def test_reserve_sleeps_until_others_settle(budget: Budget) -> None:
    held = reservation(budget.try_reserve(0.8))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            held.settle(0.5)

    budget.reserve(0.5, sleep=sleep).settle(0.0)
    assert sleeps == [RESERVE_POLL_S] * 3 and budget.spent() == pytest.approx(0.5)


def test_async_reserve_waits_without_blocking_the_loop(budget: Budget) -> None:
    held = reservation(budget.try_reserve(0.8))

    async def main() -> None:
        waiter = asyncio.create_task(budget.areserve(0.5))
        await asyncio.sleep(3 * RESERVE_POLL_S)
        assert not waiter.done()
        held.settle(0.1)
        (await asyncio.wait_for(waiter, SAFETY_TIMEOUT_S)).settle(0.1)

    asyncio.run(main())
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.2), 0.0)


HOLDER = """
import sys
from pathlib import Path
from pytest_llmeval.calls.budget import Budget

budget = Budget(1.0, Path(sys.argv[1]))
held = budget.reserve(float(sys.argv[2]))
print("reserved", flush=True)
sys.stdin.readline()
held.settle(float(sys.argv[3]))
print("settled", flush=True)
"""


def holder(ledger: Path, usd: float, cost: float) -> subprocess.Popen[str]:
    """Another process of the run, holding a reservation until told to settle it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ledger), str(usd), str(cost)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "reserved\n"
    return proc


def test_the_ledger_is_shared_by_the_processes_of_the_run(budget: Budget) -> None:
    other = holder(budget.ledger, 0.7, 0.2)
    try:
        assert budget.reserved() == pytest.approx(0.7)
        assert budget.try_reserve(0.5) == RESERVE_POLL_S
        assert other.communicate("settle\n", timeout=SAFETY_TIMEOUT_S)[0] == "settled\n"
        assert (budget.spent(), budget.reserved()) == (pytest.approx(0.2), 0.0)
        reservation(budget.try_reserve(0.5)).settle(0.5)
        assert budget.spent() == pytest.approx(0.7)
    finally:
        other.kill()
        other.wait()


def test_reservations_of_a_process_that_died_are_charged_in_full(budget: Budget) -> None:
    other = holder(budget.ledger, 0.7, 0.2)
    assert budget.try_reserve(0.5) == RESERVE_POLL_S
    other.kill()  # its request may have been billed: the cap must still hold
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while alive(other.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(BudgetExhausted, match=r"\$0.7000 spent"):
        budget.try_reserve(0.5)
    reservation(budget.try_reserve(0.3)).settle(0.1)
    assert (budget.spent(), budget.reserved()) == (pytest.approx(0.8), 0.0)
    other.wait()
