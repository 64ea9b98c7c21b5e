"""Ctrl-C and SIGTERM keep what ran: the interrupted test x model is reported with its samples."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from processes import default_sigint

from pytest_llmeval.testing import FakeGateway

SUITE = """
import pytest


@pytest.mark.llmeval(samples=4, models=["fast"])
def test_done(llm):
    assert llm.chat("done").text == "PASS"

@pytest.mark.llmeval(samples=30, models=["m"])
def test_slow(llm):
    assert llm.chat("slow").text == "PASS"
"""
ASYNC_SLOW = """
@pytest.mark.llmeval(samples=30, models=["m"])
async def test_slow(llm):
    assert (await llm.achat("slow")).text == "PASS"
"""


def slow_after(answered: int, release: threading.Event) -> object:
    """Answer 'PASS' `answered` times, then hold every request until `release` is set."""
    count = itertools.count()

    def respond(request: object) -> str:
        if next(count) >= answered:
            release.wait(60)
        return "PASS"

    return respond


@pytest.mark.slow
@pytest.mark.parametrize("body", ["sync", "async"])
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("workers", [[], ["-n", "2", "--dist=loadfile"]], ids=["serial", "xdist"])
def test_an_interrupted_run_reports_the_samples_it_ran(
    suite: pytest.Pytester,
    gateway: FakeGateway,
    how: signal.Signals,
    workers: list[str],
    body: str,
) -> None:
    release = threading.Event()
    gateway.add_model("fast", "PASS")
    gateway.add_model("m", slow_after(4, release))  # type: ignore[arg-type]
    suite.makepyfile(
        test_suite=SUITE
        if body == "sync"
        else SUITE.split("@pytest.mark.llmeval(samples=30")[0] + ASYNC_SLOW
    )
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--llm-models=fast,m",
        "--llm-concurrency=2", "--llm-report=r.json", "--llm-report-md=r.md", "-p", "no:randomly",
        *workers,
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=suite.path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # a terminal's Ctrl-C reaches every process of the group
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while gateway.request_count("m") < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.request_count("m") == 6  # 4 answered, 2 held in flight
        os.killpg(proc.pid, how)
        out, _ = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out and "pytest_llmeval" not in out, out
    report = json.loads((suite.path / "r.json").read_text())
    rows = {(r["test"], r["model"]): r for r in report["tests"]}
    slow = rows[("test_suite.py::test_slow", "m")]
    assert slow["verdict"] == "interrupted"
    assert slow["stop_reason"] == "interrupted"
    assert [s["outcome"] for s in slow["samples"]] == ["passed"] * 4
    assert slow["message"] == "llmeval: interrupted after 4 samples"
    assert rows[("test_suite.py::test_done", "fast")]["verdict"] == "passed", report
    assert "interrupted" in (suite.path / "r.md").read_text()
