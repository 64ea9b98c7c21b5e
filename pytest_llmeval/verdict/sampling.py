"""Run a test body up to N times concurrently, stopping once the verdict cannot change
(and, with a baseline gate, once the gate's verdict cannot change either).

Ordered sampling (used with the response cache) judges only the completed prefix of samples
and starts sample i only if the verdict on samples 0..i-width was still open, so which samples
run depends on their outcomes alone, not on timing: a cached rerun asks for exactly the samples
the first run cached."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, cast

from pytest_llmeval.errors import BodyError
from pytest_llmeval.report.schema import Decision, GateStop, JudgedVerdict
from pytest_llmeval.verdict.futility import Gate
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.records import SampleRecord, SampleTrace, tracing
from pytest_llmeval.verdict.sequential import completion
from pytest_llmeval.verdict.stats import (
    Mode,
    Verdict,
    clopper_pearson,
    final_verdict,
    min_valid_samples,
    settled,
    thresholds,
)
from pytest_llmeval.verdict.window import Stopped, Window

STOP_COMPLETED = "completed"
STOP_SETTLED = "settled"
STOP_ERRORS = "errors"
STOP_INTERRUPTED = "interrupted"

# Called with the samples that finished and the exception when sampling is cut short (Ctrl-C,
# a plugin's timeout, a skip); the exception propagates afterwards.
OnAbort = Callable[["Sampled", BaseException], None]


@dataclass(frozen=True)
class Classifier:
    """Sorts what a sample raised: failure (the model's), error (infrastructure) or control flow.

    An AssertionError is always the test judging the answer: a failure. Errors of the call are
    errors. Anything else is an error when `origin` names the machinery that raised it (pytest,
    a plugin, the event loop), else a failure: the test's own code rejected the answer.
    """

    call_errors: tuple[type[BaseException], ...]
    failures: tuple[type[BaseException], ...] = ()
    controls: tuple[type[BaseException], ...] = ()
    redact: Callable[[str], str] = str
    cause: Callable[[BaseException], str] = lambda exc: type(exc).__name__.lower()
    origin: Callable[[BaseException], str | None] = lambda exc: None

    def outcome(self, exc: BaseException) -> str | None:
        """'failed', 'error', or None for exceptions that must propagate (skip, xfail, Ctrl-C,
        a timeout another plugin raised)."""
        if isinstance(exc, (BodyError, *self.controls)):
            return None
        if isinstance(exc, AssertionError):
            return "failed"
        if isinstance(exc, self.call_errors):
            return "error"
        if not isinstance(exc, (Exception, *self.failures)):
            return None
        if self.harness(exc) is not None:
            return "error" if isinstance(exc, Exception) else None
        return "failed"

    def harness(self, exc: BaseException) -> str | None:
        """Who raised `exc` when it is neither the test's judgement nor an error of the call."""
        if isinstance(exc, (AssertionError, *self.call_errors)):
            return None
        return self.origin(exc)


@dataclass
class Sampled:
    """Everything a run of samples produced, before it is turned into a report record."""

    plan: Plan
    records: list[SampleRecord]
    verdict: Verdict
    stop_reason: str
    wall_s: float
    first_failure: BaseException | None = None
    first_error: BaseException | None = None
    judged: JudgedVerdict | None = None  # a judged test's verdict on the true rate, if corrected
    decision: Decision | None = None  # how a sequential design stopped
    gate_stop: GateStop | None = None  # the baseline gate stopped sampling for futility

    @property
    def passes(self) -> int:
        return sum(r.outcome == "passed" for r in self.records)

    @property
    def failures(self) -> int:
        return sum(r.outcome == "failed" for r in self.records)

    @property
    def errors(self) -> int:
        return sum(r.outcome == "error" for r in self.records)

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.passes, self.passes + self.failures, self.plan.confidence)


