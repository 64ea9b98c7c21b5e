"""Managed local servers through the plugin: one per run, shared by workers, none orphaned."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processes import default_sigint, wait_dead

from pytest_llmeval.calls.shared_file import alive
from pytest_llmeval.local.server import (
    SERVER_ENV,
)

LOCAL_SUITE = """
import pytest

@pytest.mark.llmeval(samples=4)
def test_local(llm, llm_model):
    assert llm_model.base_url.startswith("http://127.0.0.1:")
    assert llm.chat("hi").text == "PASS"

def test_other(llm):
    assert llm.chat("hi").text == "PASS"
"""


@pytest.fixture
def local_suite(
    pytester: pytest.Pytester, standin: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    log = pytester.path / "starts.log"
    monkeypatch.setenv(SERVER_ENV, str(standin))
    monkeypatch.setenv("STANDIN_LOG", str(log))
    pytester.makefile(".toml", llmeval=f'[models.tiny]\nlocal = "{gguf}"\n')
    pytester.makepyfile(test_suite=LOCAL_SUITE)
    return log


def test_plugin_starts_one_server_for_the_whole_run(
    pytester: pytest.Pytester, local_suite: Path, plugin_args: list[str]
) -> None:
    result = pytester.runpytest("--llm-models=tiny", *plugin_args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["llmeval: llama-server for 'tiny' (tiny.gguf) ready at http://127.0.0.1:*"]
    )
    starts = local_suite.read_text().splitlines()
    assert len(starts) == 1  # in the controller only, never one per worker
    assert wait_dead(int(starts[0].split()[0]))


def test_no_server_when_no_local_model_is_selected(
    pytester: pytest.Pytester, local_suite: Path
) -> None:
    pytester.runpytest()
    pytester.runpytest("--llm-models=tiny", "--collect-only")
    assert not local_suite.exists()


def test_startup_failure_is_a_usage_error(
    pytester: pytest.Pytester, local_suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "crash")
    result = pytester.runpytest("--llm-models=tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: llama-server for 'tiny' exited with status 1*", "*invalid magic*"]
    )


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_no_orphan_server_when_pytest_is_interrupted_or_killed(
    pytester: pytest.Pytester, local_suite: Path, how: signal.Signals
) -> None:
    pytester.makepyfile(
        test_suite=textwrap.dedent(
            """
            import time

            def test_slow(llm):
                time.sleep(60)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--llm-models=tiny", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=default_sigint,
    )
    deadline = time.monotonic() + 30
    while not local_suite.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the server is up and the test is sleeping
    server_pid = int(local_suite.read_text().split()[0])
    assert alive(server_pid)
    proc.send_signal(how)
    proc.wait(timeout=30)
    assert wait_dead(server_pid)


def test_a_crash_at_start_is_one_usage_error_with_the_fix_and_no_traceback(
    pytester: pytest.Pytester, local_suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "sigill")
    result = pytester.runpytest_subprocess("--llm-models=tiny", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: llama-server for 'tiny' was killed by SIGILL (Illegal instruction) while "
            "starting on port *. llama-server was compiled for another CPU; run "
            "`python -m pytest_llmeval setup-local --rebuild` to build it for this one. "
            "The last lines of its log:",
            "*CPU_REPACK model buffer size*",
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and output.count("killed by SIGILL") == 1


def test_a_binary_that_cannot_run_is_a_usage_error_not_a_crash(
    pytester: pytest.Pytester, local_suite: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "not-a-program"
    broken.write_text("just text, no interpreter line\n")
    broken.chmod(0o755)
    monkeypatch.setenv(SERVER_ENV, str(broken))
    result = pytester.runpytest("--llm-models=tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: cannot run *not-a-program: *python -m pytest_llmeval setup-local*"]
    )


def test_local_models_need_no_api_key(
    pytester: pytest.Pytester, local_suite: Path, gguf: Path
) -> None:
    pytester.makefile(
        ".toml", llmeval=f'api_key_env = "UNSET_GATEWAY_KEY"\n[models.tiny]\nlocal = "{gguf}"\n'
    )
    pytester.runpytest("--llm-models=tiny").assert_outcomes(passed=2)
