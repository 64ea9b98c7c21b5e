"""Suite gates through the plugin: one threshold over a parametrized test's cases, judged once
every case has reported, failing the run (not the cases); paired regression against a baseline."""

from __future__ import annotations

import json

import pytest
from processes import cli

from pytest_llmeval.testing import FakeGateway, RecordedRequest

BENCH = """
import pytest

@pytest.mark.parametrize("i", range(20))
@pytest.mark.llmeval(pass_rate=0.8, samples=2, suite=True)
def test_bench(llm, i):
    assert "PASS" in llm.chat(f"question {i}").text
"""


def wrong_on(cases: set[int]) -> object:
    """A model that answers every question right except those numbered in `cases`."""

    def answer(request: RecordedRequest) -> str:
        return "FAIL" if int(request.prompt.split()[-1]) in cases else "PASS"

    return answer


def report(suite: pytest.Pytester, name: str = "r.json") -> dict[str, object]:
    return dict(json.loads((suite.path / name).read_text()))


def test_a_suite_below_its_threshold_fails_the_run_not_its_cases(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("good", "PASS")
    gateway.add_model("weak", wrong_on(set(range(0, 20, 2))))  # pass@1 0.5
    suite.makepyfile(test_bench=BENCH)
    result = suite.runpytest("--llm-models=good,weak", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(passed=40)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "FAILED suite test_bench.py::test_bench [[]weak[]]: pass@1 50.0% (95% CI *) vs "
            "pass_rate 0.80 [[]not_worse, fixed cases[]]: failed; worst: 0 0/2, 10 0/2, *",
        ]
    )
    assert "FAILED suite test_bench.py::test_bench [good]" not in result.stdout.str()
    found = report(suite)
    gates = {row["model"]: row["gate"] for row in found["suites"]}  # type: ignore[attr-defined]
    assert gates["good"]["verdict"] == "passed" and gates["weak"]["verdict"] == "failed"
    assert gates["weak"]["samples"] == 40 and gates["weak"]["cases"] == 20
    assert gates["weak"]["population"] == "fixed"
    # Every case x sample is kept; no case stopped early.
    assert all(len(row["samples"]) == 2 for row in found["tests"])  # type: ignore[attr-defined]


def test_a_suite_that_meets_its_threshold_passes(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", wrong_on({3}))  # pass@1 0.95
    suite.makepyfile(test_bench=BENCH.replace("suite=True", 'suite=True, population="sampled"'))
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(passed=20)
    assert result.ret == pytest.ExitCode.OK
    (row,) = report(suite)["suites"]  # type: ignore[misc]
    assert row["gate"]["verdict"] == "passed" and row["gate"]["population"] == "sampled"
    assert "sampled cases" in row["gate"]["method"]
    result.stdout.fnmatch_lines(["*test_bench.py::test_bench [[]m[]] worst: 3 0/2"])


def test_a_suite_regression_is_found_case_by_case(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    suite.makepyfile(test_bench=BENCH.replace("pass_rate=0.8", "pass_rate=0.5"))
    gateway.add_model("m", "PASS")
    first = suite.runpytest("--llm-models=m", "--llm-report=base.json", *plugin_args)
    assert first.ret == pytest.ExitCode.OK
    gateway.add_model("m", wrong_on({1, 4, 6, 9, 12, 15, 17}))  # 7 of 20 cases now wrong
    args = ["--llm-models=m", "--llm-baseline=base.json", "--llm-report=r.json", "-k", "not 19"]
    result = suite.runpytest(*args, *plugin_args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the gate at 0.5 holds; the drop does not
    result.stdout.fnmatch_lines(
        [
            "REGRESSED suite test_bench.py::test_bench [[]m[]]: pass@1 100.0% -> 63.2% over 19 "
            "paired cases: 7 worse, 0 better, p=0.00781* (0 cases new, 1 gone)*",
            "  cases removed since the baseline: 19",
        ]
    )
    (paired,) = report(suite)["baseline"]["suites"]  # type: ignore[index]
    assert paired["regressed"] and paired["removed"] == ["19"] and paired["added"] == []
    assert report(suite)["baseline"]["rows"] == []  # type: ignore[index]
    only_threshold = suite.runpytest(*args, "--llm-fail-on=threshold", *plugin_args)
    assert only_threshold.ret == pytest.ExitCode.OK


def test_suite_marker_mistakes_are_usage_errors(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_bench=BENCH.replace("suite=True", 'population="sampled"'))
    result = suite.runpytest("--llm-models=m")
    result.stdout.fnmatch_lines(["*population= is about a suite gate; add suite=True*"])
    assert result.ret != pytest.ExitCode.OK
    suite.makepyfile(test_bench=BENCH.replace("suite=True", 'suite=True, population="all"'))
    result = suite.runpytest("--llm-models=m")
    result.stdout.fnmatch_lines(["*population='all' must be one of fixed, sampled*"])
    observed = 'suite=True, mode="observed", design="sequential"'
    suite.makepyfile(test_bench=BENCH.replace("suite=True", observed))
    result = suite.runpytest("--llm-models=m")
    result.stdout.fnmatch_lines(["*an observed suite needs every case and never stops*"])
    assert result.ret != pytest.ExitCode.OK


def test_a_suite_replays_case_by_case_from_the_cache(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", wrong_on({2, 5}))
    suite.makepyfile(test_bench=BENCH)
    first = suite.runpytest("--llm-models=m", "--llm-cache=write", "--llm-report=a.json")
    assert first.ret == pytest.ExitCode.OK
    sent = gateway.request_count()
    gateway.add_model("m", "FAIL")  # a replay that reached the gateway would fail the gate
    args = ("--llm-models=m", "--llm-cache=replay", "--llm-report=b.json", *plugin_args)
    again = suite.runpytest(*args)
    assert again.ret == pytest.ExitCode.OK and gateway.request_count() == sent
    gates = [report(suite, name)["suites"][0]["gate"] for name in ("a.json", "b.json")]  # type: ignore[index]
    assert gates[0]["rate"] == gates[1]["rate"] == 0.9


def test_a_suite_split_over_shards_is_judged_whole_after_merge(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", wrong_on({0, 1, 2, 3, 4, 5, 6, 7, 8}))  # wrong only in shard one
    suite.makepyfile(test_bench=BENCH.replace("pass_rate=0.8", "pass_rate=0.7"))
    first_half = " or ".join(f"[m-{i}]" for i in range(10))
    one = suite.runpytest("--llm-models=m", "-k", first_half, "--llm-report=one.json")
    two = suite.runpytest("--llm-models=m", "-k", f"not ({first_half})", "--llm-report=two.json")
    # Each shard judges its own half: 1/10 right fails, 10/10 right passes.
    assert (one.ret, two.ret) == (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.OK)
    merged = cli(suite.path, "merge", "one.json", "two.json", "-o", "all.json")
    assert merged.returncode == 0, merged.stderr
    (row,) = report(suite, "all.json")["suites"]  # type: ignore[misc]
    assert row["gate"]["cases"] == 20 and row["gate"]["rate"] == 0.55
    compared = cli(suite.path, "compare", "all.json")
    assert compared.returncode == 1 and "suite gates passed" in compared.stdout
