"""Rate limits: caps, token buckets and AIMD on a fake clock, never timed."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.calls import ratelimit
from pytest_llmeval.calls.ratelimit import ModelLimiter, Permit
from pytest_llmeval.calls.shared_file import SharedFile, alive

SAFETY_TIMEOUT_S = 30.0  # only so a broken limiter fails the test instead of hanging it


@dataclass
class FakeTime:
    """A clock that only moves when something sleeps on it; every sleep is recorded."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


Make = Callable[..., ModelLimiter]


@pytest.fixture(params=["memory", "file"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """Limiters with their state in memory and in a shared file behave the same in one process."""
    names = itertools.count()

    def make(**kwargs: Any) -> ModelLimiter:
        if request.param == "file":
            kwargs["shared"] = tmp_path / f"limits-{next(names)}.json"
        return ModelLimiter(**kwargs)

    return make


def permit(result: Permit | float) -> Permit:
    assert isinstance(result, Permit), f"expected a permit, got a wait of {result}"
    return result


def hold(limiter: ModelLimiter, count: int) -> list[Permit]:
    return [permit(limiter.try_acquire()) for _ in range(count)]


def test_no_limits_is_a_fast_path_that_never_reads_the_clock(make: Make) -> None:
    def clock() -> float:
        raise AssertionError("clock read without any rate limit")

    def sleep(_: float) -> None:
        raise AssertionError("slept without any limit")

    limiter = make(clock=clock)
    permits = [limiter.acquire(tokens=10**9, sleep=sleep) for _ in range(1000)]
    assert limiter.in_flight == 1000
    assert limiter.concurrency_limit is None
    for p in permits:
        p.release(tokens=5)
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    "kwargs", [{"max_concurrency": 0}, {"rpm": 0}, {"tpm": -1.0}, {"rpm": float("nan")}]
)
def test_invalid_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ModelLimiter(**kwargs)  # type: ignore[arg-type]


def test_concurrency_cap_refuses_then_admits_after_release(make: Make) -> None:
    limiter = make(max_concurrency=2)
    first, _ = hold(limiter, 2)
    assert limiter.try_acquire() == ratelimit.CONCURRENCY_POLL_S
    first.release()
    permit(limiter.try_acquire())
    assert limiter.in_flight == 2


def test_concurrency_cap_really_blocks_a_thread_until_release(make: Make) -> None:
    limiter = make(max_concurrency=1)
    held = limiter.acquire()
    polled, proceed, done = threading.Event(), threading.Event(), threading.Event()
    got: list[Permit] = []

    def sleep(_: float) -> None:
        polled.set()
        assert proceed.wait(SAFETY_TIMEOUT_S)

    def worker() -> None:
        got.append(limiter.acquire(sleep=sleep))
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    assert polled.wait(SAFETY_TIMEOUT_S)
    assert not done.is_set()
    assert limiter.in_flight == 1
    held.release()
    proceed.set()
    thread.join(SAFETY_TIMEOUT_S)
    assert got and done.is_set()
    assert limiter.in_flight == 1


def test_rpm_allows_a_burst_then_paces(make: Make, fake: FakeTime) -> None:
    limiter = make(rpm=120, clock=fake)
    for _ in range(120):
        limiter.acquire(sleep=fake.sleep).release()
    assert fake.sleeps == []
    assert limiter.try_acquire() == pytest.approx(0.5)
    for _ in range(4):
        limiter.acquire(sleep=fake.sleep).release()
    assert fake.sleeps == pytest.approx([0.5] * 4)
    assert fake.now == pytest.approx(2.0)


def test_rpm_bucket_refills_but_never_beyond_capacity(make: Make, fake: FakeTime) -> None:
    limiter = make(rpm=60, clock=fake)
    hold(limiter, 60)
    fake.now += 10.0
    hold(limiter, 10)
    assert limiter.try_acquire() == pytest.approx(1.0)
    fake.now += 3600.0
    hold(limiter, 60)
    assert limiter.try_acquire() == pytest.approx(1.0)


def test_refusals_cost_nothing_and_the_longer_wait_wins(make: Make, fake: FakeTime) -> None:
    limiter = make(rpm=6, max_concurrency=1, clock=fake)
    held = permit(limiter.try_acquire())
    for _ in range(10):
        assert limiter.try_acquire() == ratelimit.CONCURRENCY_POLL_S
    held.release()
    for _ in range(4):
        permit(limiter.try_acquire()).release()
    held = permit(limiter.try_acquire())
    assert limiter.try_acquire() == pytest.approx(10.0)
    held.release()
    limiter.acquire(sleep=fake.sleep)
    assert fake.sleeps == pytest.approx([10.0])


def test_tpm_charges_estimates_and_corrects_them_at_release(make: Make, fake: FakeTime) -> None:
    limiter = make(tpm=600, clock=fake)
    big = permit(limiter.try_acquire(tokens=500))
    assert limiter.try_acquire(tokens=200) == pytest.approx(10.0)
    big.release(tokens=300)
    small = permit(limiter.try_acquire(tokens=200))
    assert limiter.try_acquire(tokens=200) == pytest.approx(10.0)
    small.release(tokens=500)
    assert limiter.try_acquire(tokens=1) == pytest.approx(20.1)
    limiter.acquire(tokens=1, sleep=fake.sleep)
    assert fake.sleeps == pytest.approx([20.1])


def test_tpm_release_without_actual_tokens_keeps_the_estimate(make: Make, fake: FakeTime) -> None:
    limiter = make(tpm=600, clock=fake)
    permit(limiter.try_acquire(tokens=600)).release()
    assert limiter.try_acquire(tokens=60) == pytest.approx(6.0)


def test_tpm_refund_cannot_overfill_the_bucket(make: Make, fake: FakeTime) -> None:
    limiter = make(tpm=600, clock=fake)
    early = permit(limiter.try_acquire(tokens=100))
    fake.now += 60.0
    early.release(tokens=0)
    permit(limiter.try_acquire(tokens=600))
    assert limiter.try_acquire(tokens=1) == pytest.approx(0.1)


def test_oversize_request_is_admitted_on_a_full_bucket_and_repaid(
    make: Make, fake: FakeTime
) -> None:
    limiter = make(tpm=60, clock=fake)
    permit(limiter.try_acquire(tokens=10))
    assert limiter.try_acquire(tokens=250) == pytest.approx(10.0)
    limiter.acquire(tokens=250, sleep=fake.sleep)
    assert fake.sleeps == pytest.approx([10.0])
    assert limiter.try_acquire(tokens=0) == pytest.approx(190.0)
    assert limiter.try_acquire(tokens=1) == pytest.approx(191.0)


def test_requests_without_estimate_wait_out_token_debt(make: Make, fake: FakeTime) -> None:
    limiter = make(tpm=60, clock=fake)
    permit(limiter.try_acquire()).release(tokens=90)
    assert limiter.try_acquire() == pytest.approx(30.0)
    fake.now += 30.0
    permit(limiter.try_acquire())


def test_throttle_halves_in_flight_once_per_burst(make: Make) -> None:
    limiter = make()
    permits = hold(limiter, 8)
    permits[0].release(throttled=True)
    assert limiter.concurrency_limit == 4
    for p in permits[1:4]:
        p.release(throttled=True)
    assert limiter.concurrency_limit == 4
    assert limiter.in_flight == 4
    assert isinstance(limiter.try_acquire(), float)
    for p in permits[4:]:
        p.release()
    assert limiter.concurrency_limit == 5
    fresh = hold(limiter, 3)
    fresh[0].release(throttled=True)
    assert limiter.concurrency_limit == 1
    fresh[1].release(throttled=True)
    assert limiter.concurrency_limit == 1


def test_throttle_lowers_a_configured_cap_down_to_one(make: Make) -> None:
    limiter = make(max_concurrency=4)
    permits = hold(limiter, 4)
    permits[0].release(throttled=True)
    permits[1].release(throttled=True)
    assert limiter.concurrency_limit == 2
    assert isinstance(limiter.try_acquire(), float)
    permits[2].release(throttled=True)
    fresh = permit(limiter.try_acquire())
    permits[3].release(throttled=True)
    assert limiter.concurrency_limit == 2
    fresh.release(throttled=True)
    assert limiter.concurrency_limit == 1
    assert limiter.in_flight == 0


def successes(limiter: ModelLimiter, count: int) -> None:
    for _ in range(count):
        permit(limiter.try_acquire()).release()


def test_additive_recovery_stops_at_the_configured_cap(make: Make) -> None:
    limiter = make(max_concurrency=5)
    permits = hold(limiter, 5)
    permits[0].release(throttled=True)
    for p in permits[1:]:
        p.release(throttled=True)
    assert limiter.concurrency_limit == 2
    successes(limiter, 1)
    assert limiter.concurrency_limit == 2
    successes(limiter, 1)
    assert limiter.concurrency_limit == 3
    successes(limiter, 3)
    assert limiter.concurrency_limit == 4
    successes(limiter, 4)
    assert limiter.concurrency_limit == 5
    successes(limiter, 100)
    assert limiter.concurrency_limit == 5


def test_additive_recovery_without_cap_returns_to_unlimited(make: Make) -> None:
    limiter = make()
    permits = hold(limiter, 6)
    for p in permits:
        p.release(throttled=True)
    assert limiter.concurrency_limit == 3
    successes(limiter, 3)
    assert limiter.concurrency_limit == 4
    successes(limiter, 4)
    assert limiter.concurrency_limit == 5
    successes(limiter, 5)
    assert limiter.concurrency_limit == 6
    successes(limiter, 5)
    assert limiter.concurrency_limit == 6
    successes(limiter, 1)
    assert limiter.concurrency_limit is None


def test_non_adaptive_limiter_ignores_throttling(make: Make) -> None:
    limiter = make(max_concurrency=4, adaptive=False)
    for p in hold(limiter, 4):
        p.release(throttled=True)
    assert limiter.concurrency_limit == 4
    unlimited = make(adaptive=False)
    for p in hold(unlimited, 4):
        p.release(throttled=True)
    assert unlimited.concurrency_limit is None


def test_release_is_idempotent(make: Make, fake: FakeTime) -> None:
    limiter = make(tpm=600, clock=fake)
    first = permit(limiter.try_acquire(tokens=100))
    second = permit(limiter.try_acquire(tokens=100))
    first.release(tokens=400)
    first.release(tokens=400)
    first.release(throttled=True)
    assert limiter.in_flight == 1
    assert limiter.concurrency_limit is None
    assert limiter.try_acquire(tokens=200) == pytest.approx(10.0)
    second.release()


@pytest.fixture
def fake_async_sleep(fake: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio.sleep that advances the fake clock but still yields to the event loop."""
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)


@pytest.mark.usefixtures("fake_async_sleep")
def test_async_twin_paces_in_short_polls(make: Make, fake: FakeTime) -> None:
    limiter = make(rpm=60, clock=fake)
    hold(limiter, 60)

    async def main() -> Permit:
        return await limiter.aacquire()

    asyncio.run(main())
    assert fake.sleeps
    assert all(0.0 < s <= ratelimit.ASYNC_POLL_MAX_S for s in fake.sleeps)
    assert sum(fake.sleeps) == pytest.approx(1.0)
    assert limiter.in_flight == 61


@pytest.mark.usefixtures("fake_async_sleep")
def test_async_waiter_does_not_block_the_loop_and_shares_state_with_sync(
    make: Make, fake: FakeTime
) -> None:
    limiter = make(max_concurrency=1, clock=fake)

    async def main() -> None:
        held = limiter.acquire()
        waiter = asyncio.create_task(limiter.aacquire())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()
        held.release()
        got = await waiter
        assert limiter.in_flight == 1
        got.release()

    asyncio.run(main())
    assert ratelimit.CONCURRENCY_POLL_S in fake.sleeps
    assert limiter.in_flight == 0


def test_threads_never_exceed_the_cap_even_while_adapting(make: Make) -> None:
    cap, threads, rounds = 3, 12, 60
    limiter = make(max_concurrency=cap)
    lock = threading.Lock()
    current = peak = 0
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        nonlocal current, peak
        try:
            start.wait(SAFETY_TIMEOUT_S)
            for round_ in range(rounds):
                p = limiter.acquire(sleep=lambda _: time.sleep(0))
                with lock:
                    current += 1
                    peak = max(peak, current)
                limit = limiter.concurrency_limit
                assert limit is not None and 1 <= limit <= cap
                with lock:
                    current -= 1
                p.release(throttled=(index + round_) % 17 == 0)
                p.release()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(SAFETY_TIMEOUT_S)
    assert not errors
    assert 1 <= peak <= cap
    assert limiter.in_flight == 0


@given(steps=st.lists(st.tuples(st.floats(0.0, 5.0), st.integers(0, 20)), max_size=40))
def test_rpm_never_admits_more_than_burst_plus_refill(steps: list[tuple[float, int]]) -> None:
    clock = FakeTime()
    limiter = ModelLimiter(rpm=30, clock=clock)
    admitted = 0
    for advance, attempts in steps:
        clock.now += advance
        admitted += sum(isinstance(limiter.try_acquire(), Permit) for _ in range(attempts))
        assert admitted <= 30 + clock.now * 30 / 60 + 1e-6


# Across processes: every process of a run on one machine shares the state file.

PEER = """
import json, sys
from pathlib import Path
from pytest_llmeval.calls.ratelimit import ModelLimiter, Permit

limiter = ModelLimiter(shared=Path(sys.argv[1]), **json.loads(sys.argv[2]))
held = []
for line in sys.stdin:
    command = line.split()
    if command[0] == "acquire":
        result = limiter.try_acquire()
        if isinstance(result, Permit):
            held.append(result)
        print("permit" if isinstance(result, Permit) else f"wait {result}", flush=True)
    elif command[0] == "release":
        held.pop().release(throttled=command[1:] == ["throttled"])
        print("released", flush=True)
"""


class Peer:
    """Another process using the same limiter file, driven one command at a time."""

    def __init__(self, path: Path, **limits: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEER, str(path), json.dumps(limits)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def peers() -> Iterator[Callable[..., Peer]]:
    started: list[Peer] = []

    def start(path: Path, **limits: Any) -> Peer:
        started.append(Peer(path, **limits))
        return started[-1]

    yield start
    for peer in started:
        peer.close()


HOLDER = """
import sys, time
from pathlib import Path
from pytest_llmeval.calls.ratelimit import ModelLimiter

limiter = ModelLimiter(shared=Path(sys.argv[1]), max_concurrency=2)
for _ in range(30):
    permit = limiter.acquire()
    start = time.monotonic()
    time.sleep(0.01)
    print(start, time.monotonic(), flush=True)
    permit.release()
"""


def test_processes_sharing_the_file_never_exceed_the_cap_together(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    events: list[tuple[float, int]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=SAFETY_TIMEOUT_S)
        for line in out.decode().splitlines():
            start, end = map(float, line.split())
            events += [(start, 1), (end, -1)]
    assert len(events) == 2 * 3 * 30
    current = peak = 0
    for _, step in sorted(events):  # at equal times an end (-1) sorts before a start
        current += step
        peak = max(peak, current)
    assert peak == 2  # the cap holds for the three processes together, and is reached
    assert ModelLimiter(shared=path, max_concurrency=2).in_flight == 0


def test_a_429_in_one_process_halves_the_limit_of_all(
    tmp_path: Path, peers: Callable[..., Peer]
) -> None:
    path = tmp_path / "limits.json"
    here = ModelLimiter(shared=path, max_concurrency=4)
    mine = hold(here, 2)
    other = peers(path, max_concurrency=4)
    assert [other.ask("acquire"), other.ask("acquire")] == ["permit", "permit"]
    assert isinstance(here.try_acquire(), float)  # 4 of 4 in flight, 2 of them elsewhere
    assert other.ask("release throttled") == "released"
    assert here.concurrency_limit == 2  # in flight // 2, cut by the other process
    mine[0].release(throttled=True)  # a 429 from before the cut does not cut again
    assert here.concurrency_limit == 2 and here.in_flight == 2
    assert other.ask("acquire").startswith("wait")
    mine[1].release()
    assert other.ask("acquire") == "permit"


def test_slots_of_a_process_that_died_are_freed(tmp_path: Path, peers: Callable[..., Peer]) -> None:
    path = tmp_path / "limits.json"
    other = peers(path, max_concurrency=2)
    assert [other.ask("acquire"), other.ask("acquire")] == ["permit", "permit"]
    here = ModelLimiter(shared=path, max_concurrency=2)
    assert isinstance(here.try_acquire(), float)
    other.proc.kill()  # killed holding both slots; not reaped yet: a zombie
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while alive(other.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    hold(here, 2)
    assert here.in_flight == 2


def test_the_request_bucket_is_one_for_all_processes(
    tmp_path: Path, peers: Callable[..., Peer]
) -> None:
    path = tmp_path / "limits.json"
    other = peers(path, rpm=10)
    assert [other.ask("acquire") for _ in range(6)] == ["permit"] * 6
    here = ModelLimiter(shared=path, rpm=10)
    hold(here, 4)
    wait = here.try_acquire()
    assert isinstance(wait, float) and 5.0 < wait <= 6.0  # one request per 6 s from now on
    assert other.ask("acquire").startswith("wait")


def test_a_shorter_document_never_leaves_a_broken_file(tmp_path: Path) -> None:
    file = SharedFile(tmp_path / "doc.json")
    with file.update() as box:
        assert box.data is None
        box.data = {"holders": {str(pid): 1 for pid in range(100)}}
    with file.update() as box:
        box.data = {"holders": {}}
    with file.update() as box:
        assert box.data == {"holders": {}}
    assert json.loads((tmp_path / "doc.json").read_text()) == {"holders": {}}


def test_alive_tells_running_from_exited_processes() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert alive(proc.pid)
    finally:
        proc.kill()
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while alive(proc.pid) and time.monotonic() < deadline:  # a zombie counts as dead
        time.sleep(0.01)
    assert not alive(proc.pid)
    proc.wait()
    assert not alive(proc.pid)
