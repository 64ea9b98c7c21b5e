"""Shared fixtures: one fake gateway for the whole session, reset per test."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import default_sigint

from pytest_llmeval.local.server import LocalServer
from pytest_llmeval.testing import FakeGateway

pytest_plugins = ["pytester"]

# pytester's in-process runs drop the modules first imported inside them. Import the HTTP stack
# here, so that httpx's cached map of httpcore's exception classes never outlives the classes
# (else a later test sees raw httpcore errors the SDK does not recognise). numpy too: the SDK
# decodes embeddings with it when installed, and numpy cannot be imported twice in a process.
for _module in ("openai", "httpcore2", "httpcore", "numpy"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)


@pytest.fixture(scope="session")
def gateway_session() -> Iterator[FakeGateway]:
    with FakeGateway(seed=7) as gateway:
        yield gateway


@pytest.fixture
def gateway(gateway_session: FakeGateway) -> FakeGateway:
    """The fake gateway with no models, faults or recorded requests."""
    gateway_session.reset()
    gateway_session.latency_s = 0.0
    return gateway_session


@pytest.fixture(params=[[], ["-n", "0"], ["-n", "2"]], ids=["serial", "n0", "xdist"])
def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    """Integration tests run in-process, with xdist loaded but idle, and across two workers."""
    return list(request.param)


@pytest.fixture
def suite(pytester: pytest.Pytester, gateway: FakeGateway) -> pytest.Pytester:
    """A pytester project whose llmeval.toml points at the fake gateway."""
    pytester.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n')
    return pytester


@pytest.fixture
def start_pytest(
    suite: pytest.Pytester, gateway: FakeGateway
) -> Callable[..., subprocess.Popen[str]]:
    """Start pytest on the suite in a subprocess; return once the gateway has `requests`."""

    def start(*args: str, requests: int, **popen: Any) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        proc = subprocess.Popen(
            command, cwd=suite.path, text=True, preexec_fn=default_sigint, **popen
        )
        deadline = time.monotonic() + 60
        while gateway.request_count() < requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.request_count() >= requests
        return proc

    return start


STANDIN = Path(__file__).with_name("standin_llama_server.py")


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    """An executable stand-in for llama-server: same flags, serves the fake gateway, and
    misbehaves as $STANDIN_MODE says (bind, bind-once, crash, sigill, hang)."""
    path = tmp_path / "llama-server"
    path.write_text(f"#!{sys.executable}\n" + STANDIN.read_text())
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
