"""The plugin end to end: pytester suites against the fake gateway, with and without xdist."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.testing import Choice, Cycle, FakeGateway, HTTPError, Stall

ANSWER_SUITE = """
import pytest

@pytest.mark.llmeval(pass_rate=0.8, samples=20)
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS").text

def test_plain():
    assert 1 + 1 == 2
"""


def load_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["nodeid"]: row for row in report["tests"]}


def test_each_model_becomes_a_test_and_gets_a_verdict(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("good", "PASS")
    gateway.add_model("bad", "FAIL")
    suite.makepyfile(test_suite=ANSWER_SUITE)
    result = suite.runpytest("--llm-models=good,bad", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= llmeval =*",
            "test*model*pass/valid*err*rate*CI*need*verdict*stop*p50 s*tok in/out*cost $",
            "test_suite.py::test_answer*bad*0/*0.0%*FAILED*seq */20*",
            "test_suite.py::test_answer*good*/*0*100.0%*PASSED*",
            "model*tests*passed*failed*error*",
            "*FAILED test_suite.py::test_answer[[]bad[]] - Failed: llmeval: 0/* samples passed*",
        ]
    )
    report = load_report(suite.path / "report.json")
    by_id = rows(report)
    bad, good = by_id["test_suite.py::test_answer[bad]"], by_id["test_suite.py::test_answer[good]"]
    assert bad["verdict"] == "failed" and bad["stop_reason"] == "settled"
    assert good["verdict"] == "passed" and good["passed"] == good["run"] >= good["decision"]["at"]
    assert good["decision"]["at"] < 13  # fixed-N with curtailment needs 13 passes
    assert good["run"] + bad["run"] == gateway.request_count()
    assert report["totals"]["good"]["passed"] == 1 and report["totals"]["bad"]["failed"] == 1


def test_report_keeps_every_sample_and_no_secret(
    suite: pytest.Pytester,
    gateway: FakeGateway,
    plugin_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-test-DO-NOT-LEAK-123456"
    monkeypatch.setenv("GATEWAY_KEY", secret)
    gateway.add_model("echo-model", "PASS")
    suite.makefile(
        ".toml",
        llmeval=f"""
base_url = "{gateway.base_url}"
api_key_env = "GATEWAY_KEY"
retries = 0

[models.m]
model = "echo-model"
input_cost_per_mtok = 1.0
output_cost_per_mtok = 2.0
""",
    )
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.5, samples=6, mode="observed")
def test_answer(llm):
    assert "PASS" in llm.chat("Say PASS", temperature=0).text
"""
    )
    result = suite.runpytest(
        "--llm-models=m", "--llm-report=out/report.json", "--llm-concurrency=1", *plugin_args
    )
    result.assert_outcomes(passed=1)
    text = (suite.path / "out" / "report.json").read_text()
    assert secret not in text and secret not in result.stdout.str()
    report = json.loads(text)
    assert report["schema"] == "pytest-llmeval/report" and report["version"] == 1
    assert report["models"]["m"] == {
        "name": "m",
        "model_id": "echo-model",
        "api": "chat",
        "input_cost_per_mtok": 1.0,
        "output_cost_per_mtok": 2.0,
        "cached_input_cost_per_mtok": None,
        "price_source": "config",
    }
    row = report["tests"][0]
    assert row["plan"] == {
        "pass_rate": 0.5,
        "samples": 6,
        "confidence": 0.95,
        "mode": "observed",
        "marked": True,
    }
    assert row["run"] == len(row["samples"]) == 3  # observed 0.5 of 6 is settled by 3 passes
    sample = row["samples"][0]
    assert sample["outcome"] == "passed" and sample["error_type"] is None
    assert sample["input_tokens"] == 2 and sample["output_tokens"] == 1
    assert sample["cost_usd"] == pytest.approx((2 * 1.0 + 1 * 2.0) / 1e6)
    assert sample["latency_s"] > 0 and len(sample["fingerprints"]) == 1
    assert row["fingerprints"] == sample["fingerprints"]
    assert row["metrics"]["latency_p50_s"] > 0 and row["metrics"]["cost_usd"] == pytest.approx(
        3 * 4e-6
    )
    assert all(r.headers.get("authorization") is None for r in gateway.requests)