@dataclass
class _Tally:
    """Bookkeeping shared by the thread and asyncio engines."""

    plan: Plan
    classifier: Classifier
    gate: Gate | None = None
    ordered: bool = False
    on_abort: OnAbort | None = None
    records: list[SampleRecord] = field(default_factory=list)
    counted: int = 0
    open_prefix: int = 0
    passes: int = 0
    valid: int = 0
    verdict: Verdict | None = None
    done: bool = False
    control: BaseException | None = None
    raised: dict[int, BaseException] = field(default_factory=dict)
    waiting: dict[int, SampleRecord] = field(default_factory=dict)
    decided_at: int | None = None  # samples judged (in launch order) when the design decided
    done_at: int | None = None  # samples judged when sampling could stop (gate settled too)
    futile: tuple[int, int] | None = None  # (passes, valid) when the gate stopped for futility

    def __post_init__(self) -> None:
        p = self.plan
        mode = "observed" if p.suite else p.mode  # a suite's case observes; the suite judges
        self.table = thresholds(p.samples, p.pass_rate, p.confidence, cast(Mode, mode))
        self.design = p.stopping() if p.sequential else None
        # Which samples run must not depend on timing when a cache replays them (ordered); a
        # sequential verdict depends on the order of outcomes, so it judges them in launch order
        # too, so that a sample's own latency (a quick error, a short answer) cannot bias it.
        self.replayable = self.ordered
        self.ordered = self.ordered or self.design is not None

    def may_launch(self, launched: int, width: int) -> bool:
        """Start sample `launched` now? Replayable: sample i runs iff i < width or the verdict
        was still open on the prefix of i - width + 1 samples; else while it is open."""
        if self.control is not None or launched >= self.plan.samples:
            return False
        return launched < self.open_prefix + width if self.replayable else not self.done

    def run(self, index: int, body: Callable[[], object]) -> SampleRecord | BaseException:
        trace = SampleTrace(index)
        start = time.perf_counter()
        with tracing(trace):
            try:
                returned = body()
                if inspect.isawaitable(returned):
                    if inspect.iscoroutine(returned):
                        returned.close()
                    raise BodyError(
                        "the test body returned an awaitable: a decorator hides that the test is "
                        "async; wrap it with an `async def` wrapper (functools.wraps)"
                    )
            except BaseException as exc:
                return self._failed(index, trace, time.perf_counter() - start, exc)
        return self._passed(index, trace, time.perf_counter() - start)

    async def arun(
        self, index: int, body: Callable[[], Awaitable[object]]
    ) -> SampleRecord | BaseException:
        trace = SampleTrace(index)
        start = time.perf_counter()
        with tracing(trace):
            try:
                await body()
            except BaseException as exc:
                return self._failed(index, trace, time.perf_counter() - start, exc)
        return self._passed(index, trace, time.perf_counter() - start)

    def _passed(self, index: int, trace: SampleTrace, duration: float) -> SampleRecord:
        return SampleRecord(
            index, "passed", duration, tuple(trace.calls),
            sandbox=tuple(trace.sandbox), turns=tuple(trace.turns),
            judgements=tuple(trace.judgements),
        )  # fmt: skip

    def _failed(
        self, index: int, trace: SampleTrace, duration: float, exc: BaseException
    ) -> SampleRecord | BaseException:
        outcome = self.classifier.outcome(exc)
        if outcome is None:
            return exc
        self.raised[index] = exc
        message = self.classifier.redact(
            str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        )
        origin = self.classifier.harness(exc)
        cause = None
        if outcome == "error":
            cause = "harness" if origin is not None else self.classifier.cause(exc)
        if origin is not None:
            message = f"{message} (raised by {origin}, not by the test's checks)"
        return SampleRecord(
            index, outcome, duration, tuple(trace.calls), type(exc).__name__, message[:500], cause,
            sandbox=tuple(trace.sandbox), turns=tuple(trace.turns),
            judgements=tuple(trace.judgements),
        )  # fmt: skip

    def add(self, result: SampleRecord | BaseException) -> None:
        if isinstance(result, BaseException):
            self.control = self.control or result
            return
        self.records.append(result)
        if not self.ordered:
            self._count(result)
            return
        self.waiting[result.index] = result  # judge prefixes, whatever order samples end in
        while self.counted in self.waiting:
            self._count(self.waiting.pop(self.counted))
            if not self.done:
                self.open_prefix = self.counted

    def _count(self, record: SampleRecord) -> None:
        self.counted += 1
        if record.outcome != "error":
            self.valid += 1
            self.passes += record.outcome == "passed"
        remaining = self.plan.samples - self.counted
        if (self.plan.suite or self.plan.judged) and remaining:
            return  # every sample runs: a suite's statistics, a judged correction need them all
        if self.design is None:
            self.verdict = settled(
                self.passes, self.valid, remaining, self.plan.samples, self.table
            )
        elif self.verdict is None:  # the design's first verdict is final
            self.verdict = self._sequential(remaining)
            if self.verdict is not None:
                self.decided_at = self.counted
        gated = None
        if self.verdict not in (None, "error") and self.gate is not None:
            gated = self.gate(self.passes, self.valid, remaining)
        self.done = self.verdict is not None and (
            self.verdict == "error" or self.gate is None or gated is not None
        )
        if self.done and self.done_at is None:
            self.done_at = self.counted
            if gated == "futile":
                self.futile = (self.passes, self.valid)

    def _sequential(self, remaining: int) -> Verdict | None:
        """The design's verdict on the valid samples judged so far, in launch order; at the end
        of a run that errors left short of the design's last look, the verdict every
        completion would give, else the one that keeps the false-verdict bound (pass for
        not_worse, fail for proven)."""
        assert self.design is not None
        k, passes, n = self.valid, self.passes, self.plan.samples
        if k + remaining < min_valid_samples(n):
            return "error"
        if k and passes <= self.design.fail_at[k - 1]:
            return "failed"
        if k and passes >= self.design.pass_at[k - 1]:
            return "passed"
        if remaining:
            return None
        best = completion(self.design, k, passes, "passed")
        if self.plan.mode == "not_worse":
            return "failed" if best == "failed" else "passed"
        return "passed" if completion(self.design, k, passes, "failed") == "passed" else "failed"

    def abort(self, exc: BaseException, wall_s: float) -> None:
        """Hand the samples that finished before `exc` cut sampling short to `on_abort`."""
        if self.on_abort is not None:
            self.records.sort(key=lambda r: r.index)
            self.on_abort(Sampled(self.plan, self.records, "error", STOP_INTERRUPTED, wall_s), exc)

    def result(self, wall_s: float) -> Sampled:
        if self.control is not None:
            self.abort(self.control, wall_s)
            raise self.control
        self.records.sort(key=lambda r: r.index)
        n = self.plan.samples
        verdict = self.verdict or final_verdict(self.passes, self.valid, n, self.table)
        if verdict == "error":
            reason = STOP_ERRORS
        elif len(self.records) < n:
            reason = STOP_SETTLED
        else:
            reason = STOP_COMPLETED
        first: dict[str, BaseException | None] = {}
        for record in self.records:
            first.setdefault(record.outcome, self.raised.get(record.index))
        sampled = Sampled(
            self.plan,
            self.records,
            verdict,
            reason,
            wall_s,
            first.get("failed"),
            first.get("error"),
        )
        if self.design is not None:
            sampled.decision = self._decision()
        if self.futile is not None and self.gate is not None:
            passes, valid = self.futile
            sampled.gate_stop = {
                "at": self.done_at or 0,
                "passed": passes,
                "valid": valid,
                "baseline": [self.gate.base_passes, self.gate.base_valid],
                "why": self.gate.why(passes, valid),
            }
        return sampled

    def _decision(self) -> Decision:
        """How the sequential design stopped: where, on what bound, and what ran past it."""
        assert self.design is not None
        ran = len(self.records)
        at = self.decided_at if self.decided_at is not None else ran
        judged = sorted(self.records, key=lambda r: r.index)[:at]
        valid = [r for r in judged if r.outcome != "error"]
        passes = sum(r.outcome == "passed" for r in valid)
        k = len(valid)
        crossed = k > 0 and (
            passes <= self.design.fail_at[k - 1] or passes >= self.design.pass_at[k - 1]
        )
        if self.verdict == "error":
            why = f"too few valid samples ({k} of {at})"
        elif not crossed:
            why = (
                f"samples spent, {k} valid, no bound crossed: {self.verdict} (what every "
                "completion gives, else the side the guarantee allows)"
            )
        elif self.verdict == "failed":
            why = f"{passes} passes in {k} valid <= fail bound {self.design.fail_at[k - 1]}"
        else:
            why = f"{passes} passes in {k} valid >= pass bound {self.design.pass_at[k - 1]}"
        stop = self.done_at if self.done_at is not None else ran
        return {"at": at, "overshoot": max(0, ran - stop), "why": why}


