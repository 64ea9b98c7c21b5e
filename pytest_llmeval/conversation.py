"""Multi-turn dialogues: keep the messages, send turns, score the state after each turn.

Checks are soft: a failed turn check is recorded and the dialogue goes on, so every turn gets
scored (the seed's "9/12 turns"); leaving the `with Conversation(...)` block (or calling
`verify()`) then fails the sample if any required check failed. Each check lands in the
sample's record, and the report gives a pass rate per turn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Protocol

from pytest_llmeval.calls.completion import Completion
from pytest_llmeval.report.schema import Dialogue, Rate, Sample
from pytest_llmeval.verdict.records import TurnCheck, current_trace


class ChatModel(Protocol):
    """What a conversation needs of the `llm` fixture."""

    def chat(self, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    async def achat(self, messages: list[dict[str, Any]], **params: Any) -> Completion: ...


class Conversation:
    """A dialogue with one model: `turn()` sends a user message with the history so far."""

    def __init__(self, llm: ChatModel, system: str | None = None, **params: Any) -> None:
        self.llm = llm
        self.params = params
        self.messages: list[dict[str, Any]] = []
        if system is not None:
            self.messages.append({"role": "system", "content": system})
        self.turns = 0
        self.checks: list[TurnCheck] = []

    def _send(self, user_text: str) -> list[dict[str, Any]]:
        self.turns += 1
        self.messages.append({"role": "user", "content": user_text})
        return list(self.messages)

    def _reply(self, completion: Completion) -> Completion:
        self.messages.append({"role": "assistant", "content": completion.text})
        return completion

    def turn(self, user_text: str, **params: Any) -> Completion:
        """Send `user_text` after the history; the answer joins the history."""
        return self._reply(self.llm.chat(self._send(user_text), **{**self.params, **params}))

    async def aturn(self, user_text: str, **params: Any) -> Completion:
        """`turn()` for async tests."""
        messages = self._send(user_text)
        return self._reply(await self.llm.achat(messages, **{**self.params, **params}))

    def expect(
        self, passed: bool, name: str, required: bool = True, message: str | None = None
    ) -> bool:
        """Record whether the state after the current turn is right; returns `passed`."""
        check = TurnCheck(self.turns, name, bool(passed), required, message)
        self.checks.append(check)
        trace = current_trace()
        if trace is not None:
            trace.add_turn(check)
        return check.passed

    @contextmanager
    def check(self, name: str, required: bool = True) -> Iterator[None]:
        """Run asserts on the current turn; an AssertionError is recorded, not raised."""
        try:
            yield
        except AssertionError as exc:
            lines = str(exc).strip().splitlines()
            self.expect(False, name, required, lines[0][:200] if lines else None)
        else:
            self.expect(True, name, required)

    @property
    def failed(self) -> list[TurnCheck]:
        """Required checks that failed so far."""
        return [c for c in self.checks if c.required and not c.passed]

    def verify(self) -> None:
        """Fail (AssertionError) if any required check failed, listing each one."""
        failed = self.failed
        if failed:
            scored = {c.turn for c in self.checks}
            bad = {c.turn for c in failed}
            listing = "; ".join(
                f"turn {c.turn} {c.name!r}" + (f": {c.message}" if c.message else "")
                for c in failed
            )
            raise AssertionError(
                f"{len(scored) - len(bad)}/{len(scored)} turns passed their checks; "
                f"failed: {listing}"
            )

    def __enter__(self) -> Conversation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.verify()


def dialogue_summary(samples: Sequence[Sample]) -> Dialogue | None:
    """Per turn, over the samples that scored it: how often all its checks passed (and each
    check's own rate); and the mean number of turns a sample passed. None without checks."""
    turns: dict[int, list[bool]] = {}
    checks: dict[int, dict[str, list[bool]]] = {}
    passed_per_sample = []
    for sample in samples:
        per_turn: dict[int, bool] = {}
        for entry in sample.get("turns") or ():
            turn = entry["turn"]
            checks.setdefault(turn, {}).setdefault(entry["name"], []).append(entry["passed"])
            per_turn[turn] = per_turn.get(turn, True) and entry["passed"]
        for turn, passed in per_turn.items():
            turns.setdefault(turn, []).append(passed)
        if per_turn:
            passed_per_sample.append(sum(per_turn.values()))
    if not turns:
        return None
    return {
        "turns_scored": len(turns),
        "mean_turns_passed": sum(passed_per_sample) / len(passed_per_sample),
        "turns": [
            {**_rate(turns[turn]), "turn": turn,
             "checks": [{"name": name, **_rate(outcomes)}
                        for name, outcomes in checks[turn].items()]}
            for turn in sorted(turns)
        ],
    }  # fmt: skip


def _rate(outcomes: list[bool]) -> Rate:
    passed = sum(outcomes)
    return {"passed": passed, "total": len(outcomes), "rate": passed / len(outcomes)}