def test_error_samples_are_not_failures(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("flaky", "PASS")
    gateway.inject(HTTPError(500), times=3, model="flaky")
    suite.makepyfile(test_suite=ANSWER_SUITE)
    result = suite.runpytest(
        "--llm-models=flaky", "--llm-report=r.json", "--llm-concurrency=1", *plugin_args
    )
    result.assert_outcomes(passed=2)
    row = load_report(suite.path / "r.json")["tests"][0]
    assert row["errors"] == 3 and row["failed"] == 0 and row["verdict"] == "passed"
    errors = [s for s in row["samples"] if s["outcome"] == "error"]
    assert {s["error_type"] for s in errors} == {"InternalServerError"}
    assert row["passed"] + row["failed"] + row["errors"] == row["run"]


def test_too_many_errors_make_the_test_error(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("down", "PASS")
    gateway.inject(HTTPError(503), times=100, model="down")
    suite.makepyfile(test_suite=ANSWER_SUITE.replace("samples=20", "samples=4"))
    result = suite.runpytest("--llm-models=down", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at call of test_answer[[]down[]]*",
            "llmeval: only 0 of 4 samples were valid (4 errors)*",
        ]
    )
    assert "first error: openai.InternalServerError" in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    row = load_report(suite.path / "r.json")["tests"][0]
    assert row["verdict"] == "error" and row["stop_reason"] == "errors"


def test_no_models_skips_llm_tests_with_a_reason(
    suite: pytest.Pytester, plugin_args: list[str]
) -> None:
    suite.makepyfile(test_suite=ANSWER_SUITE + "\ndef test_unmarked(llm):\n    llm.chat('hi')\n")
    result = suite.runpytest("-rs", *plugin_args)
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*no models named: pass --llm-models=NAME*"])
    assert "= llmeval =" not in result.stdout.str()


def test_default_models_from_config_and_marker_filter(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("a", "PASS")
    gateway.add_model("b", "PASS")
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\nmodels = ["a", "b"]\n')
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(models=["b"], samples=2)
def test_only_b(llm, llm_model):
    assert llm_model.name == "b"
    assert llm.chat("x").text == "PASS"

def test_both(llm):
    assert llm.chat("x").text == "PASS"
"""
    )
    result = suite.runpytest("-v", *plugin_args)
    result.assert_outcomes(passed=3)
    assert "test_only_b[b]" in result.stdout.str()
    assert "test_only_b[a]" not in result.stdout.str()


def test_per_model_pass_rate_and_samples_override(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("strong", Choice({"PASS": 0.9, "FAIL": 0.1}))
    gateway.add_model("weak", "FAIL")
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate={"strong": 0.5, "weak": 0.0}, samples=50, mode="observed")
def test_answer(llm):
    assert llm.chat("x").text == "PASS"
"""
    )
    result = suite.runpytest(
        "--llm-models=strong,weak", "--llm-samples=4", "--llm-report=r.json", *plugin_args
    )
    result.assert_outcomes(passed=2)
    by_model = {r["model"]: r for r in load_report(suite.path / "r.json")["tests"]}
    assert (
        by_model["strong"]["plan"]["samples"] == 4
        and by_model["strong"]["plan"]["pass_rate"] == 0.5
    )
    assert by_model["weak"]["plan"]["pass_rate"] == 0.0


def test_unmarked_test_runs_once_and_shows_the_real_assertion(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "FAIL")
    suite.makepyfile(
        test_suite="""
def test_once(llm):
    reply = llm.chat("Say PASS").text
    assert reply == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=m", *plugin_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 'FAIL' == 'PASS'*"])
    assert gateway.request_count("m") == 1


def test_async_bodies_run_without_an_asyncio_plugin(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", Cycle(["FAIL", "FAIL", "PASS"]))
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.3, samples=12, mode="observed")
async def test_async(llm):
    completion = await llm.achat("Say PASS")
    assert completion.text == "PASS"
"""
    )
    result = suite.runpytest(
        "--llm-models=m", "--llm-report=r.json", "-p", "no:asyncio", *plugin_args
    )
    result.assert_outcomes(passed=1)
    row = load_report(suite.path / "r.json")["tests"][0]
    assert row["run"] == 12 and (row["passed"], row["failed"]) == (4, 8)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("pass_rate=1.5", "pass_rate=1.5 must be a number in [[]0, 1[]]"),
        ("samples=0", "samples=0 must be an integer >= 1"),
        ("sample=5", "unknown argument 'sample'"),
        ("mode='strict'", "mode='strict' must be one of not_worse, proven, observed"),
        ("pass_rate={'other': 0.5}", "pass_rate has no entry for model 'm'*"),
    ],
)
def test_bad_marker_is_a_clear_collection_error(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str], marker: str, expected: str
) -> None:
    suite.makepyfile(
        test_suite=f"""
import pytest

@pytest.mark.llmeval({marker})
def test_x(llm):
    pass
"""
    )
    result = suite.runpytest("--llm-models=m", *plugin_args)
    result.stdout.fnmatch_lines([f"test_suite.py::test_x: llmeval marker*{expected}*"])
    assert "Traceback" not in result.stdout.str() and "def test_x" not in result.stdout.str()
    assert result.ret != pytest.ExitCode.OK


