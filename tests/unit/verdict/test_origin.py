"""Where an exception came from: the test's judging of the answer, or the machinery around it."""

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
            nested = asyncio.sleep(0)
            try:
                asyncio.run(nested)  # raises: a loop is running
            finally:
                nested.close()  # never started: no "never awaited" warning

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
