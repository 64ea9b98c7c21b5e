from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.report.build import broken_result, build_report, table_lines, write_text

PLAN = {"pass_rate": 0.8, "samples": 4, "confidence": 0.95, "mode": "not_worse", "marked": True}


def sample(index: int, outcome: str, latency: float, cost: float | None = 0.001) -> dict[str, Any]:
    return {
        "index": index,
        "outcome": outcome,
        "error_type": "APITimeoutError" if outcome == "error" else None,
        "message": None,
        "duration_s": latency,
        "latency_s": latency,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": cost,
        "fingerprints": ["abc"],
        "calls": [{"endpoint": "chat"}],
    }


def result(model: str, outcomes: str, verdict: str, stop: str = "completed") -> dict[str, Any]:
    samples = [sample(i, o, 0.1 * (i + 1)) for i, o in enumerate(outcomes)]
    return {
        "nodeid": f"t.py::test_x[{model}]",
        "test": "t.py::test_x",
        "model": model,
        "model_id": model,
        "plan": PLAN,
        "verdict": verdict,
        "stop_reason": stop,
        "passed": outcomes.count("passed"),
        "failed": outcomes.count("failed"),
        "errors": outcomes.count("error"),
        "ci": [0.1, 0.9],
        "message": None,
        "samples": samples,
    }


MODELS = {"a": {"name": "a"}, "b": {"name": "b"}, "c": {"name": "c"}}


def test_metrics_and_totals() -> None:
    report = build_report(
        [
            result("b", ["passed", "failed", "error", "passed"], "failed"),
            result("a", ["passed"] * 4, "passed"),
        ],
        MODELS,
    )
    first, second = report["tests"]
    assert first["model"] == "a" and second["model"] == "b"
    assert second["run"] == 4 and second["rate"] == pytest.approx(2 / 3)
    assert second["metrics"]["latency_p50_s"] == pytest.approx(0.25)
    assert second["metrics"]["input_tokens"] == 40 and second["metrics"][
        "cost_usd"
    ] == pytest.approx(0.004)
    totals = report["totals"]["b"]
    assert (totals["tests"], totals["failed"], totals["samples"], totals["sample_errors"]) == (
        1,
        1,
        4,
        1,
    )


def test_table_rows_show_verdict_interval_and_stop() -> None:
    rows = [
        result("a", ["passed"] * 3, "passed", stop="settled"),
        broken_result(
            "t.py::test_x[c]",
            "t.py::test_x",
            {"name": "c", "model_id": "c"},
            PLAN,
            "crashed",
            "boom",
        ),
    ]
    lines = table_lines(build_report(rows, MODELS))
    assert lines[0].split() == [
        "test", "model", "pass/valid", "err", "rate", "CI", "need", "verdict", "stop",
        "p50", "s", "p95", "s", "ttft", "s", "tok/s", "tok", "in/out", "cost", "$",
    ]  # fmt: skip
    assert lines[1].split() == [
        "t.py::test_x", "a", "3/3", "0", "100.0%", "10-90%", "0.80", "not_worse", "PASSED",
        "settled", "3/4", "0.20", "0.29", "-", "25.0", "30/15", "0.0030",
    ]  # fmt: skip
    assert lines[2].split() == [
        "t.py::test_x", "c", "0/0", "0", "-", "-", "0.80", "not_worse", "ERROR", "crashed",
        "-", "-", "-", "-", "0/0", "-",
    ]  # fmt: skip
    assert lines[3] == "" and lines[4].startswith("model")
    assert lines[5].split()[:6] == ["a", "1", "1", "0", "0", "3"]


def test_unmarked_rows_say_once() -> None:
    row = result("a", ["passed"], "passed")
    row["plan"] = {**PLAN, "samples": 1, "marked": False}
    assert "once" in table_lines(build_report([row], MODELS))[1].split()


def test_reports_write_through_pipes_and_links_instead_of_replacing_them(tmp_path: Path) -> None:
    """`--llm-report-md=/dev/stdout` (or /dev/null) must not turn the device into a file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_text(fifo, "# report\n")
    reader.join(5)
    assert received == ["# report\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)

    target = tmp_path / "real.md"
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_text(link, "hello\n")
    assert link.is_symlink() and target.read_text() == "hello\n"