def run_sync(
    plan: Plan,
    body: Callable[[], object],
    concurrency: int,
    classifier: Classifier,
    gate: Gate | None = None,
    ordered: bool = False,
    on_abort: OnAbort | None = None,
    window: Window | None = None,
    stop: Future[None] | None = None,
    inline: bool = False,
) -> Sampled:
    """Sample a synchronous body on threads, each sample in its own context copy; every sample
    holds a slot of the shared `window`. Setting `stop` calls the run off (Stopped). `inline`
    runs a last sample that has nothing to wait for in this thread (a thread of its own saves
    nothing when this one would only wait for it)."""
    start = time.perf_counter()
    tally = _Tally(plan, classifier, gate, ordered, on_abort)
    width = plan.width(concurrency)
    launched = 0
    pending: set[Future[SampleRecord | BaseException]] = set()
    if stop is not None and window is not None:
        stop.add_done_callback(lambda _: window.wake_all())
    try:
        while True:
            freed: Future[None] | None = None
            while tally.may_launch(launched, width) and len(pending) < width:
                if window is not None and not window.try_acquire():
                    if pending:  # judge our own samples, or take a slot freed meanwhile
                        freed = window.freed()
                        break
                    window.acquire(stop)
                release = None if window is None else window.release
                if inline and not pending and launched == plan.samples - 1:
                    try:
                        result = contextvars.copy_context().run(tally.run, launched, body)
                    finally:
                        if release is not None:
                            release()
                    launched += 1
                    tally.add(result)
                    continue
                pending.add(_in_thread(tally.run, launched, body, release))
                launched += 1
            if not pending:
                break
            waited: set[Future[Any]] = {*pending, *(f for f in (stop, freed) if f is not None)}
            done, _ = wait(waited, return_when=FIRST_COMPLETED)
            if stop is not None and stop.done():
                raise Stopped
            finished = pending & done
            pending -= finished
            for future in finished:
                tally.add(future.result())
    except BaseException as exc:  # Ctrl-C or a plugin's timeout, in this thread
        tally.abort(exc, time.perf_counter() - start)
        raise
    return tally.result(time.perf_counter() - start)


