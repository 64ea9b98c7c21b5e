"""The report's TypedDicts (report/schema.py) against real reports of the plugin: every key
written is declared, every required key is written, every value has its declared type, and the
scenario below writes every optional key at least once, so the types cannot drift from the JSON."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from pytest_llmeval.judging.calibration import CalibrationStore, Figures
from pytest_llmeval.judging.prompts import JudgePrompts, rubric_fingerprint
from pytest_llmeval.report import schema
from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.testing import (
    Cycle,
    FakeGateway,
    HTTPError,
    RecordedRequest,
    Reply,
    ScriptedJudge,
)
from pytest_llmeval.verdict.judged import Calibration

GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"
BROKEN = "```python\ndef add(a, b)\n    return a + b\n```"

# Every kind of row, sample, call and section: a benchmark suite of generated code over two
# models (sandbox runs with hidden cases, subjects, suite rows, comparisons, routing), a
# dialogue (turns, a streamed call; it takes `tmp_path`, so it runs in its turn), a test whose
# setup fails (a row without samples), error samples and retries (injected 429s), then a
# second run on a baseline with a response cache; a gated suite (its gate, its paired
# regression); judged tests, one with a calibrated rubric and one without, with `similar` and a
# pairwise comparison of the two models (judgements, roles, preferences).
SUITE = """
import os

import pytest
from pytest_llmeval import extract_code
from pytest_llmeval.conversation import Conversation

CASES = [
    pytest.param(a, marks=pytest.mark.llmeval_subject("small" if a < 3 else "large"), id=f"n{a}")
    for a in range(6)
]


@pytest.mark.llmeval(pass_rate=0.5, samples=1, mode="observed")
@pytest.mark.parametrize("a", CASES)
def test_add(llm, sandbox, a):
    code = extract_code(llm.chat(f"Write add(a, b), case {a}").text, "add")
    sandbox.run(code, [f"assert add({a}, 1) == {a + 1}", "assert add(0, 0) == 0"], "add").check()


@pytest.mark.llmeval(pass_rate=0.5, samples=2, suite=True)
@pytest.mark.parametrize("n", range(3))
def test_gated(llm, n):
    assert "def" in llm.chat(f"Write add(a, b), gated case {n}").text


@pytest.mark.llmeval(pass_rate=0.5, samples=1, suite=True, design="sequential")
@pytest.mark.parametrize("n", range(3))
def test_stopped(llm, n):
    assert "def" in llm.chat(f"Write add(a, b), stopped case {n}").text


@pytest.mark.llmeval(pass_rate=0.5, samples=3, mode="observed")
def test_dialogue(llm, tmp_path):
    with Conversation(llm, temperature=0) as convo:
        convo.turn("first", stream=True)
        convo.expect(True, "answered")
        convo.turn("second")
        convo.expect(len(convo.messages) == 4, "history kept", required=False)


@pytest.mark.llmeval(pass_rate=0.5, samples=2, mode="observed")
def test_judged(llm, judge, similar):
    answer = llm.chat("Write add(a, b), judged").text
    assert similar(answer, "def add(a, b): return a + b") > -1.0
    assert judge(answer, "The answer defines add.", scale=(1, 5))


@pytest.mark.llmeval(pass_rate=0.5, samples=2, mode="observed")
def test_judged_uncalibrated(llm, judge):
    assert judge(llm.chat("Write add(a, b), judged again").text, "Any answer passes.")


@pytest.mark.llmeval(samples=1)
def test_pair(llm, llm_rival, judge):
    first, second = llm.chat("Which?").text, llm_rival.chat("Which?").text
    judge.compare(first, second, "shorter", labels=(llm.model.name, llm_rival.model.name))


@pytest.mark.llmeval(pass_rate=0.5, samples=6)
def test_sequential(llm):
    assert "def" in llm.chat("Write add(a, b), stopped early").text


# All 12 samples in the first run; on it as the baseline, the gate stops for futility.
SECOND = "WORDING" in os.environ and "please" in os.environ["WORDING"]