def test_marker_without_llm_fixture(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_suite="import pytest\n\n@pytest.mark.llmeval(samples=3)\ndef test_x():\n    pass\n"
    )
    result = suite.runpytest("--llm-models=m")
    result.stdout.fnmatch_lines(
        ["*test_suite.py::test_x: the llmeval marker needs the llm or llm_model fixture*"]
    )


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        ("bse_url = 'x'\n", [], "ERROR: *llmeval.toml: unknown key 'bse_url'*"),
        (
            "[models.gpt-4o]\n",
            ["--llm-models=gpt4o"],
            "ERROR: --llm-models: unknown model 'gpt4o'*gpt-4o",
        ),
        ("", ["--llm-config=missing.toml"], "ERROR: --llm-config: no such file: missing.toml"),
        ("", ["--llm-samples=0"], "*--llm-samples: '0' must be >= 1"),
    ],
)
def test_bad_configuration_is_a_usage_error(
    pytester: pytest.Pytester, config: str, args: list[str], expected: str, plugin_args: list[str]
) -> None:
    pytester.makefile(".toml", llmeval=config)
    pytester.makepyfile(test_suite="def test_x(llm):\n    pass\n")
    result = pytester.runpytest(*args, *plugin_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
    assert "Traceback" not in result.stderr.str()


def test_a_missing_configured_key_is_one_usage_error_before_any_test(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\napi_key_env = "NO_SUCH_KEY_VAR"\n'
        '[models.m]\n[models.n]\n[models.b]\napi_key_env = "NO_SUCH_B_KEY"\n',
    )
    suite.makepyfile(test_suite="def test_x(llm):\n    pass\n\ndef test_y(llm):\n    pass\n")
    result = suite.runpytest_subprocess("--llm-models=m,n,b", *plugin_args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count("NO_SUCH_KEY_VAR") == 1 and err.count("NO_SUCH_B_KEY") == 1, err
    result.stderr.fnmatch_lines(
        [
            "ERROR: environment variable NO_SUCH_KEY_VAR is not set (api_key_env in "
            "*llmeval.toml; needed by m, n); export it before running",
            "environment variable NO_SUCH_B_KEY is not set ([[]models.b] api_key_env in "
            "*llmeval.toml; needed by b); export it before running",
        ]
    )
    assert "Traceback" not in err and "During handling" not in err
    assert gateway.request_count() == 0


def test_results_are_identical_with_and_without_xdist(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("good", "PASS")
    gateway.add_model("bad", "FAIL")
    suite.makepyfile(
        test_a=ANSWER_SUITE,
        test_b=ANSWER_SUITE.replace("test_answer", "test_other").replace("0.8", "0.3"),
    )

    def run(*extra: str) -> list[tuple[Any, ...]]:
        suite.runpytest(
            "--llm-models=good,bad", "--llm-concurrency=1", "--llm-report=r.json", *extra
        )
        report = load_report(suite.path / "r.json")
        return [
            (
                r["nodeid"],
                r["verdict"],
                r["passed"],
                r["failed"],
                r["errors"],
                r["run"],
                r["stop_reason"],
                [s["outcome"] for s in r["samples"]],
                r["fingerprints"],
            )
            for r in report["tests"]
        ]

    serial = run()
    assert len(serial) == 4
    assert run("-n", "2") == serial


def test_crashed_worker_is_an_error_row_not_a_lost_test(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(
        test_suite="""
import os
import pytest

@pytest.mark.llmeval(samples=3)
def test_crash(llm):
    llm.chat("x")
    os._exit(3)

def test_fine(llm):
    assert llm.chat("x").text == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=m", "-n", "2", "--llm-report=r.json")
    by_id = rows(load_report(suite.path / "r.json"))
    assert by_id["test_suite.py::test_crash[m]"]["verdict"] == "error"
    assert by_id["test_suite.py::test_crash[m]"]["stop_reason"] == "crashed"
    assert by_id["test_suite.py::test_fine[m]"]["verdict"] == "passed"
    assert result.ret != pytest.ExitCode.OK


def test_works_without_xdist_installed(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("good", "PASS")
    suite.makepyfile(test_suite=ANSWER_SUITE)
    result = suite.runpytest("--llm-models=good", "-p", "no:xdist")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*= llmeval =*", "test_suite.py::test_answer*good*PASSED*"])


def test_anyio_marked_async_tests_are_still_sampled(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(
        test_suite="""
import pytest

pytestmark = pytest.mark.anyio

@pytest.mark.llmeval(samples=5)
async def test_async(llm):
    assert (await llm.achat("x")).text == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", *plugin_args)
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1
    if outcomes.get("failed"):  # anyio also offers trio here: refused clearly, not run once
        result.stdout.fnmatch_lines(["*the anyio backend 'trio' is not supported*"])
    rows = load_report(suite.path / "r.json")["tests"]
    assert [r["run"] for r in rows if r["verdict"] == "passed"] == [5]


def test_xfail_and_skip_inside_a_body_are_not_failed_samples(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=5)
def test_xfail(llm):
    llm.chat("x")
    pytest.xfail("known gap")

@pytest.mark.llmeval(samples=5)
def test_skip(llm):
    pytest.skip("not today")
"""
    )
    result = suite.runpytest("--llm-models=m")
    result.assert_outcomes(xfailed=1, skipped=1)


def test_calling_the_wrong_endpoint_fails_the_test_not_the_model(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("base", "x")
    suite.makefile(
        ".toml", llmeval=f'base_url = "{gateway.base_url}"\n[models.base]\napi = "completion"\n'
    )
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=5)
def test_x(llm):
    llm.chat("hello")
"""
    )
    result = suite.runpytest("--llm-models=base", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*LLMUsageError: model 'base' is configured with api='completion'*"]
    )
    row = load_report(suite.path / "r.json")["tests"][0]
    assert row["verdict"] == "error" and row["stop_reason"] == "no samples"
    assert gateway.request_count() == 0


def test_body_hidden_behind_a_sync_decorator_is_refused(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "FAIL")
    suite.makepyfile(
        test_suite="""
import functools
import pytest

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper

@pytest.mark.llmeval(samples=5)
@logged
async def test_x(llm):
    assert (await llm.achat("x")).text == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=m")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*BodyError: the test body returned an awaitable*"])


def test_impossible_proven_marker_and_toothless_gate(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.9, samples=20, mode="proven")
def test_proven(llm):
    pass
"""
    )
    result = suite.runpytest("--llm-models=m")
    result.stdout.fnmatch_lines(
        [
            "*test_proven[[]m[]]: llmeval marker mode='proven' can never pass with samples=20*"
            "use samples >= 29"
        ]
    )
    assert "During handling" not in result.stdout.str()
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(pass_rate=0.8, samples=1)
def test_toothless(llm):
    pass
"""
    )
    result = suite.runpytest("--llm-models=m", "--collect-only")
    result.stdout.fnmatch_lines(
        ["*test_toothless[[]m[]]: llmeval marker can never fail with samples=1*"]
    )


def test_api_key_in_an_error_body_is_redacted_everywhere(
    suite: pytest.Pytester, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    gateway.add_model("m", "PASS")
    gateway.inject(HTTPError(401, message=f"Invalid API key: {secret}"), times=10)
    suite.makepyfile(
        test_suite="""
import pytest

def test_once(llm):
    llm.chat("x")

@pytest.mark.llmeval(samples=2)
def test_marked(llm):
    llm.chat("x")
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", "--junitxml=j.xml", "-l")
    result.assert_outcomes(errors=2)
    assert "Invalid API key: ***" in result.stdout.str()
    for text in (
        result.stdout.str(),
        (suite.path / "r.json").read_text(),
        (suite.path / "j.xml").read_text(),
    ):
        assert secret not in text


def test_ctrl_c_ends_the_run_while_requests_are_in_flight(
    suite: pytest.Pytester, gateway: FakeGateway, start_pytest: Callable[..., Any]
) -> None:
    gateway.add_model("m", "PASS")
    gateway.inject(Stall(120), times=8)
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=8)
def test_slow(llm):
    llm.chat("x")
"""
    )
    proc = start_pytest(
        "--llm-models=m", requests=8, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert gateway.request_count() == 8
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)  # the stalled requests would hold it for 120 s
    assert "KeyboardInterrupt" in out


def test_marker_api_selects_models_by_endpoint(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("chatty", "PASS")
    gateway.add_model("base", "    return a + b")
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\n'
        '[models.chatty]\n[models.base]\napi = "completion"\n',
    )
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(api="completion", samples=2)
def test_code(llm):
    assert "return" in llm.complete("def add(a, b):\\n").text

@pytest.mark.llmeval(api="chat", samples=2)
def test_chat(llm):
    assert llm.chat("x").text == "PASS"
"""
    )
    result = suite.runpytest("--llm-models=chatty,base", "-v")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "test_code[base]" in out and "test_chat[chatty]" in out
    assert "test_code[chatty]" not in out and "test_chat[base]" not in out


def test_a_param_mark_overrides_the_function_marker_per_case(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")
    suite.makepyfile(
        test_cases="""
import pytest

@pytest.mark.llmeval(pass_rate=0.9, samples=3)
@pytest.mark.parametrize("x", [1, pytest.param(2, marks=pytest.mark.llmeval(pass_rate=0.2))])
def test_x(llm, x):
    assert "PASS" in llm.chat("Say PASS").text
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=report.json", *plugin_args)
    result.assert_outcomes(passed=2)
    plans = {r["nodeid"]: r["plan"] for r in load_report(suite.path / "report.json")["tests"]}
    assert plans["test_cases.py::test_x[m-1]"]["pass_rate"] == 0.9
    assert plans["test_cases.py::test_x[m-2]"]["pass_rate"] == 0.2
    assert plans["test_cases.py::test_x[m-2]"]["samples"] == 3  # kept from the function
