"""Transcripts in the JSON report: which samples keep one (`--llm-record`), what they hold, that
cached samples keep theirs, and that no planted secret reaches any artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.testing import Cycle, FakeGateway

SUITE = """
import pytest


@pytest.mark.llmeval(samples=6, pass_rate=0.5, mode="observed")
def test_answer(llm):
    answer = llm.chat([
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Is the sky blue?"},
    ]).text
    assert answer == "PASS", f"the model said {answer!r}"
"""
PLANTED = "sk-planted-5f1d3c9a7b2e4d6f8a0c"
OTHER = "other-provider-secret-77aa"


def samples(path: Path) -> list[dict[str, Any]]:
    report = json.loads(path.read_text())
    (row,) = report["tests"]
    return sorted(row["samples"], key=lambda s: s["index"])


def run(suite: pytest.Pytester, gateway: FakeGateway, *args: str) -> pytest.RunResult:
    gateway.add_model("mixed", Cycle(["FAIL", "PASS"]))
    suite.makepyfile(test_transcribed=SUITE)
    # one sample at a time: samples 0, 2, 4 fail and 1, 3, 5 pass; only the sixth decides
    return suite.runpytest(
        "--llm-models=mixed", "--llm-concurrency=1", "--llm-report=r.json", *args
    )


def test_the_default_keeps_failures_and_two_passing_samples(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    run(suite, gateway, *plugin_args).assert_outcomes(passed=1)
    report = json.loads((suite.path / "r.json").read_text())
    assert report["record"] == "failures"
    kept = [s for s in samples(suite.path / "r.json") if "transcript" in s]
    assert sorted(s["outcome"] for s in kept) == ["failed"] * 3 + ["passed"] * 2
    failed = next(s for s in kept if s["outcome"] == "failed")
    assert failed["message"].startswith("AssertionError") or "the model said 'FAIL'" in str(
        failed["message"]
    )
    (call,) = failed["transcript"]["calls"]
    assert call["role"] == "model" and call["endpoint"] == "chat"
    assert call["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Is the sky blue?"},
    ]
    assert call["answer"] == "FAIL" and call["finish_reason"] == "stop"
    assert call["tool_calls"] == [] and call["error"] is None
    assert failed["transcript"]["truncated"] is False


@pytest.mark.parametrize(("mode", "kept"), [("all", 6), ("none", 0)])
def test_record_all_or_none(
    suite: pytest.Pytester, gateway: FakeGateway, mode: str, kept: int
) -> None:
    run(suite, gateway, f"--llm-record={mode}").assert_outcomes(passed=1)
    assert sum("transcript" in s for s in samples(suite.path / "r.json")) == kept


def test_an_unknown_record_mode_is_a_usage_error(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    result = run(suite, gateway, "--llm-record=most")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-record*most*"])


def test_long_texts_are_capped_and_the_report_says_so(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("long", "word " * 2000)
    suite.makepyfile(
        test_long="""
import pytest

@pytest.mark.llmeval(samples=1)
def test_long(llm):
    assert llm.chat("Write a lot.").text == "short"
"""
    )
    suite.runpytest("--llm-models=long", "--llm-report=r.json").assert_outcomes(failed=1)
    (sample,) = samples(suite.path / "r.json")
    answer = sample["transcript"]["calls"][0]["answer"]
    assert sample["transcript"]["truncated"] is True
    assert len(answer) < 4_100 and "6000 more characters cut by pytest-llmeval" in answer


def test_cached_samples_keep_their_transcripts(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    run(suite, gateway, "--llm-cache=readwrite", "--llm-record=all", *plugin_args)
    sent = gateway.request_count()
    run(suite, gateway, "--llm-cache=replay", "--llm-record=all", *plugin_args)
    assert gateway.request_count() == sent  # every answer came from the cache
    replayed = samples(suite.path / "r.json")
    assert all(s["cached"] for s in replayed)
    answers = [s["transcript"]["calls"][0]["answer"] for s in replayed]
    assert answers == ["FAIL", "PASS"] * 3


SECRET_SUITE = f"""
import pytest


@pytest.mark.llmeval(samples=3)
def test_leaky(llm):
    answer = llm.chat("My token is {PLANTED}; what is {OTHER}?").text
    assert "{PLANTED}" not in answer, f"leaked: {{answer}} ({PLANTED})"
