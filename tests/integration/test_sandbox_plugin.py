"""The `sandbox` fixture through the plugin: code metrics in the report, sandbox errors as
error samples, the unsafe mode flagged, with and without xdist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.testing import Cycle, FakeGateway

CODE_SUITE = """
import pytest
from pytest_llmeval import extract_code

TESTS = "def check(candidate):\\n    assert candidate(2, 3) == 5\\n"

@pytest.mark.llmeval(pass_rate=0.5, samples=10, mode="observed")
def test_add(llm, sandbox):
    code = extract_code(llm.chat("Write add(a, b)").text, "add")
    sandbox.run(code, TESTS, "add").check()

def test_plain_test_can_use_the_sandbox_too(sandbox):
    assert sandbox.run_io("print(input()[::-1])", [("abc", "cba")]).passed
"""
GOOD = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"
BROKEN = "```python\ndef add(a, b)\n    return a + b\n```"


def test_code_metrics_reach_the_report(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("coder", Cycle([GOOD, GOOD, WRONG, BROKEN, GOOD]))
    suite.makepyfile(test_codegen=CODE_SUITE)
    result = suite.runpytest("--llm-models=coder", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test*model*pass@1*pass@5*pass@10*syntax err*mean lines*hidden cases",
            "test_codegen.py::test_add*coder*60.0%*100.0%*100.0%*20.0%*2.0*-",
        ]
    )
    row = json.loads((suite.path / "report.json").read_text())["tests"][0]
    assert (row["passed"], row["failed"]) == (6, 4)
    code = row["code"]
    assert code["pass_at"] == {"1": pytest.approx(0.6), "5": 1.0, "10": 1.0}  # 4 failures < 5
    assert code["statuses"] == {"failed": 2, "passed": 6, "syntax_error": 2}
    assert code["syntax_error_rate"] == pytest.approx(0.2)
    assert code["unsafe_runs"] == 0
    statuses = {s["sandbox"][0]["status"] for s in row["samples"]}
    assert statuses == {"passed", "failed", "syntax_error"}


def test_a_broken_sandbox_run_is_an_error_sample_not_a_failure(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("coder", GOOD)
    suite.makepyfile(
        test_codegen="""
import pytest
from pytest_llmeval import extract_code

@pytest.mark.llmeval(pass_rate=0.5, samples=4)
def test_add(llm, sandbox):
    code = extract_code(llm.chat("Write add(a, b)").text, "add")
    # A function cannot cross to the candidate: the sandbox reports an error, not a verdict.
    sandbox.run(code, "assert add(len, 1) == 2\\n", "add").check()
"""
    )
    result = suite.runpytest("--llm-models=coder", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(errors=1)
    row = json.loads((suite.path / "report.json").read_text())["tests"][0]
    assert row["verdict"] == "error" and row["errors"] == row["run"]
    assert row["metrics"]["errors_by_cause"] == {"sandbox": row["run"]}


def test_unsafe_mode_is_flagged_in_the_report(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("coder", GOOD)
    suite.makepyfile(test_codegen=CODE_SUITE)
    result = suite.runpytest("--llm-models=coder", "--llm-sandbox=unsafe", "-n", "2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["WARNING: * sandbox runs were NOT isolated (--llm-sandbox=*"])


def test_limits_come_from_an_overridable_fixture(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
import pytest
from pytest_llmeval import Limits

@pytest.fixture(scope="session")
def sandbox_limits():
    return Limits(timeout_s=0.5)
"""
    )
    suite.makepyfile(
        test_slow="""
def test_slow(sandbox):
    result = sandbox.run("import time\\ndef f():\\n    time.sleep(5)\\n", "assert f() is None", "f")
    assert result.status == "timeout"
    assert result.duration_s < 3
"""
    )
    suite.runpytest().assert_outcomes(passed=1)


def test_bad_sandbox_option_is_a_usage_error(suite: pytest.Pytester, tmp_path: Path) -> None:
    result = suite.runpytest("--llm-sandbox=docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-sandbox: invalid choice: 'docker'*"])
