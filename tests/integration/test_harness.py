"""Through the plugin: the machinery's errors are error samples, the test's judging is a failure."""

from __future__ import annotations

import pytest

from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.testing import FakeGateway

HARNESS_SUITE = """
import asyncio, json
import pytest

@pytest.mark.llmeval(samples=4)
async def test_nested_loop(llm):
    await llm.achat("x")
    asyncio.get_event_loop().run_forever()

@pytest.mark.llmeval(samples=4)
def test_missing_fixture(llm, request):
    llm.chat("x")
    request.getfixturevalue("no_such_fixture")

@pytest.mark.llmeval(samples=4)
def test_judges_json(llm):
    json.loads(llm.chat("x").text)

@pytest.mark.llmeval(samples=4)
def test_fails_explicitly(llm):
    if llm.chat("x").text != "{}":
        pytest.fail("not the empty object")
"""


def test_machinery_errors_are_errors_and_the_tests_judging_is_a_failure(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(test_suite=HARNESS_SUITE)
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(failed=2, errors=2)
    rows = {r["test"].split("::")[1]: r for r in load_report(suite.path / "r.json")["tests"]}
    for name, origin in (("test_nested_loop", "asyncio"), ("test_missing_fixture", "_pytest")):
        row = rows[name]
        assert row["verdict"] == "error" and row["failed"] == 0, row
        assert {s["cause"] for s in row["samples"]} == {"harness"}
        assert all(
            f"(raised by {origin}, not by the test's checks)" in s["message"]
            for s in row["samples"]
        )
        assert row["samples"][0]["calls"], "the model's answers are kept"
    assert rows["test_judges_json"]["verdict"] == "failed"
    assert rows["test_judges_json"]["errors"] == 0
    assert rows["test_fails_explicitly"]["verdict"] == "failed"