"""


def test_no_planted_secret_reaches_any_artifact(
    suite: pytest.Pytester,
    gateway: FakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    plugin_args: list[str],
) -> None:
    """A key in the environment variables the config names, used in the prompt, echoed in the
    answer and in the assertion message, is in no report, cache or baseline, nor the output."""
    monkeypatch.setenv("LEAKY_GATEWAY_KEY", PLANTED)
    monkeypatch.setenv("OTHER_PROVIDER_KEY", OTHER)
    suite.makefile(
        ".toml",
        llmeval=f"""
base_url = "{gateway.base_url}"
retries = 0
api_key_env = "LEAKY_GATEWAY_KEY"

[models.echo]

[models.unused]
api_key_env = "OTHER_PROVIDER_KEY"
""",
    )
    gateway.add_model("echo", lambda request: f"Sure: {request.prompt}")
    suite.makepyfile(test_leaky=SECRET_SUITE)
    result = suite.runpytest(
        "--llm-models=echo",
        "--llm-record=all",
        "--llm-cache=readwrite",
        "--llm-report=r.json",
        "--llm-report-md=r.md",
        "--llm-report-html=r.html",
        "--llm-baseline=base.json",
        "--llm-update-baseline",
        "-v",
        *plugin_args,
    )
    result.assert_outcomes(failed=1)
    (sample, *_) = samples(suite.path / "r.json")
    call = sample["transcript"]["calls"][0]
    assert call["messages"][0]["content"] == "My token is ***; what is ***?"
    assert call["answer"].startswith("Sure: My token is ***")
    artifacts = [p for p in suite.path.rglob("*") if p.is_file() and p.suffix != ".py"]
    names = {p.name for p in artifacts}
    assert {"r.json", "r.md", "r.html", "base.json"} <= names
    assert any(".llmeval_cache" in p.parts for p in artifacts)
    for path in artifacts:
        data = path.read_bytes()
        assert PLANTED.encode() not in data and OTHER.encode() not in data, path
    output = "\n".join(result.outlines + result.errlines)
    assert "***" in output  # the assertion message, redacted in the terminal too
    assert PLANTED not in output and OTHER not in output


DIFF_SUITE = """
import pytest


@pytest.mark.llmeval(samples=10, pass_rate=0.8)
def test_yes_no(llm):
    answer = llm.chat([
        {"role": "system", "content": "You are terse.\\n{instruction}"},
        {"role": "user", "content": "Is water wet?"},
    ]).text
    assert answer in ("yes", "no"), f"not a yes/no answer: {answer!r}"


@pytest.mark.llmeval(samples=4)
def test_steady(llm):
    assert llm.chat("Say ok.").text == "ok"
"""


def picky(request: Any) -> str:
    prompt = str(request.body["messages"])
    if "Say ok." in prompt:
        return "ok"
    return "yes" if "one word" in prompt else "Well, it depends on what you mean by wet."


def test_a_prompt_change_that_regresses_shows_the_diff_and_both_answers(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("picky", picky)
    suite.makepyfile(test_diffed=DIFF_SUITE.replace("{instruction}", "Answer in one word."))
    args = ["--llm-models=picky", "--llm-baseline=base.json", *plugin_args]
    suite.runpytest(*args, "--llm-update-baseline").assert_outcomes(passed=2)
    suite.makepyfile(test_diffed=DIFF_SUITE.replace("{instruction}", "Explain your answer."))
    result = suite.runpytest(*args, "--llm-report=r.json", "--llm-report-md=r.md")
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((suite.path / "r.json").read_text())
    (compared,) = [r for r in report["baseline"]["rows"] if r["regressed"]]
    assert compared["prompt_changed"]
    diff = compared["diff"]
    assert diff["prompt_diff"] == [
        "@@ -1,3 +1,3 @@",
        " system: You are terse.",
        "-system: Answer in one word.",
        "+system: Explain your answer.",
        " user: Is water wet?",
    ]
    assert diff["baseline"] is not None and diff["baseline"]["answer"] == "yes"
    assert diff["baseline"]["outcome"] == "passed"
    assert diff["current"] is not None and diff["current"]["outcome"] == "failed"
    assert diff["current"]["answer"].startswith("Well, it depends")
    assert "not a yes/no answer" in str(diff["current"]["message"])
    steady = next(r for r in report["baseline"]["rows"] if r["test"].endswith("test_steady"))
    assert "diff" not in steady  # neither regressed nor changed
    md = (suite.path / "r.md").read_text()
    section = md.split("### What the models said", 1)[1]
    assert "-system: Answer in one word." in section and "+system: Explain your answer." in section
    assert "Baseline (sample" in section and "Now (sample" in section
    assert "Well, it depends on what you mean by wet." in section
    assert "test_steady" not in section
