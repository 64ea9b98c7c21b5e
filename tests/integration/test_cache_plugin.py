"""Response cache through the plugin: hits, replay, zero-request reruns, concurrency, crashes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.testing import Cycle, FakeGateway, HTTPError

ALL_PASS = """
import pytest

@pytest.mark.llmeval(pass_rate=1.0, samples=6, mode="observed")
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def only_row(path: Path) -> dict[str, Any]:
    rows = report(path)["tests"]
    assert len(rows) == 1
    return rows[0]


def entries(folder: Path) -> int:
    with sqlite3.connect(folder / ".llmeval_cache" / "responses.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(db.execute("SELECT count(*) FROM responses").fetchone()[0])


def test_bad_mode_is_a_usage_error(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_suite=ALL_PASS)
    result = suite.runpytest("--llm-models=m", "--llm-cache=always")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-cache*'always' is not one of off, read, write*"])


def test_second_run_sends_no_request(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=ALL_PASS)
    args = ["--llm-models=m", "--llm-cache=readwrite", *plugin_args]
    suite.runpytest(*args, "--llm-report=live.json").assert_outcomes(passed=1)
    assert gateway.request_count() == 6
    live = only_row(suite.path / "live.json")
    assert not any(s["cached"] for s in live["samples"])
    result = suite.runpytest(*args, "--llm-report=cached.json")
    result.assert_outcomes(passed=1)
    assert gateway.request_count() == 6  # nothing new reached the gateway
    cached = only_row(suite.path / "cached.json")
    assert all(s["cached"] for s in cached["samples"]) and cached["run"] == 6
    assert cached["fingerprints"] == live["fingerprints"]
    result.stdout.fnmatch_lines(["cache of m: 6/6 samples"])
    assert entries(suite.path) == 6


def test_repeated_samples_keep_their_own_answers(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    """Samples of one prompt are distinct entries: a rerun replays each sample's own answer."""
    gateway.add_model("m", Cycle(["PASS", "FAIL", "FAIL"]))
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.5, samples=6, mode="observed")
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    args = ["--llm-models=m", "--llm-cache=readwrite", "--llm-concurrency=1"]
    suite.runpytest(*args, "--llm-report=live.json")
    suite.runpytest(*args, "--llm-report=cached.json")
    live, cached = only_row(suite.path / "live.json"), only_row(suite.path / "cached.json")
    assert [s["outcome"] for s in live["samples"]] == ["passed", "failed", "failed"] * 2
    assert [s["outcome"] for s in cached["samples"]] == [s["outcome"] for s in live["samples"]]
    assert gateway.request_count() == 6


def test_identical_calls_within_a_sample_are_distinct(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", Cycle(["one", "two"]))
    suite.makepyfile(
        test_suite="""
def test_twice(llm):
    assert [llm.chat("same").text, llm.chat("same").text] == ["one", "two"]
"""
    )
    suite.runpytest("--llm-models=m", "--llm-cache=readwrite").assert_outcomes(passed=1)
    suite.runpytest("--llm-models=m", "--llm-cache=replay").assert_outcomes(passed=1)
    assert gateway.request_count() == 2


def test_replay_miss_is_an_error_naming_the_test(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=ALL_PASS)
    result = suite.runpytest(
        "--llm-models=m", "--llm-cache=replay", "--llm-report=r.json", *plugin_args
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*CacheMiss: --llm-cache=replay: no cached answer for test_suite.py::test_answer[[]m[]]*"]
    )
    row = only_row(suite.path / "r.json")
    assert row["verdict"] == "error"
    assert row["metrics"]["errors_by_cause"] == {"cache_miss": row["errors"]}
    assert gateway.request_count() == 0


def test_read_does_not_write_and_write_does_not_read(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=ALL_PASS)
    suite.runpytest("--llm-models=m", "--llm-cache=read").assert_outcomes(passed=1)
    assert not (suite.path / ".llmeval_cache" / "responses.sqlite").exists() or not entries(
        suite.path
    )
    suite.runpytest("--llm-models=m", "--llm-cache=write").assert_outcomes(passed=1)
    suite.runpytest("--llm-models=m", "--llm-cache=write").assert_outcomes(passed=1)
    assert gateway.request_count() == 18 and entries(suite.path) == 6
    suite.runpytest("--llm-models=m", "--llm-cache=read").assert_outcomes(passed=1)
    suite.runpytest("--llm-models=m").assert_outcomes(passed=1)  # off by default
    assert gateway.request_count() == 24


def test_errors_are_never_cached(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("m", "PASS")
    gateway.inject(HTTPError(500), times=2)
    suite.makepyfile(test_suite=ALL_PASS)
    args = ["--llm-models=m", "--llm-cache=readwrite", "--llm-report=r.json"]
    suite.runpytest(*args)
    assert only_row(suite.path / "r.json")["errors"] == 2 and entries(suite.path) == 4
    suite.runpytest(*args).assert_outcomes(passed=1)
    row = only_row(suite.path / "r.json")
    assert row["errors"] == 0 and gateway.request_count() == 8  # only the two errored samples
    assert sum(s["cached"] for s in row["samples"]) == 4


def test_cached_cost_is_saved_not_spent_or_charged(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    suite.makefile(
        ".toml",
        llmeval=f"""
base_url = "{gateway.base_url}"
retries = 0

[models.m]
input_cost_per_mtok = 1000000.0
output_cost_per_mtok = 1000000.0
""",
    )
    suite.makepyfile(test_suite=ALL_PASS)
    args = ["--llm-models=m", "--llm-cache=readwrite", "--llm-report=r.json"]
    suite.runpytest(*args).assert_outcomes(passed=1)
    spent = only_row(suite.path / "r.json")["metrics"]["cost_usd"]
    assert spent > 0
    # The live run would blow this budget on its first answer; cached answers cost nothing.
    result = suite.runpytest(*args, "--llm-budget=0.5")
    result.assert_outcomes(passed=1)
    doc = report(suite.path / "r.json")
    metrics = doc["tests"][0]["metrics"]
    assert metrics["cost_usd"] is None and metrics["saved_usd"] == pytest.approx(spent)
    assert doc["budget"]["spent_usd"] == 0.0
    result.stdout.fnmatch_lines([f"cache of m: 6/6 samples, ${spent:.4f} saved"])


def test_streamed_answers_replay(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("m", "PASS with many words")
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=1.0, samples=3, mode="observed")
def test_sync(llm):
    stream = llm.stream("go")
    assert "".join(stream) == "PASS with many words"
    assert stream.completion.usage.completion_tokens == 4

@pytest.mark.llmeval(pass_rate=1.0, samples=3, mode="observed")
async def test_async(llm):
    done = await llm.achat("go on", stream=True)
    assert done.text == "PASS with many words" and done.ttft_s is not None
"""
    )
    suite.runpytest("--llm-models=m", "--llm-cache=readwrite").assert_outcomes(passed=2)
    assert gateway.request_count() == 6
    suite.runpytest("--llm-models=m", "--llm-cache=replay").assert_outcomes(passed=2)
    assert gateway.request_count() == 6


MANY_TESTS = """
import pytest

@pytest.mark.parametrize("case", range(12))
@pytest.mark.llmeval(pass_rate=1.0, samples=5, mode="observed")
def test_case(llm, case):
    assert "PASS" in llm.chat(f"case {case}").text
"""


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=MANY_TESTS)
    args = ["--llm-models=m", "-n", "4"]
    suite.runpytest(*args, "--llm-cache=readwrite").assert_outcomes(passed=12)
    assert gateway.request_count() == 60 and entries(suite.path) == 60
    suite.runpytest(*args, "--llm-cache=replay").assert_outcomes(passed=12)
    assert gateway.request_count() == 60


def settled_count(gateway: FakeGateway, quiet_s: float = 0.3, limit_s: float = 10.0) -> int:
    """The gateway's request count once no new request has arrived for `quiet_s`."""
    deadline = time.monotonic() + limit_s
    count = gateway.request_count()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = gateway.request_count()
        if now == count:
            return count
        count = now
    return count


@pytest.mark.slow
def test_killed_run_leaves_a_usable_cache(
    suite: pytest.Pytester, gateway: FakeGateway, start_pytest: Callable[..., Any]
) -> None:
    gateway.add_model("m", "PASS")
    gateway.latency_s = 0.05
    suite.makepyfile(test_suite=MANY_TESTS)
    proc = start_pytest(
        "--llm-models=m",
        "-n",
        "2",
        "--llm-cache=readwrite",
        requests=20,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.killpg(proc.pid, signal.SIGKILL)  # the controller and both workers, mid-write
    proc.wait(timeout=30)
    stored = entries(suite.path)
    assert 0 < stored < 60
    before = settled_count(gateway)  # requests sent before the kill may still be arriving
    suite.runpytest("--llm-models=m", "-n", "2", "--llm-cache=readwrite").assert_outcomes(passed=12)
    assert gateway.request_count() - before == 60 - stored
    assert entries(suite.path) == 60


def test_no_secret_reaches_the_cache(
    suite: pytest.Pytester, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-DO-NOT-CACHE-123456"
    monkeypatch.setenv("GATEWAY_KEY", secret)
    gateway.add_model("m", f"PASS, and the key is {secret}")
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\napi_key_env = "GATEWAY_KEY"\nretries = 0\n',
    )
    suite.makepyfile(test_suite=ALL_PASS)
    suite.runpytest("--llm-models=m", "--llm-cache=readwrite").assert_outcomes(passed=1)
    stored = b"".join(path.read_bytes() for path in (suite.path / ".llmeval_cache").iterdir())
    assert entries(suite.path) == 6
    assert secret.encode() not in stored and b"GATEWAY_KEY" not in stored
    assert b"the key is ***" in stored


def test_replay_of_an_early_stopped_test_needs_only_cached_samples(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", Cycle(["FAIL", "PASS", "PASS", "PASS"]))
    gateway.latency_s = 0.02
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.5, samples=40)
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    args = ["--llm-models=m", "--llm-concurrency=4", *plugin_args]
    suite.runpytest(*args, "--llm-cache=readwrite", "--llm-report=live.json")
    live = only_row(suite.path / "live.json")
    assert live["stop_reason"] == "settled" and live["run"] < 40
    gateway.latency_s = 0.0
    suite.runpytest(*args, "--llm-cache=replay", "--llm-report=cached.json").assert_outcomes(
        passed=1
    )
    cached = only_row(suite.path / "cached.json")
    assert [s["index"] for s in cached["samples"]] == [s["index"] for s in live["samples"]]
    assert cached["errors"] == 0 and gateway.request_count() == live["run"]


def test_two_models_with_one_id_keep_their_own_answers(
    pytester: pytest.Pytester, gateway: FakeGateway
) -> None:
    """Aliases `first` and `second` send the same model id: each must be asked itself."""
    gateway.add_model("shared-id", "PASS")
    pytester.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n'
        '[models.first]\nmodel = "shared-id"\n[models.second]\nmodel = "shared-id"\n',
    )
    pytester.makepyfile(test_suite=ALL_PASS)
    pytester.runpytest("--llm-models=first", "--llm-cache=readwrite").assert_outcomes(passed=1)
    asked = gateway.request_count()
    pytester.runpytest("--llm-models=second", "--llm-cache=readwrite").assert_outcomes(passed=1)
    assert gateway.request_count() == 2 * asked


def test_replay_with_a_baseline_asks_only_for_recorded_samples(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    """The baseline run stopped on its threshold alone; a replay with that baseline must not
    sample further (every answer it needs is cached)."""
    gateway.add_model("m", "PASS")
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.1, samples=20)
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    record = ["--llm-models=m", "--llm-baseline=base.json", "--llm-update-baseline"]
    suite.runpytest(*record, "--llm-cache=readwrite").assert_outcomes(passed=1)
    recorded = gateway.request_count()
    result = suite.runpytest(
        "--llm-models=m", "--llm-baseline=base.json", "--llm-cache=replay", "--llm-report=r.json"
    )
    result.assert_outcomes(passed=1)
    row = only_row(suite.path / "r.json")
    assert (row["errors"], row["passed"]) == (0, recorded)
    assert gateway.request_count() == recorded