@pytest.mark.llmeval(
    pass_rate=0.5 if SECOND else 1.0, samples=12, mode="not_worse" if SECOND else "observed"
)
def test_futile(llm):
    assert "def" in llm.chat("Write add(a, b), against the baseline").text


TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


@pytest.mark.llmeval(pass_rate=0.5, samples=2, mode="observed")
def test_tools(llm):
    wording = os.environ.get("WORDING", "Look add up.")  # the second run changes the prompt
    reply = llm.chat(wording, tools=TOOLS)
    assert reply.tool_calls and reply.tool_calls[0].name == "lookup"


@pytest.fixture
def broken():
    raise RuntimeError("this fixture always fails")


@pytest.mark.llmeval(samples=2)
def test_setup_error(llm, broken):
    llm.chat("never sent")
"""


def check(value: Any, hint: Any, path: str, seen: dict[type, set[str]]) -> None:
    """Assert that `value` (parsed JSON) is of type `hint`, recording the keys of TypedDicts."""
    origin = get_origin(hint)
    if is_typeddict(hint):
        assert isinstance(value, dict), f"{path}: {value!r} is not a {hint.__name__}"
        declared = hint.__required_keys__ | hint.__optional_keys__
        unknown = set(value) - declared
        assert not unknown, f"{path}: keys not declared in {hint.__name__}: {sorted(unknown)}"
        missing = hint.__required_keys__ - set(value)
        assert not missing, f"{path}: required keys of {hint.__name__} missing: {sorted(missing)}"
        seen.setdefault(hint, set()).update(value)
        hints = get_type_hints(hint)
        for key, item in value.items():
            check(item, hints[key], f"{path}.{key}", seen)
    elif origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        assert len(options) == 1, f"{path}: only `X | None` unions are checked, not {hint}"
        if value is not None:
            check(value, options[0], path, seen)
    elif origin is list:
        assert isinstance(value, list), f"{path}: {value!r} is not a list"
        for i, item in enumerate(value):
            check(item, get_args(hint)[0], f"{path}[{i}]", seen)
    elif origin is dict:
        assert isinstance(value, dict), f"{path}: {value!r} is not an object"
        key_type, value_type = get_args(hint)
        assert key_type is str
        for key, item in value.items():
            check(item, value_type, f"{path}[{key!r}]", seen)
    elif hint is float:
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{path}: {value!r}"
    elif hint is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r}"
    elif hint in (str, bool):
        assert isinstance(value, hint), f"{path}: {value!r} is not a {hint.__name__}"
    else:
        raise AssertionError(f"{path}: the checker does not know {hint!r}")


def reachable(hint: Any, found: set[type] | None = None) -> set[type]:
    """The TypedDicts that `hint` contains, itself included."""
    found = set() if found is None else found
    if is_typeddict(hint):
        if hint in found:
            return found
        found.add(hint)
        for item in get_type_hints(hint).values():
            reachable(item, found)
    for arg in get_args(hint):
        reachable(arg, found)
    return found


def with_tools(answer: Any) -> Any:
    """`answer` to plain requests; a call of the tool to requests that offer one."""

    def respond(request: RecordedRequest) -> str | Reply:
        if request.body.get("tools"):
            return Reply(tool_calls=[{"name": "lookup", "arguments": {"q": "add"}}])
        return answer if isinstance(answer, str) else answer(request)

    return respond


def build_reports(
    suite: pytest.Pytester, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> list[schema.Report]:
    """A first run (errors, retries, cache written), then a second on it as the baseline, with
    one prompt changed (a diff against the baseline)."""
    gateway.add_model("good", with_tools(GOOD))
    gateway.add_model("bad", with_tools(Cycle([GOOD, WRONG, BROKEN, WRONG])))
    gateway.add_model(
        "judge", ScriptedJudge(lambda out, rubric: "add" in out, prefer=lambda a, b, c: "tie")
    )
    gateway.add_embedding_model("emb")
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 1\n'
        'judge = "judge"\nembedding = "emb"\n'
        "[models.good]\ninput_cost_per_mtok = 3.0\noutput_cost_per_mtok = 15.0\n"
        "[models.bad]\ninput_cost_per_mtok = 0.1\noutput_cost_per_mtok = 0.4\n"
        "[models.judge]\ninput_cost_per_mtok = 0.15\noutput_cost_per_mtok = 0.6\n"
        "[models.emb]\ninput_cost_per_mtok = 0.02\n",
    )
    calibrated = Calibration(true_pos=40, false_neg=0, true_neg=40, false_pos=0)
    fingerprint = rubric_fingerprint(JudgePrompts(), "The answer defines add.", (1, 5))
    CalibrationStore(suite.path / "llmeval-calibration.json").save(
        [
            Figures(
                "judge",
                "judge",
                "The answer defines add.",
                fingerprint,
                "set.jsonl",
                1,
                calibrated,
                0,
                calibrated,
                80,
                80,
            )
        ]
    )
    suite.makepyfile(test_bench=SUITE)
    gateway.inject(HTTPError(429, retry_after=0.0), times=3, model="bad")
    # One sample in flight at a time: the first request of "bad" meets two of the three 429s
    # (an error sample), whichever case runs first.
    args = [
        "--llm-models=good,bad",
        "--llm-budget=5",
        "--llm-cache=readwrite",
        "--llm-concurrency=1",
    ]
    for extra, wording in (
        (["--llm-report=base.json"], "Look add up."),
        (["--llm-baseline=base.json", "--llm-report=r.json"], "Look add up, please."),
    ):
        monkeypatch.setenv("WORDING", wording)
        result = suite.runpytest(*args, *extra)
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # the setup errors, at least
    return [load_report(suite.path / name) for name in ("base.json", "r.json")]


def test_reports_match_the_schema(
    suite: pytest.Pytester, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, report = build_reports(suite, gateway, monkeypatch)
    seen: dict[type, set[str]] = {}
    check(base, schema.Report, "base.json", seen)
    check(report, schema.Report, "r.json", seen)
    # The scenario reaches every type of the report and writes every optional key somewhere,
    # so the checks above covered all of the schema.
    assert set(seen) == reachable(schema.Report)
    never = {t.__name__: sorted(t.__optional_keys__ - keys) for t, keys in seen.items()}
    assert {name: keys for name, keys in never.items() if keys} == {}
    # Nullable values were null and not null, optional keys present and absent.
    rows = report["tests"]
    assert {r["stop_reason"] for r in rows} >= {"setup error", "completed"}
    assert any("subject" in r for r in rows) and any("subject" not in r for r in rows)
    assert any("dialogue" in r for r in rows) and any("dialogue" not in r for r in rows)
    assert any(r["code"] is None for r in rows) and any(r["code"] for r in rows)
    samples = [s for r in base["tests"] for s in r["samples"]]
    assert any(s["outcome"] == "error" and s["cause"] for s in samples)
    calls = [c for s in samples for c in s["calls"]]
    assert any(c["retry_causes"] for c in calls) and any(c["ttft_s"] is not None for c in calls)
    assert any(s["cached"] and s["saved_usd"] for r in rows for s in r["samples"])
    assert report["budget"] is not None and report["baseline"]["rows"]
    assert report["suites"] and report["comparisons"] and report["routing"]
    judged = [r["judged"] for r in rows if "judged" in r]
    assert {j["about"] for j in judged} == {"true_rate", "judged_rate"}
    assert report["preferences"][0]["cases"] == 1
    stopped = [r for r in rows if "gate_stop" in r]
    assert stopped and all(r["run"] < 12 for r in stopped)
    diffs = [r["diff"] for r in report["baseline"]["rows"] if "diff" in r]
    assert any(d["prompt_diff"] and d["baseline"] and d["current"] for d in diffs)
