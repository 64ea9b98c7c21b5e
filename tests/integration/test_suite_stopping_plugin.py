"""Suites that stop over their cases (`design="sequential"`) through the plugin: the cases left
once the verdict is settled are skipped with the reason, the verdict is the full run's, and a
baseline keeps the suite running until its paired regression is settled too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from processes import cli

from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.report.html_report import html_data
from pytest_llmeval.report.suites import stopping_text
from pytest_llmeval.testing import FakeGateway, RecordedRequest

BENCH = """
import pytest

@pytest.mark.parametrize("i", range(60))
@pytest.mark.llmeval(pass_rate=0.9, samples=1, suite=True, design="sequential")
def test_bench(llm, i):
    assert "PASS" in llm.chat(f"question {i}").text
"""
REASON = "*SKIPPED * llmeval: suite test_bench settled after * of 60 cases ({})"


def wrong_on(cases: set[int]) -> object:
    def answer(request: RecordedRequest) -> str:
        return "FAIL" if int(request.prompt.split()[-1]) in cases else "PASS"

    return answer


def gate_of(suite: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    (row,) = json.loads((suite.path / name).read_text())["suites"]
    return dict(row["gate"])


def outcomes(result: pytest.RunResult) -> tuple[int, int]:
    found = result.parseoutcomes()
    return found.get("passed", 0), found.get("skipped", 0)


@pytest.mark.parametrize("population", ["fixed", "sampled"])
def test_a_sequential_suite_stops_and_gives_the_full_runs_verdict(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str], population: str
) -> None:
    gateway.add_model("m", wrong_on(set(range(0, 60, 3))))  # pass@1 0.67, below 0.9
    # A sampled stop needs a canonical prefix: a worker slow to start must not let the other
    # run every case first.
    gateway.latency_s = 0.03
    bench = BENCH.replace("suite=True", f'suite=True, population="{population}"')
    suite.makepyfile(test_bench=bench)
    args = ["--llm-models=m", "--llm-concurrency=1", "-rs", *plugin_args]
    result = suite.runpytest(*args, "--llm-report=r.json", "--llm-report-md=r.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    ran, skipped = outcomes(result)
    assert skipped > 0 and ran + skipped == 60
    result.stdout.fnmatch_lines([REASON.format("fail bound reached")])
    result.stdout.fnmatch_lines(
        [f"test_bench.py::test_bench [[]m[]] stopped: * of 60 cases judged, {skipped} skipped*"]
    )
    gate = gate_of(suite)
    stop = gate["stopping"]
    assert (stop["cases"], stop["ran"], stop["skipped"]) == (60, ran, skipped)
    # A fixed suite counts every case that ran; a sampled one its canonical prefix only.
    counted = ran if population == "fixed" else ran - stop["overshoot"]
    assert stop["judged"] == counted
    assert gate["verdict"] == "failed"
    assert "stopped:" in (suite.path / "r.md").read_text()
    page = html_data(load_report(suite.path / "r.json"))
    assert [row.get("st") for row in page["suite_rows"]] == [stopping_text(stop)]
    # The same suite run to its end judges the same.
    suite.makepyfile(test_bench=bench.replace(', design="sequential"', ""))
    full = suite.runpytest(*args, "--llm-report=full.json")
    assert outcomes(full) == (60, 0)
    assert gate_of(suite, "full.json")["verdict"] == "failed"
    assert "stopping" not in gate_of(suite, "full.json")


def test_a_suite_without_design_sequential_runs_every_case(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    """The config's design and --llm-design are about per-test verdicts, not suites."""
    gateway.add_model("m", "FAIL")
    suite.makepyfile(test_bench=BENCH.replace(', design="sequential"', ""))
    result = suite.runpytest("--llm-models=m", "--llm-design=sequential", *plugin_args)
    assert outcomes(result) == (60, 0)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_baseline_keeps_a_suite_running_until_the_sign_test_is_settled(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    bench = BENCH.replace("pass_rate=0.9", "pass_rate=0.5")
    suite.makepyfile(test_bench=bench.replace(', design="sequential"', ""))
    args = ["--llm-models=m", "--llm-concurrency=1", *plugin_args]
    assert suite.runpytest(*args, "--llm-report=base.json").ret == pytest.ExitCode.OK
    suite.makepyfile(test_bench=bench)
    alone = suite.runpytest(*args, "--llm-report=alone.json")
    assert alone.ret == pytest.ExitCode.OK
    assert outcomes(alone)[1] >= 20  # passes the gate after about half the cases
    # Against the baseline, all 60 cases tie so far; 5 cases left could still all be worse
    # (p = 1/32 < 0.05): it runs until at most 4 are left.
    gated = suite.runpytest(*args, "--llm-baseline=base.json", "--llm-report=r.json")
    assert gated.ret == pytest.ExitCode.OK
    ran, skipped = outcomes(gated)
    assert ran >= 56 and skipped <= 4
    assert gate_of(suite)["verdict"] == "passed"


def test_cases_of_a_sequential_suite_must_share_one_marker(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    marker = 'pytest.mark.llmeval(pass_rate=0.5, samples=1, suite=True, design="sequential")'
    bench = BENCH.replace("range(60)", f"[*range(59), pytest.param(59, marks={marker})]")
    suite.makepyfile(test_bench=bench)
    result = suite.runpytest("--llm-models=m", *plugin_args)
    result.assert_outcomes(errors=60)
    result.stdout.fnmatch_lines(["*ConfigError: *the cases of a suite with design='sequential'*"])
    assert gateway.request_count() == 0


@pytest.mark.parametrize(("population", "verdict"), [("fixed", "failed"), ("sampled", "error")])
def test_shards_of_a_sequential_suite_merge_to_a_valid_verdict_or_an_error(
    suite: pytest.Pytester, gateway: FakeGateway, population: str, verdict: str
) -> None:
    """Each shard stops on its own cases; merged, a fixed suite's order-free rule judges all 60,
    and a sampled one, with no canonical order over both shards, is an error."""
    gateway.add_model("m", "FAIL")
    suite.makepyfile(
        test_bench=BENCH.replace("suite=True", f'suite=True, population="{population}"')
    )
    first = " or ".join(f"[m-{i}]" for i in range(30))
    for name, select in (("one", first), ("two", f"not ({first})")):
        shard = suite.runpytest("--llm-models=m", "-k", select, f"--llm-report={name}.json")
        assert outcomes(shard)[1] > 0
    merged = cli(suite.path, "merge", "one.json", "two.json", "-o", "all.json")
    assert merged.returncode == 0, merged.stderr
    gate = gate_of(suite, "all.json")
    assert gate["verdict"] == verdict and gate["stopping"]["cases"] == 60
    if verdict == "error":
        assert "run it in one shard" in gate["stopping"]["why"]
