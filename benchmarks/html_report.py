"""The HTML report at 436 and 5,000 test x model rows: file size and time in headless Chromium.

Synthetic but shaped like a real run: 4 models, 40 test files, half the tests cases of suites,
10 samples per row (a few error samples), transcripts as `--llm-record=failures` keeps them
(every failed and erred sample plus 2 passing ones: a system and a user message and an answer
of a few hundred characters), a baseline with regressed and prompt-changed rows that carry a
side-by-side diff, and 12 runs of history per row. The report is built by the plugin's own
`build_report` and baseline `compare`, then rendered by `html(report, history)`.

Measured, best of 3 fresh page loads in Debian's Chromium driven by Playwright: the time from
navigation start to `data-rendered` (HTML parsed, JSON parsed, first table page, charts and
matrix drawn); opening the first row (the worst rate: most samples with transcripts) and
applying a verdict filter and a search, each timed in the page from the event to the layout
that follows it. Run: python benchmarks/html_report.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from pytest_llmeval.report.baseline import compare
from pytest_llmeval.report.build import build_report, result_row
from pytest_llmeval.report.diff import transcript_diff
from pytest_llmeval.report.html_report import embedded_json, html, html_data
from pytest_llmeval.report.schema import (
    HistoryPoint,
    HistorySeries,
    ModelInfo,
    PlanInfo,
    Report,
    Result,
    Sample,
)
from pytest_llmeval.testing.browser import CHROMIUM, CHROMIUM_FLAGS
from pytest_llmeval.verdict.stats import clopper_pearson

SIZES = (436, 5000)
REPEATS = 3
SAMPLES = 10
RUNS = 12
FILES = 40
# name: (input $/Mtok, output $/Mtok, skill)
MODELS = {
    "gpt-4o-mini": (0.15, 0.60, 0.86),
    "sonnet": (3.0, 15.0, 0.93),
    "flash": (0.10, 0.40, 0.80),
    "smollm2-135m": (None, None, 0.40),
}
WORDS = [
    "the",
    "answer",
    "is",
    "a",
    "function",
    "that",
    "returns",
    "value",
    "list",
    "of",
    "items",
    "parse",
    "input",
    "check",
    "each",
    "case",
    "when",
    "empty",
    "raise",
    "error",
    "otherwise",
    "sum",
    "total",
    "count",
    "result",
    "format",
    "output",
    "json",
    "field",
    "name",
    "because",
    "step",
    "first",
    "then",
    "finally",
    "we",
    "compute",
]
# Records the moment the page marks itself rendered, from navigation start.
RENDERED = """
new MutationObserver((_, observer) => {
  if (document.body && document.body.dataset.rendered === 'yes') {
    window.renderedAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-rendered']});
"""
TIMED = """([selector, action]) => {
  const start = performance.now();
  %s
  document.body.offsetHeight;
  return performance.now() - start;
}"""
OPEN = TIMED % "document.querySelector(selector).click();"
CHANGE = TIMED % (
    "const e = document.querySelector(selector); e.value = action;"
    "e.dispatchEvent(new Event(e.tagName === 'SELECT' ? 'change' : 'input'));"
)


def text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def info(name: str) -> ModelInfo:
    prices = MODELS[name]
    return {
        "name": name,
        "model_id": name,
        "api": "chat",
        "input_cost_per_mtok": prices[0],
        "output_cost_per_mtok": prices[1],
        "cached_input_cost_per_mtok": None,
        "price_source": None,
    }


def sample(
    rng: random.Random, index: int, outcome: str, model: str, prompt: tuple[str, str], keep: bool
) -> Sample:
    tokens_in, tokens_out = (len(prompt[0]) + len(prompt[1])) // 4, rng.randint(40, 160)
    price_in, price_out, _ = MODELS[model]
    cost = None
    if price_in is not None and price_out is not None:
        cost = (tokens_in * price_in + tokens_out * price_out) / 1e6
    latency = round(rng.uniform(0.3, 3.0), 6)
    error = outcome == "error"
    found: Sample = {
        "index": index,
        "outcome": outcome,
        "error_type": "APITimeoutError" if error else None,
        "cause": "timeout after 30 s" if error else None,
        "message": f"assert 'PASS' in {text(rng, 60)!r}" if outcome == "failed" else None,
        "ttft_s": None,
        "retries": int(error),
        "duration_s": latency,
        "latency_s": latency,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost_usd": cost,
        "cached": False,
        "saved_usd": None,
        "fingerprints": [hashlib.sha1(prompt[1].encode()).hexdigest()[:16]],
        "calls": [
            {
                "endpoint": "chat",
                "fingerprint": "f",
                "latency_s": latency,
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_usd": cost,
                "error_type": None,
                "cause": None,
                "ttft_s": None,
                "attempts": 1,
                "retry_causes": [],
                "cached": False,
                "saved_usd": None,
            }
        ],
        "sandbox": [],
    }
    if keep:
        found["transcript"] = {
            "calls": [
                {
                    "role": "model",
                    "endpoint": "chat",
                    "messages": [
                        {"role": "system", "content": prompt[0]},
                        {"role": "user", "content": prompt[1]},
                    ],
                    "answer": text(rng, rng.randint(200, 500)),
                    "finish_reason": "stop",
                    "tool_calls": [],
                    "error": "APITimeoutError: timeout after 30 s" if error else None,
                }
            ],
            "truncated": False,
        }
    return found


def results(rows: int, seed: int, shift: dict[str, float], edited: set[str]) -> list[Result]:
    """`rows` test x model results; `shift` moves a test's pass rate, `edited` tests send
    another prompt."""
    rng = random.Random(seed)
    tests = rows // len(MODELS)
    found: list[Result] = []
    for k in range(tests):
        path = f"tests/llm/test_topic_{k % FILES:02d}.py"
        name = f"{path}::test_solves[case-{k:04d}]" if k % 2 else f"{path}::test_task_{k:04d}"
        system = f"You are a careful assistant for topic {k % FILES}. "
        system += text(random.Random(k), 150)
        user = text(random.Random(k + 1), 300) + (" Answer briefly." if name in edited else "")
        difficulty = random.Random(k + 2).uniform(0.0, 0.5)
        for model, (_, _, skill) in MODELS.items():
            p = min(1.0, max(0.0, skill + 0.3 - difficulty + shift.get(name, 0.0)))
            outcomes = [
                "error" if rng.random() < 0.02 else "passed" if rng.random() < p else "failed"
                for _ in range(SAMPLES)
            ]
            passing = [i for i, o in enumerate(outcomes) if o == "passed"][:2]
            samples = [
                sample(rng, i, o, model, (system, user), o != "passed" or i in passing)
                for i, o in enumerate(outcomes)
            ]
            passed, failed = outcomes.count("passed"), outcomes.count("failed")
            valid = passed + failed
            verdict = "passed" if valid and passed / valid >= 0.8 else "failed"
            plan: PlanInfo = {
                "pass_rate": 0.8,
                "samples": SAMPLES,
                "confidence": 0.95,
                "mode": "observed",
                "marked": True,
            }
            found.append(
                result_row(
                    f"{name}[{model}]",
                    name,
                    info(model),
                    plan,
                    verdict=verdict,
                    stop_reason="completed",
                    passed=passed,
                    failed=failed,
                    errors=outcomes.count("error"),
                    ci=clopper_pearson(passed, valid, 0.95),
                    wall_s=1.0,
                    message=None if verdict == "passed" else "below the threshold",
                    samples=samples,
                )
            )
    return found


def synthetic(rows: int) -> tuple[Report, list[HistorySeries]]:
    """A report of `rows` test x model rows against a baseline, and its history."""
    rng = random.Random(rows)
    names = sorted({r["test"] for r in results(rows, 0, {}, set())})
    regressed = set(rng.sample(names, max(1, len(names) // 20)))
    edited = set(rng.sample(names, max(1, len(names) // 30)))
    models = {name: info(name) for name in MODELS}
    report = build_report(results(rows, 1, {t: -0.5 for t in regressed}, edited), models)
    baseline = build_report(results(rows, 2, {}, set()), models)
    report["record"] = "failures"
    report["baseline"] = compare(report, baseline, "baseline.json")
    old = {(r["test"], r["model"]): r for r in baseline["tests"]}
    new = {(r["test"], r["model"]): r for r in report["tests"]}
    for row in report["baseline"]["rows"]:
        if row["regressed"] or row["prompt_changed"]:
            key = (row["test"], row["model"])
            diff = transcript_diff(old[key], new[key])
            if diff is not None:
                row["diff"] = diff
    commits = [hashlib.sha1(str(run).encode()).hexdigest() for run in range(RUNS)]
    history: list[HistorySeries] = []
    for row in report["tests"]:
        points: list[HistoryPoint] = []
        for run in range(RUNS):
            valid = SAMPLES
            passed = min(valid, max(0, row["passed"] + rng.randint(-2, 2)))
            lo, hi = clopper_pearson(passed, valid, 0.95)
            points.append(
                {
                    "run": run + 1,
                    "created_at": f"2025-05-{run + 1:02d}T12:00:00+00:00",
                    "commit": commits[run],
                    "passed": passed,
                    "valid": valid,
                    "rate": passed / valid,
                    "ci": [lo, hi],
                    "cost_usd": None,
                    "verdict": "passed" if passed >= 8 else "failed",
                }
            )
        history.append({"test": row["test"], "model": row["model"], "points": points})
    return report, history


def timed_load(page: Page, url: str) -> dict[str, float]:
    page.goto(url)
    page.wait_for_selector("body[data-rendered=yes]", timeout=120_000)
    found = {"rendered": page.evaluate("window.renderedAt")}
    found["open"] = page.evaluate(OPEN, ["#results tbody tr[data-row] button.open", ""])
    found["filter"] = page.evaluate(CHANGE, ["#f-verdict", "failed"])
    page.evaluate(CHANGE, ["#f-verdict", ""])
    found["search"] = page.evaluate(CHANGE, ["#f-q", "case-00"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=Path, help="write the reports' HTML here")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    header = f"{'rows':>6} {'HTML MB':>8} {'texts MB':>9} {'history MB':>10} "
    header += f"{'rendered ms':>12} {'open ms':>8} {'filter ms':>10} {'search ms':>10}"
    lines = [header]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        for rows in SIZES:
            report, history = synthetic(rows)
            page_html = html(report, history)
            path = folder / f"report-{rows}.html"
            path.write_text(page_html, encoding="utf-8")
            data: Any = html_data(report, history)
            texts = len(embedded_json(data["texts"]).encode())
            drawn = len(embedded_json([data["runs"], data["history"]]).encode())
            trials = []
            for _ in range(REPEATS):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(RENDERED)
                trials.append(timed_load(page, path.as_uri()))
                page.close()
            best = {key: min(t[key] for t in trials) for key in trials[0]}
            mb = len(page_html.encode()) / 1e6
            lines.append(
                f"{rows:>6} {mb:>8.2f} {texts / 1e6:>9.2f} {drawn / 1e6:>10.2f} "
                f"{best['rendered']:>12.0f} {best['open']:>8.1f} {best['filter']:>10.1f} "
                f"{best['search']:>10.1f}"
            )
            spread = {k: [round(t[k], 1) for t in trials] for k in best}
            print(f"{rows} rows, all trials (ms): {json.dumps(spread)}", flush=True)
        browser.close()
    print("\n".join(lines))
    print(f"HTML files in {folder}")


if __name__ == "__main__":
    main()
