"""Cases of LLM tests run ahead of their turn in one shared window, and report in their turn;
cases whose fixtures could change their meaning wait for their turn, and the report says why."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.testing import FakeGateway, RecordedRequest

CASES = """
import pytest

@pytest.mark.parametrize("i", range(24))
@pytest.mark.llmeval(pass_rate=1.0, samples=1, mode="observed")
def test_case(llm, i):
    assert "PASS" in llm.chat(f"case {i}").text
"""


def rows(suite: pytest.Pytester) -> list[dict[str, object]]:
    return list(json.loads((suite.path / "r.json").read_text())["tests"])


def test_cases_overlap_within_one_window(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.2)
    suite.makepyfile(test_cases=CASES)
    args = ("--llm-models=m", "--llm-concurrency=6", "--llm-report=r.json", "-v", *plugin_args)
    result = suite.runpytest(*args)
    result.assert_outcomes(passed=24)
    found = rows(suite)
    assert len(found) == 24 and all(row["passed"] == 1 for row in found)
    assert not any("in_order" in row for row in found)
    processes = 2 if "2" in plugin_args else 1
    # One case at a time would never have two requests in flight; the window caps each process.
    assert 3 <= gateway.peak_in_flight <= 6 * processes
    if not plugin_args or plugin_args == ["-n", "0"]:  # one process reports in collection order
        lines = [f"test_cases.py::test_case[[]m-{i}[]] PASSED*" for i in range(24)]
        result.stdout.fnmatch_lines(lines)


def test_async_cases_overlap(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.2)
    suite.makepyfile(
        test_async="""
import pytest

@pytest.mark.parametrize("i", range(16))
@pytest.mark.llmeval(samples=1, mode="observed")
async def test_case(llm, i):
    assert "PASS" in (await llm.achat(f"case {i}")).text
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-concurrency=8", *plugin_args)
    result.assert_outcomes(passed=16)
    # Under xdist a worker sees only the few cases `--dist load` has sent it so far.
    assert gateway.peak_in_flight >= (2 if "2" in plugin_args else 3)


def test_cases_with_other_fixtures_wait_for_their_turn(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.05)
    suite.makepyfile(
        test_turns="""
import pytest

@pytest.mark.parametrize("i", range(6))
@pytest.mark.llmeval(samples=1, mode="observed")
def test_files(llm, tmp_path, i):
    (tmp_path / "answer.txt").write_text(llm.chat(f"file {i}").text)
    assert (tmp_path / "answer.txt").read_text() == "PASS"

@pytest.mark.skipif("sys.platform == 'nowhere'")
@pytest.mark.parametrize("i", range(2))
@pytest.mark.llmeval(samples=1, mode="observed")
def test_marked(llm, i):
    assert "PASS" in llm.chat(f"marked {i}").text
"""
    )
    result = suite.runpytest(
        "--llm-models=m", "--llm-concurrency=8", "--llm-report=r.json", *plugin_args
    )
    result.assert_outcomes(passed=8)
    reasons = {row["test"]: row.get("in_order") for row in rows(suite)}
    marked = {"test_turns.py::test_marked[0]", "test_turns.py::test_marked[1]"}
    assert set(reasons) == {*(f"test_turns.py::test_files[{i}]" for i in range(6)), *marked}
    assert {reasons[f"test_turns.py::test_files[{i}]"] for i in range(6)} == {
        "uses fixture 'tmp_path' (function scope)"
    }
    assert reasons["test_turns.py::test_marked[0]"] == "marked skipif"
    processes = 2 if "2" in plugin_args else 1
    assert gateway.peak_in_flight <= processes  # one case at a time in each process
    result.stdout.fnmatch_lines(
        [
            "cases that waited for their turn (not run ahead with the others):",
            "  test_turns.py::test_files: uses fixture 'tmp_path' (function scope)",
            "  test_turns.py::test_marked: marked skipif",
        ]
    )


def test_stopping_early_calls_off_the_cases_ahead(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "FAIL", latency_s=0.05)
    suite.makepyfile(
        test_stop="""
import pytest

@pytest.mark.parametrize("i", range(60))
@pytest.mark.llmeval(samples=1, mode="observed")
def test_case(llm, i):
    assert "PASS" in llm.chat(f"case {i}").text
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-concurrency=4", "--llm-report=r.json", "-x")
    result.assert_outcomes(failed=1)
    assert [row["test"] for row in rows(suite)] == ["test_stop.py::test_case[0]"]
    # The lookahead is two windows' worth of samples: the rest were never sent.
    assert gateway.request_count() <= 1 + 2 * 4 + 4


def test_control_flow_of_a_case_run_ahead_keeps_its_meaning(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    def answer(request: RecordedRequest) -> str:
        return request.prompt.split()[-1]

    gateway.add_model("m", answer)
    suite.makepyfile(
        test_flow="""
import pytest

@pytest.mark.parametrize("word", ["PASS", "SKIP", "XFAIL", "FAIL"])
@pytest.mark.llmeval(samples=1, mode="observed")
def test_case(llm, word):
    text = llm.chat(f"say {word}").text
    if text == "SKIP":
        pytest.skip("the model said skip")
    if text == "XFAIL":
        pytest.xfail("the model said xfail")
    assert text == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=m", "-rsx", *plugin_args)
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*the model said skip*"])


def test_a_case_whose_setup_fails_after_it_ran_ahead_does_not_hold_the_window(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    """An autouse fixture declared harmless (`ahead_fixtures`) lets the cases run ahead; when it
    then fails one case's setup, that case reports its setup error, its result is dropped, and
    the cases after it still run ahead."""
    gateway.add_model("m", "PASS", latency_s=0.05)
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nahead_fixtures = ["fails_for_case_3"]\n',
    )
    suite.makeconftest(
        """
import pytest

@pytest.fixture(autouse=True)
def fails_for_case_3(request):
    if int(request.node.name[:-1].split("-")[-1]) % 5 == 3:
        raise RuntimeError("this case cannot be set up")
"""
    )
    gateway.add_model("m", "PASS", latency_s=0.3)
    suite.makepyfile(test_dropped=CASES.replace("range(24)", "range(40)"))
    result = suite.runpytest("--llm-models=m", "--llm-concurrency=2", "--llm-report=r.json")
    result.assert_outcomes(passed=32, errors=8)
    found = {row["test"]: row for row in rows(suite)}
    assert found["test_dropped.py::test_case[3]"]["stop_reason"] == "setup error"
    assert not any("in_order" in row for row in found.values())
    # The eight dropped cases do not use up the lookahead: the last cases still overlap. One at
    # a time, each of the last ten requests would start a latency (0.3 s) after the one before,
    # 2.7 s from first to last; two at a time, about half that.
    last = sorted(r.time for r in gateway.requests)[-10:]
    assert last[-1] - last[0] < 2.0
