"""The line between the model's failures and the harness's errors."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import _pytest
import pluggy
import pytest

import pytest_llmeval
from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.testing import FakeGateway
from pytest_llmeval.verdict.origin import Machinery


def raised(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


MACHINERY = Machinery.of([_pytest, pluggy, pytest_llmeval], [])


def test_the_tests_own_code_is_not_machinery() -> None:
    assert MACHINERY.origin(raised(lambda: json.loads("not json"))) is None
    assert MACHINERY.origin(raised(lambda: {}["missing"])) is None
    assert MACHINERY.origin(raised(lambda: pytest.fail("wrong answer"))) is None


def test_pytest_pluggy_plugins_and_the_event_loop_are() -> None:
    def nested_loop() -> None:
        async def inner() -> None:
            asyncio.run(asyncio.sleep(0))

        asyncio.run(inner())

    assert MACHINERY.origin(raised(nested_loop)) == "asyncio"
    assert MACHINERY.origin(raised(lambda: pluggy.HookimplMarker("x")(1))) == "pluggy"


def test_a_plugin_module_calling_pytest_fail_is_machinery(tmp_path: Path) -> None:
    """As pytest-timeout does from its SIGALRM handler."""
    (tmp_path / "pytest_fake_timeout.py").write_text(
        "import pytest\n\ndef fire():\n    pytest.fail('Timeout >1.0s')\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        plugin = importlib.import_module("pytest_fake_timeout")
    finally:
        sys.path.remove(str(tmp_path))
    machinery = Machinery.of([], [plugin])
    assert machinery.origin(raised(plugin.fire)) == "pytest_fake_timeout"
    assert machinery.origin(raised(lambda: pytest.fail("wrong answer"))) is None


def test_a_conftest_is_the_users_code(tmp_path: Path) -> None:
    module = ModuleType("conftest")
    module.__file__ = str(tmp_path / "conftest.py")
    assert Machinery.of([], [module]).files == {}


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
