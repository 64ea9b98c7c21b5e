"""Markdown and HTML rendered from a report, without pytest."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from pytest_llmeval.report.baseline import compare
from pytest_llmeval.report.build import build_report
from pytest_llmeval.report.html_report import (
    embedded_json,
    file_of,
    html,
    html_data,
    ordered_samples,
    suite_label,
)
from pytest_llmeval.report.schema import HistoryPoint, HistorySeries, Report


def sample(index: int, outcome: str, prompt: str = "Say PASS") -> dict[str, Any]:
    return {
        "index": index,
        "outcome": outcome,
        "error_type": {"failed": "AssertionError", "error": "APITimeoutError"}.get(outcome),
        "cause": "timed out" if outcome == "error" else None,
        "message": "assert 'PASS' in 'FAIL'" if outcome == "failed" else None,
        "ttft_s": None,
        "retries": 0,
        "duration_s": 0.5,
        "latency_s": 0.123456,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.1 + 0.2,
        "cached": False,
        "saved_usd": None,
        "fingerprints": ["abc"],
        "calls": [],
        "sandbox": [],
        "transcript": {
            "calls": [
                {
                    "role": "model",
                    "endpoint": "chat",
                    "messages": [{"role": "user", "content": prompt}],
                    "answer": "PASS" if outcome == "passed" else "FAIL",
                    "finish_reason": "stop",
                    "tool_calls": [],
                    "error": None,
                }
            ],
            "truncated": False,
        },
    }


def result(test: str, model: str, outcomes: list[str]) -> dict[str, Any]:
    samples = [sample(i, o) for i, o in enumerate(outcomes)]
    return {
        "nodeid": f"{test}[{model}]",
        "test": test,
        "model": model,
        "model_id": model,
        "plan": {"pass_rate": 0.8, "samples": 4, "confidence": 0.95, "mode": "observed"},
        "verdict": "passed" if outcomes.count("passed") >= 3 else "failed",
        "stop_reason": "completed",
        "passed": outcomes.count("passed"),
        "failed": outcomes.count("failed"),
        "errors": outcomes.count("error"),
        "ci": [0.1, 0.9],
        "wall_s": 1.0,
        "message": None,
        "samples": samples,
    }


def two_models() -> Report:
    outcomes = ["passed", "failed", "error", "passed"]
    results = [
        result(test, model, outcomes)
        for test in ("a/test_x.py::test_plain", "a/test_x.py::test_cases[1]", "test_y.py::test_z")
        for model in ("m1", "m2")
    ]
    models: Any = {"m1": {"name": "m1"}, "m2": {"name": "m2"}}
    return build_report(results, models)


def test_html_is_one_file_with_the_data_inline() -> None:
    page = html(two_models())
    data = json.loads(page.split('id="llmeval-data">', 1)[1].split("</script>", 1)[0])
    assert [r["t"] for r in data["rows"]][:2] == ["a/test_x.py::test_cases[1]"] * 2
    assert [m["model"] for m in data["models"]] == ["m1", "m2"]
    assert "<script src" not in page and "<link" not in page
    # The content security policy lets exactly the inline script and style run, nothing load.
    policy = page.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    script = page.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = {
        t: base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() for t in (script, style)
    }
    assert policy == (
        f"default-src 'none'; script-src 'sha256-{digest[script]}'; "
        f"style-src 'sha256-{digest[style]}'; img-src data:"
    )


def test_embedded_json_cannot_end_its_script_element() -> None:
    hostile = {"text": "</script><script>alert(1)</script><!-- \u2028 é"}
    found = embedded_json(hostile)
    assert "<" not in found and json.loads(found) == hostile


def test_rows_name_their_file_and_suite() -> None:
    assert file_of("a/test_x.py::test_cases[1]") == "a/test_x.py"
    assert file_of("test_y.py::Test::test_z") == "test_y.py"
    rows = two_models()["tests"]
    cases = next(r for r in rows if r["test"].endswith("[1]"))
    plain = next(r for r in rows if r["test"].endswith("test_plain"))
    assert suite_label(cases) == "a/test_x.py::test_cases" and suite_label(plain) is None
    paired: Any = {**cases, "plan": {**cases["plan"], "paired": True}}
    assert suite_label(paired) is None  # a pairwise test's rows are pairs of models, not cases
    data = html_data(two_models())
    assert data["files"] == ["a/test_x.py", "test_y.py"]
    assert data["suites"] == ["a/test_x.py::test_cases"]
    assert [data["suites"][r["s"]] if "s" in r else None for r in data["rows"][:4]] == [
        "a/test_x.py::test_cases",
        "a/test_x.py::test_cases",
        None,
        None,
    ]


def test_samples_come_failures_first_then_errors_then_passes() -> None:
    samples: Any = [
        sample(i, o) for i, o in enumerate(["passed", "error", "failed", "passed", "failed"])
    ]
    assert [(s["index"], s["outcome"]) for s in ordered_samples(samples)] == [
        (2, "failed"),
        (4, "failed"),
        (1, "error"),
        (0, "passed"),
        (3, "passed"),
    ]
    shown = html_data(two_models())["rows"][0]["x"]
    assert [x["o"] for x in shown] == ["failed", "error", "passed", "passed"]
    failed, error = shown[0], shown[1]
    assert failed["msg"] == "assert 'PASS' in 'FAIL'" and "err" not in failed
    assert error["err"] == "APITimeoutError: timed out"
    assert failed["s"] == 0.123 and failed["c"] == 0.3  # no float noise in the page


def test_message_texts_are_embedded_once() -> None:
    data = html_data(two_models())
    assert sorted(data["texts"]) == ["FAIL", "PASS", "Say PASS"]  # 24 samples, 3 texts
    exchange = data["rows"][5]["x"][0]["x"]["c"][0]
    assert exchange["ms"] == [("user", data["texts"].index("Say PASS"))]
    assert data["texts"][exchange["a"]] == "FAIL"


def history_series(test: str, model: str, runs: list[int]) -> HistorySeries:
    point: HistoryPoint = {
        "run": 0,
        "created_at": "",
        "commit": None,
        "passed": 3,
        "valid": 4,
        "rate": 0.75,
        "ci": [0.19414, 0.99369],
        "cost_usd": None,
        "verdict": "passed",
    }
    points: list[HistoryPoint] = [
        {**point, "run": run, "created_at": f"2025-01-0{run}", "commit": f"c{run}"} for run in runs
    ]
    return {"test": test, "model": model, "points": points}


def test_history_series_are_matched_to_rows_by_test_and_model() -> None:
    given = [
        history_series("test_y.py::test_z", "m2", [1, 2]),
        history_series("test_y.py::test_z", "m1", [2, 3]),
        history_series("gone.py::test_gone", "m1", [1]),  # no row: not drawn
    ]
    data = html_data(two_models(), given)
    runs = {
        (row["t"], data["models"][row["m"]]["model"]): [
            data["runs"][point[0]]["run"] for point in data["history"][row["h"]]
        ]
        for row in data["rows"]
        if "h" in row
    }
    assert runs == {("test_y.py::test_z", "m1"): [2, 3], ("test_y.py::test_z", "m2"): [1, 2]}
    assert sorted(run["run"] for run in data["runs"]) == [1, 2, 3]  # each run once
    assert data["history"][0][0][1:] == (3, 4, 0.1941, 0.9937, "passed", None)


def test_baseline_comparisons_and_their_diffs_ride_along() -> None:
    report = two_models()
    report["baseline"] = compare(report, two_models(), "base.json")
    first = report["baseline"]["rows"][0]
    first["diff"] = {"prompt_diff": ["-old", "+new"], "baseline": None, "current": None}
    data = html_data(report)
    versus = {(r["t"], r["m"]): r["b"] for r in data["rows"]}
    assert data["baseline"] is True
    assert versus[(first["test"], 0)]["diff"] == first["diff"]
    assert not any(v["regressed"] or v["changed"] for v in versus.values())
    assert all("diff" not in v for k, v in versus.items() if k != (first["test"], 0))


def synthetic_row(i: int, verdict: str) -> dict[str, Any]:
    return {
        "test": f"test_suite.py::test_case[{i}]",
        "model": "m",
        "passed": 9 if verdict == "passed" else 2,
        "failed": 1 if verdict == "passed" else 8,
        "errors": 0,
        "run": 10,
        "ci": [0.5, 1.0],
        "verdict": verdict,
        "plan": {"pass_rate": 0.8, "mode": "not_worse", "marked": True},
        "metrics": {"latency_p50_s": 0.1, "cost_usd": None, "cached_samples": 0},
        "samples": [failing_sample(i, "`" * 5 + "<b>x</b> " * 100)] if verdict == "failed" else [],
    }


def failing_sample(index: int, answer: str) -> dict[str, Any]:
    call = {"role": "model", "endpoint": "chat", "answer": answer, "error": None,
            "messages": [{"role": "user", "content": "q"}], "finish_reason": "stop",
            "tool_calls": []}  # fmt: skip
    transcript = {"calls": [call], "truncated": False}
    return {"index": index, "outcome": "failed", "message": "bad", "transcript": transcript}


def test_markdown_fits_a_pr_comment() -> None:
    from pytest_llmeval.report.render import markdown

    tests = [synthetic_row(i, "failed" if i % 50 == 0 else "passed") for i in range(500)]
    report = {"tests": tests, "totals": {}, "budget": None}
    full = markdown(report, limit=10**9)
    assert full.count("| ✅ |") == 490 and full.count("| ❌ |") == 10
    short = markdown(report, limit=5000)
    assert len(short) <= 5000 and short.count("| ❌ |") == 10 and "| ✅ |" not in short
    assert "490 passing rows with unchanged prompts are left out to fit" in short
    cut = markdown({**report, "tests": [synthetic_row(i, "failed") for i in range(500)]}, 5000)
    assert len(cut) <= 5000 and cut.endswith(
        "(truncated to fit; the JSON and HTML reports have everything)\n"
    )


def test_failing_answers_follow_as_many_as_fit() -> None:
    from pytest_llmeval.report.render import markdown

    report = {
        "tests": [synthetic_row(i, "failed") for i in range(40)],
        "totals": {},
        "budget": None,
    }
    full = markdown(report, limit=10**9)
    section = full.split("### What the models said", 1)[1]
    assert section.count("<details>") == 30 and "[... 605 more]" in section
    assert "10 more in the JSON and HTML reports." in section
    assert "``````\n" + "`" * 5 + "<b>x</b>" in section  # a fence longer than the answer's
    table = markdown(report, limit=10**9).split("### What the models said")[0]
    short = markdown(report, limit=len(table) + 3000)
    assert len(short) <= len(table) + 3000
    shown = short.count("<details>")
    assert 0 < shown < 40 and f"{40 - shown} more in the JSON and HTML reports." in short
