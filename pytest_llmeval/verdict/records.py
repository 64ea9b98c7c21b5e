"""Per-call and per-sample records, and the context that collects them while a sample runs."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from pytest_llmeval.report.schema import (
    Call,
    Exchange,
    Judged,
    RoleTotals,
    Sample,
    SandboxRun,
    Turn,
)


@dataclass(frozen=True)
class CallRecord:
    """One request to a model: what was asked (as a fingerprint), what it cost, how long it took."""

    endpoint: str
    fingerprint: str
    latency_s: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    error_type: str | None = None
    cause: str | None = None
    ttft_s: float | None = None
    attempts: int = 1
    retry_causes: tuple[str, ...] = ()
    cached: bool = False
    saved_usd: float | None = None
    role: str = "model"  # the model under test, or the judge, embedding model or rival
    exchange: Exchange | None = None  # what was sent and answered, redacted and capped
    cut: bool = False  # some text of the exchange was capped

    def to_dict(self) -> Call:
        call: Call = {
            "endpoint": self.endpoint,
            "fingerprint": self.fingerprint,
            "latency_s": self.latency_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "error_type": self.error_type,
            "cause": self.cause,
            "ttft_s": self.ttft_s,
            "attempts": self.attempts,
            "retry_causes": list(self.retry_causes),
            "cached": self.cached,
            "saved_usd": self.saved_usd,
        }
        if self.role != "model":
            call["role"] = self.role
        return call


@dataclass(frozen=True)
class TurnCheck:
    """One named check on the state of a dialogue after its `turn`-th user turn (1-based)."""

    turn: int
    name: str
    passed: bool
    required: bool = True
    message: str | None = None

    def to_dict(self) -> Turn:
        return {"turn": self.turn, "name": self.name, "passed": self.passed,
                "required": self.required, "message": self.message}  # fmt: skip


@dataclass
class SampleTrace:
    """Calls made by one running sample; filled from whatever thread or task the sample uses."""

    index: int | None = None
    calls: list[CallRecord] = field(default_factory=list)
    sandbox: list[SandboxRun] = field(default_factory=list)
    turns: list[TurnCheck] = field(default_factory=list)
    judgements: list[Judged] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seen: dict[str, int] = field(default_factory=dict, repr=False)

    def add(self, call: CallRecord) -> None:
        with self._lock:
            self.calls.append(call)

    def add_sandbox(self, run: SandboxRun) -> None:
        """A sandbox run of generated code (status, solution lines, duration)."""
        with self._lock:
            self.sandbox.append(run)

    def add_turn(self, check: TurnCheck) -> None:
        with self._lock:
            self.turns.append(check)

    def add_judgement(self, judged: Judged) -> None:
        """A judge's grade or preference, for the report and the judged verdict."""
        with self._lock:
            self.judgements.append(judged)

    def occurrence(self, request: str) -> int:
        """How many identical requests this sample made before this one (0 for the first)."""
        with self._lock:
            count = self._seen.get(request, 0)
            self._seen[request] = count + 1
            return count


_current: ContextVar[SampleTrace | None] = ContextVar("llmeval_sample_trace", default=None)


def current_trace() -> SampleTrace | None:
    """The trace of the sample running in this context, if any."""
    return _current.get()


@contextmanager
def tracing(trace: SampleTrace) -> Iterator[SampleTrace]:
    """Route calls made in this context (and tasks or copies of it) to `trace`."""
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class SampleRecord:
    """One run of the test body: its outcome and the calls it made."""

    index: int
    outcome: str
    duration_s: float
    calls: tuple[CallRecord, ...] = ()
    error_type: str | None = None
    message: str | None = None
    cause: str | None = None
    sandbox: tuple[SandboxRun, ...] = ()
    turns: tuple[TurnCheck, ...] = ()
    judgements: tuple[Judged, ...] = ()

    def to_dict(self, transcript: bool = False) -> Sample:
        """The model's own calls make the sample's latency, tokens and cost; the judge's and
        the embedding model's are counted apart, under `roles`. With `transcript`, what the
        calls sent and received too."""
        own = [c for c in self.calls if c.role == "model"]
        costs = [c.cost_usd for c in own if c.cost_usd is not None]
        ttfts = [c.ttft_s for c in own if c.ttft_s is not None]
        saved = [c.saved_usd for c in self.calls if c.saved_usd is not None]
        record: Sample = {
            "index": self.index,
            "outcome": self.outcome,
            "error_type": self.error_type,
            "cause": self.cause,
            "message": self.message,
            "ttft_s": round(ttfts[0], 6) if ttfts else None,
            "retries": sum(c.attempts - 1 for c in self.calls),
            "duration_s": round(self.duration_s, 6),
            "latency_s": round(sum(c.latency_s for c in own), 6),
            "input_tokens": sum(c.input_tokens for c in own),
            "output_tokens": sum(c.output_tokens for c in own),
            "cost_usd": sum(costs) if costs else None,
            "cached": bool(self.calls) and all(c.cached for c in self.calls),
            "saved_usd": sum(saved) if saved else None,
            "fingerprints": sorted({c.fingerprint for c in own} | _graders(self.judgements)),
            "calls": [c.to_dict() for c in self.calls],
            "sandbox": list(self.sandbox),
        }
        if self.turns:  # dialogue checks (conversation.py), only for tests that make them
            record["turns"] = [turn.to_dict() for turn in self.turns]
        roles = {c.role for c in self.calls} - {"model"}
        if roles:
            record["roles"] = {role: role_totals(self.calls, role) for role in sorted(roles)}
        if self.judgements:
            record["judgements"] = list(self.judgements)
        exchanges = [c for c in self.calls if c.exchange is not None]
        if transcript and exchanges:
            record["transcript"] = {
                "calls": [c.exchange for c in exchanges if c.exchange is not None],
                "truncated": any(c.cut for c in exchanges),
            }
        return record


def _graders(judgements: tuple[Judged, ...]) -> set[str]:
    """A fingerprint per judge model and rubric: a changed judge or rubric changes the prompt
    the baseline compares, as a changed prompt of the model does."""
    return {
        hashlib.sha256(f"{j['judge_model_id']}:{j['rubric']}".encode()).hexdigest()[:16]
        for j in judgements
    }


def role_totals(calls: tuple[CallRecord, ...], role: str) -> RoleTotals:
    """Calls, tokens and cost of one role (judge, embedding) within a sample."""
    mine = [c for c in calls if c.role == role]
    costs = [c.cost_usd for c in mine if c.cost_usd is not None]
    return {
        "calls": len(mine),
        "input_tokens": sum(c.input_tokens for c in mine),
        "output_tokens": sum(c.output_tokens for c in mine),
        "cost_usd": sum(costs) if costs else None,
        "latency_s": round(sum(c.latency_s for c in mine), 6),
    }
