"""Markdown and HTML rendered from a report, without pytest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_html_is_one_file_with_the_data_inline(tmp_path: Path) -> None:
    from pytest_llmeval.report.render import html

    report: dict[str, Any] = {
        "created_at": "now",
        "tests": [],
        "totals": {},
        "models": {},
        "budget": None,
    }
    page = html({**report, "tests": []})
    data = page.split('id="llmeval-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data) == {"rows": [], "models": []}
    assert "<script src" not in page and "<link" not in page


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
    assert section.count("<details>") == 40 and "[... 605 more]" in section
    assert "``````\n" + "`" * 5 + "<b>x</b>" in section  # a fence longer than the answer's
    table = markdown(report, limit=10**9).split("### What the models said")[0]
    short = markdown(report, limit=len(table) + 3000)
    assert len(short) <= len(table) + 3000
    shown = short.count("<details>")
    assert 0 < shown < 40 and f"{40 - shown} more in the JSON and HTML reports." in short
