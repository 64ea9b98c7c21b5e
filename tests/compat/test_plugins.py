"""LLM tests next to the pytest plugins users already have give the same verdicts.

Runs only in the compatibility environment (`pip install -e '.[dev,compat]'`; `.ci/run` makes
it): `python -m pytest tests/compat`. Each case runs a small suite serially and with `-n 2`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio  # noqa: F401 - the environment must have every plugin this file tests
import pytest_html  # noqa: F401
import pytest_recording  # noqa: F401
import pytest_repeat  # noqa: F401
import pytest_rerunfailures  # noqa: F401
import pytest_timeout  # noqa: F401
import syrupy  # noqa: F401

from pytest_llmeval.testing import FakeGateway

SUITE = """
import asyncio
import pytest

@pytest.mark.llmeval(pass_rate=0.8, samples=10)
def test_sync(llm):
    assert "PASS" in llm.chat("Say PASS").text

@pytest.mark.llmeval(pass_rate=0.8, samples=10)
async def test_async(llm):
    out = await llm.achat("Say PASS")
    assert "PASS" in out.text

@pytest.mark.llmeval(pass_rate=0.8, samples=10)
async def test_async_with_a_loop_bound_fixture(llm, loop_fixture):
    assert asyncio.get_running_loop() is loop_fixture, "sampled on another loop than the fixture"
    out = await llm.achat("Say PASS")
    assert "PASS" in out.text
"""

ASYNCIO_CONFTEST = """
import asyncio
import pytest_asyncio

@pytest_asyncio.fixture
async def loop_fixture():
    yield asyncio.get_running_loop()
"""

ANYIO_HEADER = """
import asyncio
import pytest

pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.fixture
async def loop_fixture():
    yield asyncio.get_running_loop()
"""


ASYNCIO_INIS = {
    "auto": "asyncio_mode = auto\n",
    "auto-module-loops": (
        "asyncio_mode = auto\nasyncio_default_fixture_loop_scope = module\n"
        "asyncio_default_test_loop_scope = module\n"
    ),
    "auto-session-loops": (
        "asyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
        "asyncio_default_test_loop_scope = session\n"
    ),
    "strict-marked": "asyncio_mode = strict\n",
}


@pytest.fixture(params=[[], ["-n", "2"]], ids=["serial", "xdist"])
def workers(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


@pytest.fixture
def project(pytester: pytest.Pytester, gateway: FakeGateway) -> pytest.Pytester:
    gateway.add_model("good", "PASS")
    gateway.add_model("bad", "FAIL")
    pytester.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n')
    return pytester


def run(project: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = project.runpytest_subprocess(
        "--llm-models=good,bad", "--llm-report=r.json", "-p", "no:cacheprovider", *args
    )
    report = json.loads((project.path / "r.json").read_text())
    return result, report


def assert_honest_verdicts(report: dict[str, Any], tests: int) -> None:
    """good passes every sample, bad fails every one; nothing is an error of the harness."""
    rows = report["tests"]
    assert len(rows) == 2 * tests, [r["nodeid"] for r in rows]
    for row in rows:
        expected = "passed" if row["model"] == "good" else "failed"
        assert row["verdict"] == expected, row
        assert row["errors"] == 0, row["samples"]
        outcomes = {s["outcome"] for s in row["samples"]}
        assert outcomes == {expected}, row["samples"]
        assert all(s["calls"] for s in row["samples"]), "every sample called the model"


@pytest.mark.parametrize("ini", ASYNCIO_INIS.values(), ids=ASYNCIO_INIS.keys())
def test_pytest_asyncio_modes_and_loop_scopes(
    project: pytest.Pytester, workers: list[str], ini: str
) -> None:
    project.makeini("[pytest]\n" + ini)
    project.makeconftest(ASYNCIO_CONFTEST)
    suite = SUITE
    if "strict" in ini:
        suite = suite.replace("\nasync def", "\n@pytest.mark.asyncio\nasync def")
    project.makepyfile(test_suite=suite)
    result, report = run(project, *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=3, failed=3)
    assert_honest_verdicts(report, 3)


def test_strict_mode_runs_unmarked_async_llm_tests_too(
    project: pytest.Pytester, workers: list[str]
) -> None:
    project.makeini("[pytest]\nasyncio_mode = strict\n")
    head = SUITE.split("@pytest.mark.llmeval(pass_rate=0.8, samples=10)\nasync def test_async_with")
    project.makepyfile(test_suite=head[0])
    result, report = run(project, *workers)
    result.assert_outcomes(passed=2, failed=2)
    assert_honest_verdicts(report, 2)


def test_anyio_runs_the_samples_on_its_loop(project: pytest.Pytester, workers: list[str]) -> None:
    project.makepyfile(test_suite=ANYIO_HEADER + SUITE.split("import pytest\n", 1)[1])
    result, report = run(project, *workers)
    result.assert_outcomes(passed=3, failed=3)
    assert_honest_verdicts(report, 3)


def test_randomly_rerunfailures_timeout_repeat_html_and_vcr_installed(
    project: pytest.Pytester, workers: list[str]
) -> None:
    """Reruns of a statistical verdict re-sample it; the last run is the one reported."""
    project.makeini("[pytest]\nasyncio_mode = auto\n")
    project.makeconftest(ASYNCIO_CONFTEST)
    project.makepyfile(test_suite=SUITE)
    result, report = run(
        project, "--reruns", "1", "--timeout", "60", "--count", "2",
        "--html", "report.html", "--self-contained-html", *workers,
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (6, 6, 6), outcomes
    assert_honest_verdicts(report, 6)
    assert "test_async_with_a_loop_bound_fixture" in (project.path / "report.html").read_text()


def test_a_snapshot_test_next_to_llm_tests(project: pytest.Pytester, workers: list[str]) -> None:
    project.makepyfile(
        test_suite=SUITE.split("@pytest.mark.llmeval(pass_rate=0.8, samples=10)\nasync")[0]
        + "\ndef test_snapshot(snapshot):\n    assert {'answer': 'PASS'} == snapshot\n"
    )
    run(project, "--snapshot-update", *workers)
    result, report = run(project, *workers)
    result.assert_outcomes(passed=2, failed=1)
    assert_honest_verdicts(report, 1)


def test_pytest_timeout_is_an_error_that_keeps_the_samples(
    project: pytest.Pytester, gateway: FakeGateway, workers: list[str]
) -> None:
    gateway.add_model("good", "PASS", latency_s=0.5)
    project.makepyfile(
        test_suite="""
