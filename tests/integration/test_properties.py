"""`@given` tests that call the model through `llm`: health check, deadline, cost per sample."""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmeval.testing import FakeGateway, RecordedRequest


def adder(slip_above: int | None = None) -> object:
    def reply(request: RecordedRequest) -> str:
        a, b = map(int, re.findall(r"\d+", request.prompt))
        wrong = slip_above is not None and a > slip_above
        return str(a + b + (1 if wrong else 0))

    return reply


PROPERTY = """
import pytest
from hypothesis import given, strategies as st
from pytest_llmeval.properties import llm_settings

@pytest.mark.llmeval(pass_rate=0.5, samples=3, mode="observed")
@llm_settings(max_examples=5)
@given(a=st.integers(0, 50), b=st.integers(0, 50))
def test_sum(llm, a, b):
    assert llm.chat(f"What is {a} + {b}?").text.strip() == str(a + b)
"""


def test_given_test_runs_its_examples_in_every_sample(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", adder())
    gateway.latency_s = 0.3  # over Hypothesis's default 200 ms deadline
    suite.makepyfile(test_prop=PROPERTY)
    result = suite.runpytest("--llm-models=m", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(passed=1)
    [row] = json.loads((suite.path / "report.json").read_text())["tests"]
    assert row["passed"] == 3
    assert all(1 <= len(s["calls"]) <= 5 for s in row["samples"])
    assert gateway.request_count() == sum(len(s["calls"]) for s in row["samples"])


def test_a_falsified_property_is_a_failed_sample(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", adder(slip_above=-1))
    suite.makepyfile(test_prop=PROPERTY)
    result = suite.runpytest("--llm-models=m", "--llm-report=report.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*first failure: AssertionError*"])
    [row] = json.loads((suite.path / "report.json").read_text())["tests"]
    assert row["failed"] == 3 and row["errors"] == 0
    assert all(len(s["calls"]) <= 5 for s in row["samples"])  # no shrinking calls


def test_without_the_settings_hypothesis_names_the_health_check(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", adder())
    suite.makepyfile(test_prop=PROPERTY.replace("@llm_settings(max_examples=5)\n", ""))
    result = suite.runpytest("--llm-models=m")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*uses a function-scoped fixture 'llm'*"])
    assert gateway.request_count() == 0
