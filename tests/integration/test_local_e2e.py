"""End to end against the real llama-server, SmolLM2, Gemma and all-MiniLM-L6-v2 (installed by
`setup-local`).

Never skipped: on a machine without the build, this fails and says which command to run.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from pytest_llmeval.config import load_settings
from pytest_llmeval.local.models import model_file
from pytest_llmeval.local.server import SERVER_ENV, server_binary, start_servers, stop_servers
from pytest_llmeval.local.setup import (
    SMOKE_MODEL,
    X86_64,
    check_embedding_models,
    machine,
    smoke_test,
    unportable,
)

pytestmark = pytest.mark.local_model
ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_llama_server_runs_on_any_cpu_of_its_platform() -> None:
    """A build for the build machine's CPU (AVX-512, AMX) dies with SIGILL on other CPUs."""
    binary = server_binary(os.environ)
    smoke = smoke_test(binary, model_file(SMOKE_MODEL, ROOT))
    assert smoke.reply
    assert unportable(smoke.features, machine()) == [], smoke.features
    if machine() not in X86_64:
        return
    assert smoke.features.get("AVX2"), smoke.features
    objdump = shutil.which("objdump")
    libraries = sorted(binary.resolve().parent.glob("libggml-cpu*.so*"))
    assert objdump and libraries, "binutils' objdump and libggml-cpu are needed to check the code"
    code = subprocess.run(
        [objdump, "-d", str(libraries[0])], capture_output=True, text=True, check=True
    ).stdout
    assert "%zmm" not in code and "%tmm" not in code, "AVX-512 or AMX instructions in the build"


def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence_through_the_sdk() -> None:
    """The repo's `minilm-l6` on its own embedding server, through the real openai SDK."""
    model = load_settings(ROOT / "pyproject.toml", {}, models="minilm-l6").model("minilm-l6")
    (server,) = start_servers([model], ROOT, os.environ)
    try:
        command = server.command(server.port or 0)
        assert "--embeddings" in command and command[command.index("--pooling") + 1] == "mean"
        client = openai.OpenAI(base_url=server.base_url, api_key="no-key", max_retries=0)
        reply = client.embeddings.create(
            model="minilm-l6",
            input=[
                "The invoice was paid yesterday.",
                "Yesterday the bill was settled.",
                "Penguins cannot fly.",
            ],
        )
    finally:
        stop_servers([server])
    invoice, bill, penguins = (item.embedding for item in reply.data)
    assert len(invoice) == 384
    assert cosine(invoice, bill) > cosine(invoice, penguins) + 0.3
    assert reply.usage.prompt_tokens > 0


def test_setup_local_checks_the_bundled_embedding_model() -> None:
    (line,) = check_embedding_models(server_binary(os.environ))
    assert line.startswith(
        "llmeval: ok: embedding model 'all-minilm-l6-v2' (all-MiniLM-L6-v2-0.1.0-f32.gguf) "
        "returned 384-dimensional vectors, cosine 0.74 for a paraphrase and "
    )


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_smollm2_answers_through_the_plugin_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    pytester.makefile(".toml", llmeval='[models.smollm2]\nlocal = "smollm2-135m-instruct"\n')
    pytester.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=6, mode="observed")
def test_chat(llm):
    completion = llm.chat("What is the capital of France?", max_tokens=24, temperature=0.3)
    assert completion.text.strip()
    assert completion.usage.completion_tokens > 0 and completion.latency_s > 0

async def test_async(llm):
    assert (await llm.achat("Say hello.", max_tokens=8)).text.strip()
"""
    )
    result = pytester.runpytest("--llm-models=smollm2", "--llm-report=r.json", "-n", "2")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        ["llmeval: llama-server for 'smollm2' (SmolLM2-135M-Instruct.Q4_1.gguf) ready at *"]
    )
    rows = {r["test"]: r for r in json.loads((pytester.path / "r.json").read_text())["tests"]}
    chat = rows["test_suite.py::test_chat"]
    assert (chat["passed"], chat["errors"], chat["run"]) == (6, 0, 6)
    assert chat["metrics"]["output_tokens"] > 0 and chat["metrics"]["input_tokens"] > 0


@pytest.mark.slow
def test_humaneval_example_runs_gemma_completions_in_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's HumanEval example with the local base model: completions reach the sandbox."""
    monkeypatch.delenv(SERVER_ENV, raising=False)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "examples/test_humaneval.py",
            "--llm-models=gemma-3-270m", "--humaneval-tasks=2", "--llm-samples=2",
            f"--llm-report={report}", "-p", "no:cacheprovider",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # A 270M base model is far below the example's suite gate (pass@1 >= 0.9): the run fails on
    # the gate alone, never on a case (cases only observe).
    gate_failed = "FAILED suite examples/test_humaneval.py::test_humaneval" in proc.stdout
    assert proc.returncode == (1 if gate_failed else 0), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 passed" in proc.stdout
    rows = json.loads(report.read_text())["tests"]
    assert [r["test"].rsplit("[", 1)[1] for r in rows] == ["HumanEval/0]", "HumanEval/1]"]
    runs = [s["sandbox"][-1] for r in rows for s in r["samples"]]
    assert len(runs) == 4 and all(run["isolation"] == "bwrap" for run in runs)
    assert {run["status"] for run in runs} <= {"passed", "failed", "syntax_error", "timeout"}
    assert all(r["code"]["mean_lines"] > 0 for r in rows)