import pytest

@pytest.mark.timeout(6)
@pytest.mark.llmeval(samples=40, models=["good"])
def test_slow(llm):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    project.makeconftest("import openai  # imported before the timeout starts\n")
    result, report = run(project, "--llm-concurrency=1", *workers)
    result.assert_outcomes(errors=1)
    row = report["tests"][0]
    assert row["verdict"] == "error" and row["failed"] == 0
    assert 0 < len(row["samples"]) < 40
    assert {s["outcome"] for s in row["samples"]} == {"passed"}
    assert row["message"].startswith("llmeval: pytest_timeout stopped the test after")
    assert "Timeout" in row["message"]


CASES = """
import pytest

@pytest.mark.parametrize("i", range(12))
@pytest.mark.llmeval(samples=1, mode="observed", models=["good"])
def test_case(llm, i):
    assert "PASS" in llm.chat(f"case {i}").text
"""


def test_cases_run_ahead_unless_a_plugin_fixture_could_change_them(
    project: pytest.Pytester, gateway: FakeGateway, workers: list[str]
) -> None:
    """pytest-recording's autouse `vcr` and `block_network` could change what a case's requests
    do, so its cases wait for their turn and the report says so; declared harmless in
    `ahead_fixtures`, the cases overlap. pytest-asyncio's session fixture does not hold them."""
    gateway.add_model("good", "PASS", latency_s=0.2)
    project.makepyfile(test_cases=CASES)
    result, report = run(project, "-p", "no:randomly", *workers)
    result.assert_outcomes(passed=12)
    (reason,) = {row["in_order"] for row in report["tests"]}
    recording = ("vcr", "block_network", "record_mode", "disable_recording")
    assert reason.startswith("uses fixture '") and any(name in reason for name in recording)
    assert gateway.peak_in_flight <= (2 if workers else 1)
    gateway.reset()
    gateway.add_model("good", "PASS", latency_s=0.2)
    gateway.add_model("bad", "FAIL")
    project.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n'
        'ahead_fixtures = ["vcr", "block_network"]\n',
    )
    result, report = run(project, "-p", "no:randomly", *workers)
    result.assert_outcomes(passed=12)
    assert not any("in_order" in row for row in report["tests"])
    # Under xdist a worker sees only the few cases `--dist load` has sent it so far.
    assert gateway.peak_in_flight >= (2 if workers else 3)
