"""Managed local servers through the plugin: one per run, shared by workers, none orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import default_sigint

from pytest_llmeval.local.server import (
    SERVER_ENV,
    LocalServer,
)

STANDIN = """\
#!{python}
'''Stand-in for llama-server: same flags, serves the fake gateway, misbehaves on request.'''
import argparse, os, sys, time
from pathlib import Path
from pytest_llmeval.testing import FakeGateway


parser = argparse.ArgumentParser()
for flag in ("--model", "--host", "--port", "--parallel", "--ctx-size", "--threads", "--alias"):
    parser.add_argument(flag)
parser.add_argument("--no-webui", action="store_true")
parser.add_argument("--offline", action="store_true")
args = parser.parse_args()
log = os.environ.get("STANDIN_LOG")
if log:
    with open(log, "a") as handle:
        handle.write(f"{{os.getpid()}} {{args.port}} {{args.model}}\\n")
mode = os.environ.get("STANDIN_MODE", "ok")
once = Path(os.environ.get("STANDIN_ONCE", "/nonexistent"))
if mode == "bind-once" and not once.exists():
    once.write_text("failed once")
    mode = "bind"
if mode == "bind":
    print(f"couldn't bind HTTP server socket, hostname: 127.0.0.1, port: {{args.port}}", flush=True)
    sys.exit(1)
if mode == "crash":
    print("error: failed to load model: invalid magic", flush=True)
    sys.exit(1)
if mode == "sigill":
    import resource, signal
    print("load_tensors: CPU_REPACK model buffer size = 60.00 MiB", flush=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGILL)
time.sleep(float(os.environ.get("STANDIN_DELAY", "0")))
if mode == "hang":
    time.sleep(3600)
gateway = FakeGateway(port=int(args.port)).start()
gateway.add_model(args.alias, "PASS")
print("server is listening", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    path = tmp_path / "llama-server"
    path.write_text(STANDIN.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def server(standin: Path, gguf: Path) -> Iterator[LocalServer]:
    server = LocalServer(name="tiny", binary=standin, model=gguf, startup_timeout=20)
    yield server
    server.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def wait_dead(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


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