def _in_thread(
    run: Callable[[int, Callable[[], object]], SampleRecord | BaseException],
    index: int,
    body: Callable[[], object],
    release: Callable[[], None] | None = None,
) -> Future[SampleRecord | BaseException]:
    """Run one sample on a daemon thread in a copy of this context, then free its slot.

    Daemon threads let Ctrl-C end the process at once instead of waiting for in-flight requests.
    """
    future: Future[SampleRecord | BaseException] = Future()
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            try:
                result = ctx.run(run, index, body)
            finally:
                if release is not None:
                    release()  # first: a run that has all its results holds no slot
            future.set_result(result)
        except BaseException as exc:  # a bug in the engine itself: fail loudly, never hang
            future.set_exception(exc)

    threading.Thread(target=target, name=f"llmeval-sample-{index}", daemon=True).start()
    return future


async def run_async(
    plan: Plan,
    body: Callable[[], Awaitable[object]],
    concurrency: int,
    classifier: Classifier,
    gate: Gate | None = None,
    ordered: bool = False,
    on_abort: OnAbort | None = None,
    window: Window | None = None,
) -> Sampled:
    """Sample an async body as concurrent tasks on the running event loop; every sample holds a
    slot of the shared `window`."""
    start = time.perf_counter()
    tally = _Tally(plan, classifier, gate, ordered, on_abort)
    width = plan.width(concurrency)
    launched = 0
    pending: set[asyncio.Task[SampleRecord | BaseException]] = set()
    slot: asyncio.Task[None] | None = None  # waits for a slot while our own samples run
    try:
        while True:
            while tally.may_launch(launched, width) and len(pending) < width:
                if window is not None:
                    if slot is None and not window.try_acquire():
                        slot = asyncio.create_task(window.aacquire())
                    if slot is not None:
                        if not slot.done():
                            break
                        slot = None  # it holds a slot now: this sample's
                task = asyncio.create_task(tally.arun(launched, body))
                if window is not None:
                    task.add_done_callback(_releasing(window))
                pending.add(task)
                launched += 1
            if slot is not None and not tally.may_launch(launched, width):
                await _give_back(slot, window)
                slot = None
            if not pending and slot is None:
                break
            waited: set[asyncio.Task[Any]] = {*pending, slot} if slot is not None else {*pending}
            done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            finished = pending & done
            pending -= finished
            for task in finished:
                tally.add(task.result())
            if tally.control is not None and pending:  # e.g. Ctrl-C landed inside a sample
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                pending = set()
    except BaseException as exc:
        for task in pending:
            task.cancel()
        if slot is not None:
            with contextlib.suppress(BaseException):
                await _give_back(slot, window)
        if pending:  # let them end (and give back their window slots) before this task does
            with contextlib.suppress(BaseException):
                await asyncio.wait(pending)
        tally.abort(exc, time.perf_counter() - start)
        raise
    return tally.result(time.perf_counter() - start)


def _releasing(window: Window) -> Callable[[object], None]:
    return lambda _: window.release()


async def _give_back(slot: asyncio.Task[None], window: Window | None) -> None:
    """Stop waiting for a slot; give it back if it came already."""
    slot.cancel()
    await asyncio.wait({slot})
    if window is not None and not slot.cancelled():
        window.release()
