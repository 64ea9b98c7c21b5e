"""Baseline and current side by side: what changed in the prompt, and an answer from each run."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from pytest_llmeval.report.schema import ExampleAnswer, Exchange, Result, Sample, TranscriptDiff

WRITTEN = ("system", "developer", "user")  # the test's own messages, as the fingerprint sees them


def _first_model_call(sample: Sample) -> Exchange | None:
    calls = sample.get("transcript", {}).get("calls", [])
    return next((c for c in calls if c["role"] == "model"), None)


def example(samples: Sequence[Sample], prefer: str) -> tuple[Sample, Exchange] | None:
    """A sample with a transcript of the model's answer, one with outcome `prefer` first."""
    kept = [(s, call) for s in samples if (call := _first_model_call(s)) is not None]
    kept.sort(key=lambda pair: (pair[0]["outcome"] != prefer, pair[0]["index"]))
    return kept[0] if kept else None


def example_answer(found: tuple[Sample, Exchange]) -> ExampleAnswer:
    sample, call = found
    answer = call["answer"] if call["error"] is None else f"[{call['error']}]"
    return {
        "index": sample["index"],
        "outcome": sample["outcome"],
        "answer": answer,
        "message": sample["message"],
    }


def prompt_lines(call: Exchange) -> list[str]:
    """The messages the test wrote, one line per line of text, each prefixed with its role."""
    return [
        f"{message['role']}: {line}"
        for message in call["messages"]
        if message["role"] in WRITTEN
        for line in message["content"].splitlines() or [""]
    ]


def transcript_diff(base: Result, row: Result) -> TranscriptDiff | None:
    """The prompt diff and an example answer from each run: a passing one from the baseline, a
    failing one now; None when neither run kept a transcript."""
    before = example(base["samples"], "passed")
    after = example(row["samples"], "failed")
    if before is None and after is None:
        return None
    lines: list[str] = []
    if before is not None and after is not None:
        diff = difflib.unified_diff(
            prompt_lines(before[1]), prompt_lines(after[1]), "baseline", "current", lineterm="", n=2
        )
        lines = [line for line in diff if not line.startswith(("---", "+++"))]
    return {
        "prompt_diff": lines,
        "baseline": None if before is None else example_answer(before),
        "current": None if after is None else example_answer(after),
    }
