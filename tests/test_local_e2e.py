"""End to end against the real llama-server and SmolLM2 (installed by `setup-local`).

Never skipped: on a machine without the build, this fails and says which command to run.
"""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.local import SERVER_ENV

pytestmark = pytest.mark.local_model


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
