"""`similar` through the plugin: cosine similarity of embeddings from the run's embedding model
on the fake gateway, its calls counted and priced apart from the model's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_llmeval.testing import FakeGateway

ANSWER = "The cat sat on the mat."
CLOSE = "The cat sat on the red mat today."  # cosine 0.91 with the answer (hashed features)
FAR = "Quarterly revenue grew by five percent."  # cosine 0.08

SIMILAR = f"""
import pytest

@pytest.mark.llmeval(samples=4, mode="observed")
def test_close(llm, similar):
    assert similar(llm.chat("Where is the cat?").text, {CLOSE!r}) > 0.8

@pytest.mark.llmeval(samples=4, mode="observed")
def test_far(llm, similar):
    assert similar(llm.chat("Where is the cat?").text, {FAR!r}) > 0.8
"""

MODELS = """
[models.m]
input_cost_per_mtok = 1.0

[models.emb]
input_cost_per_mtok = 0.5
"""


def configure(suite: pytest.Pytester, gateway: FakeGateway, top: str = "") -> None:
    text = f'base_url = "{gateway.base_url}"\nretries = 0\n{top}\n{MODELS}'
    suite.makefile(".toml", llmeval=text)


def rows(suite: pytest.Pytester) -> dict[str, dict[str, Any]]:
    return {row["test"]: row for row in json.loads((suite.path / "r.json").read_text())["tests"]}


def test_similar_scores_meaning_and_counts_the_embedding_calls_apart(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", ANSWER)
    gateway.add_embedding_model("emb")
    configure(suite, gateway, 'embedding = "emb"')
    suite.makepyfile(test_meaning=SIMILAR)
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", "--llm-report-md=r.md")
    result.assert_outcomes(passed=1, failed=1)
    found = rows(suite)
    close, far = found["test_meaning.py::test_close"], found["test_meaning.py::test_far"]
    assert (close["verdict"], close["passed"]) == ("passed", 4)
    assert far["verdict"] == "failed" and far["passed"] == 0
    embedded = [r for r in gateway.requests if r.model == "emb"]
    assert len(embedded) == close["run"] + far["run"]
    assert {tuple(r.inputs) for r in embedded} == {(ANSWER, CLOSE), (ANSWER, FAR)}
    for sample in close["samples"]:
        role = sample["roles"]["embedding"]
        # The fake gateway counts words: 6 + 8, at $0.5 per million.
        assert (role["calls"], role["input_tokens"], role["output_tokens"]) == (1, 14, 0)
        assert role["cost_usd"] == pytest.approx(14 * 0.5e-6)
        (own,) = [c for c in sample["calls"] if "role" not in c]
        assert sample["input_tokens"] == own["input_tokens"] != 14
        assert sample["cost_usd"] == pytest.approx(own["input_tokens"] * 1e-6)
    assert close["metrics"]["roles"]["embedding"]["calls"] == 4
    totals = json.loads((suite.path / "r.json").read_text())["totals"]["m"]
    assert totals["roles"]["embedding"]["calls"] == close["run"] + far["run"]
    result.stdout.fnmatch_lines(["*assert 0.0* > 0.8", "*Similarity('emb')*"])
    assert any(line.startswith("test ") and line.endswith("embed $") for line in result.outlines)
    md = (suite.path / "r.md").read_text()
    assert "| model | samples | cached | spent | embedding spent | saved | p50 s |" in md


def test_without_an_embedding_model_similar_errors_and_names_the_option(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", ANSWER)
    gateway.add_embedding_model("emb")
    configure(suite, gateway)
    suite.makepyfile(test_meaning=SIMILAR)
    result = suite.runpytest("--llm-models=m", "-k", "close")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_meaning.py::test_close[[]m[]] uses the similar fixture, but no embedding "
            "model is configured: pass --llm-embedding=NAME or set embedding = *"
        ]
    )
    assert gateway.request_count() == 0
    chosen = suite.runpytest("--llm-models=m", "-k", "close", "--llm-embedding=emb")
    chosen.assert_outcomes(passed=1)
    assert gateway.request_count("emb") == 4
    unknown = suite.runpytest("--llm-models=m", "--llm-embedding=nothing")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*--llm-embedding: unknown model 'nothing'*"])
