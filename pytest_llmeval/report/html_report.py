"""The HTML report: one self-contained file to work in (filters, groups, samples and their
transcripts, a model x test matrix, baseline diffs, history), a pure function of the report.

The page's script and style are the package files `html_report.js` and `html_report.css`,
inlined. The data it reads is built here in a compact form: short keys, empty values left
out, and every message and answer text stored once in `texts` (a prompt repeats across samples
and models); the TypedDicts below say what each key holds.
"""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import json
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import NotRequired, TypedDict

from pytest_llmeval.report.build import role_cost, stop_text
from pytest_llmeval.report.render import headline
from pytest_llmeval.report.schema import (
    Exchange,
    HistorySeries,
    Judged,
    Report,
    Row,
    RowComparison,
    Sample,
    SandboxRun,
    Transcript,
    TranscriptDiff,
)
from pytest_llmeval.report.suites import stopping_text, suite_name
from pytest_llmeval.verdict.marker import design_text
from pytest_llmeval.verdict.stats import clopper_pearson

# Samples in the order a reader wants them: failures and errors first, then passes.
_OUTCOME_ORDER = {"failed": 0, "error": 1}


class _HtmlModel(TypedDict):
    """A model's bars: its sample pass rate with a 95% CI, p50 latency and cost."""

    model: str
    rate: float | None
    lo: float
    hi: float
    p50: float | None
    cost: float | None


class _HtmlSuite(TypedDict):
    """A suite x model of the matrix: suite index `s`, model index `m`, cases passed `p` of
    valid `v`, CI `lo`-`hi`, the gate's verdict `g` when the suite is gated, and how it
    stopped over cases `st` when it did."""

    s: int
    m: int
    p: int
    v: int
    lo: float
    hi: float
    g: NotRequired[str]
    st: NotRequired[str]


class _HtmlExchange(TypedDict):
    """One call: role `r`, endpoint `e`, messages `ms` as [role, text index], answer text
    index `a`, finish reason `f`, tool calls `tc` as [name, arguments], error `er`."""

    r: str
    e: str
    ms: list[tuple[str, int]]
    a: int
    f: NotRequired[str]
    tc: NotRequired[list[tuple[str, str]]]
    er: NotRequired[str]


class _HtmlTranscript(TypedDict):
    """A sample's calls `c`; `cut` when some text was cut at the cap."""

    c: list[_HtmlExchange]
    cut: NotRequired[bool]


class _HtmlSandbox(TypedDict):
    """A sandbox run: status `st`, seconds `s`, hidden cases passed `cp` of `cs`, detail `d`."""

    st: str
    s: float
    cp: NotRequired[int]
    cs: NotRequired[int]
    d: NotRequired[str]


class _HtmlJudgement(TypedDict):
    """A judgement: judge `j`, kind `k`, reason `r`; a grade's `ok` and `sc`ore, a
    comparison's `w`inner."""

    j: str
    k: str
    r: str
    ok: NotRequired[bool]
    sc: NotRequired[int | None]
    w: NotRequired[str]


class _HtmlSample(TypedDict):
    """A sample: index `i`, outcome `o`, latency `s`, tokens in `ti` and out `to`, cost `c`;
    when there is one: `cached`, `retries`, assertion message `msg`, error `err`, sandbox runs
    `sb`, judgements `j`, transcript `x`."""

    i: int
    o: str
    s: float
    ti: int
    to: int
    c: float | None
    cached: NotRequired[bool]
    retries: NotRequired[int]
    msg: NotRequired[str]
    err: NotRequired[str]
    sb: NotRequired[list[_HtmlSandbox]]
    j: NotRequired[list[_HtmlJudgement]]
    x: NotRequired[_HtmlTranscript]


class _HtmlVersus(TypedDict):
    """The row against the baseline: p-value `p`, baseline passed `bp` of valid `bv`,
    `regressed`, `changed` (prompt), and the side-by-side `diff` when the plugin made one."""

    p: float
    bp: int
    bv: int
    regressed: bool
    changed: bool
    diff: NotRequired[TranscriptDiff]


class _HtmlRow(TypedDict):
    """A test x model: test `t`, model `m`, file `f` and suite `s` (indices), `gated` suite
    case, passed `p` of valid `v`, errors `e`, CI `lo`-`hi`, verdict `vd`, threshold `need`,
    why sampling stopped `stop`, the row's message `msg`, p50 latency `p50`, cost `c`, judge
    cost `jc`, cached samples `ca`, baseline `b`, history series index `h`, samples `x`."""

    t: str
    m: int
    f: int
    s: NotRequired[int]
    gated: NotRequired[bool]
    p: int
    v: int
    e: int
    lo: float
    hi: float
    vd: str
    need: str
    stop: str
    msg: NotRequired[str]
    p50: float | None
    c: float | None
    jc: NotRequired[float]
    ca: int
    b: NotRequired[_HtmlVersus]
    h: NotRequired[int]
    x: list[_HtmlSample]


class _HtmlRun(TypedDict):
    """A run of the history, shared by its series' points."""

    run: int
    created_at: str
    commit: str | None


# A history point: run index, passed, valid, CI low, CI high, verdict, cost.
_HtmlPoint = tuple[int, int, int, float, float, str, float | None]


class _HtmlData(TypedDict):
    """What the page's script reads."""

    models: list[_HtmlModel]
    files: list[str]
    suites: list[str]
    rows: list[_HtmlRow]
    suite_rows: list[_HtmlSuite]
    texts: list[str]
    runs: list[_HtmlRun]
    history: list[list[_HtmlPoint]]
    baseline: bool
    record: str | None


class _Interned:
    """Each distinct string once, in first-seen order; callers keep its index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.items)
            self.items.append(text)
        return found


def file_of(test: str) -> str:
    """The file part of a test's name (`path::test[case]`)."""
    return test.split("::", 1)[0]


def suite_label(row: Row) -> str | None:
    """The suite a row is a case of, as the report's suite rows name it; None outside one."""
    return None if row["plan"].get("paired") else suite_name(row["test"])


def ordered_samples(samples: Sequence[Sample]) -> list[Sample]:
    """Failed samples first, then erred ones, then the rest; each kind by index."""
    return sorted(samples, key=lambda s: (_OUTCOME_ORDER.get(s["outcome"], 2), s["index"]))


def _dollars(value: float | None) -> float | None:
    """To a hundred-millionth of a cent: below what the page shows, without float noise."""
    return None if value is None else round(value, 10)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _need(row: Row) -> str:
    plan = row["plan"]
    if not plan.get("marked", True):
        return "once"
    design = design_text(plan)
    return f"{plan['pass_rate']:.2f} {plan['mode']}" + (f" ({design})" if design else "")


def _exchange(call: Exchange, texts: _Interned) -> _HtmlExchange:
    found: _HtmlExchange = {
        "r": call["role"],
        "e": call["endpoint"],
        "ms": [(m["role"], texts(m["content"])) for m in call["messages"]],
        "a": texts(call["answer"]),
    }
    if call["finish_reason"]:
        found["f"] = call["finish_reason"]
    if call["tool_calls"]:
        found["tc"] = [(t["name"], t["arguments"]) for t in call["tool_calls"]]
    if call["error"]:
        found["er"] = call["error"]
    return found


def _transcript(transcript: Transcript, texts: _Interned) -> _HtmlTranscript:
    found: _HtmlTranscript = {"c": [_exchange(call, texts) for call in transcript["calls"]]}
    if transcript["truncated"]:
        found["cut"] = True
    return found


def _sandbox(run: SandboxRun) -> _HtmlSandbox:
    found: _HtmlSandbox = {"st": run["status"], "s": round(run["duration_s"], 3)}
    if "cases" in run:
        found["cp"], found["cs"] = run.get("cases_passed", 0), run["cases"]
    if run.get("detail"):
        found["d"] = run["detail"]
    return found


def _judgement(judged: Judged) -> _HtmlJudgement:
    found: _HtmlJudgement = {"j": judged["judge"], "k": judged["kind"], "r": judged["reason"]}
    if "passed" in judged:
        found["ok"] = judged["passed"]
    if "score" in judged:
        found["sc"] = judged["score"]
    if "winner" in judged:
        found["w"] = judged["winner"]
    return found


def _sample(sample: Sample, texts: _Interned) -> _HtmlSample:
    found: _HtmlSample = {
        "i": sample["index"],
        "o": sample["outcome"],
        "s": round(sample["latency_s"], 3),
        "ti": sample["input_tokens"],
        "to": sample["output_tokens"],
        "c": _dollars(sample["cost_usd"]),
    }
    if sample["cached"]:
        found["cached"] = True
    if sample["retries"]:
        found["retries"] = sample["retries"]
    if sample["message"]:
        found["msg"] = sample["message"]
    if sample["cause"] or (sample["error_type"] and sample["outcome"] != "failed"):
        found["err"] = ": ".join(t for t in (sample["error_type"], sample["cause"]) if t)
    if sample["sandbox"]:
        found["sb"] = [_sandbox(run) for run in sample["sandbox"]]
    if sample.get("judgements"):
        found["j"] = [_judgement(j) for j in sample["judgements"]]
    if "transcript" in sample:
        found["x"] = _transcript(sample["transcript"], texts)
    return found


def _versus(comparison: RowComparison) -> _HtmlVersus:
    found: _HtmlVersus = {
        "p": float(f"{comparison['p_value']:.4g}"),
        "bp": comparison["baseline_passed"],
        "bv": comparison["baseline_valid"],
        "regressed": comparison["regressed"],
        "changed": comparison["prompt_changed"],
    }
    if "diff" in comparison:
        found["diff"] = comparison["diff"]
    return found


class _Runs:
    """The history's runs, each once, and the points of the series drawn."""

    def __init__(self) -> None:
        self.runs: list[_HtmlRun] = []
        self.series: list[list[_HtmlPoint]] = []
        self._index: dict[tuple[int, str, str | None], int] = {}

    def add(self, series: HistorySeries) -> int:
        """The series' index; its points refer to runs by index."""
        points: list[_HtmlPoint] = []
        for point in series["points"]:
            key = (point["run"], point["created_at"], point["commit"])
            if key not in self._index:
                self._index[key] = len(self.runs)
                self.runs.append(
                    {"run": point["run"], "created_at": point["created_at"],
                     "commit": point["commit"]}
                )  # fmt: skip
            lo, hi = point["ci"]
            points.append(
                (self._index[key], point["passed"], point["valid"], round(lo, 4), round(hi, 4),
                 point["verdict"], _dollars(point["cost_usd"]))
            )  # fmt: skip
        self.series.append(points)
        return len(self.series) - 1


def _row(row: Row, models: _Interned, files: _Interned, suites: _Interned,
         texts: _Interned) -> _HtmlRow:  # fmt: skip
    found: _HtmlRow = {
        "t": row["test"],
        "m": models(row["model"]),
        "f": files(file_of(row["test"])),
        "p": row["passed"],
        "v": row["passed"] + row["failed"],
        "e": row["errors"],
        "lo": round(row["ci"][0], 4),
        "hi": round(row["ci"][1], 4),
        "vd": row["verdict"],
        "need": _need(row),
        "stop": stop_text(row),
        "p50": _seconds(row["metrics"]["latency_p50_s"]),
        "c": _dollars(row["metrics"]["cost_usd"]),
        "ca": row["metrics"].get("cached_samples", 0),
        "x": [_sample(s, texts) for s in ordered_samples(row["samples"])],
    }
    suite = suite_label(row)
    if suite is not None:
        found["s"] = suites(suite)
    if row["plan"].get("suite"):
        found["gated"] = True
    if row["message"]:
        found["msg"] = row["message"]
    judge_cost = role_cost(row["metrics"], "judge")
    if judge_cost is not None:
        found["jc"] = round(judge_cost, 10)
    return found


def html_data(report: Report, history: Sequence[HistorySeries] = ()) -> _HtmlData:
    """The page's data: a row per test x model with its samples, bars per model, suite x model
    pass rates for the matrix, and the history series that match a row."""
    models, files, suites, texts = _Interned(), _Interned(), _Interned(), _Interned()
    for name in report["totals"]:
        models(name)
    baseline = report.get("baseline")
    versus = {(r["test"], r["model"]): r for r in baseline["rows"]} if baseline else {}
    series = {(s["test"], s["model"]): s for s in history if s["points"]}
    runs = _Runs()
    rows: list[_HtmlRow] = []
    for row in report["tests"]:
        found = _row(row, models, files, suites, texts)
        key = (row["test"], row["model"])
        if key in versus:
            found["b"] = _versus(versus[key])
        if key in series:
            found["h"] = runs.add(series[key])
        rows.append(found)
    suite_rows: list[_HtmlSuite] = []
    known = set(models.items)
    for s in report.get("suites", []):
        if s["model"] not in known:
            continue
        entry: _HtmlSuite = {
            "s": suites(s["suite"]),
            "m": models(s["model"]),
            "p": s["passed"],
            "v": s["total"],
            "lo": round(s["ci"][0], 4),
            "hi": round(s["ci"][1], 4),
        }
        if "gate" in s:
            entry["g"] = s["gate"]["verdict"]
            if "stopping" in s["gate"]:
                entry["st"] = stopping_text(s["gate"]["stopping"])
        suite_rows.append(entry)
    return {
        "models": [_model_bars(report, name) for name in models.items],
        "files": files.items,
        "suites": suites.items,
        "rows": rows,
        "suite_rows": suite_rows,
        "texts": texts.items,
        "runs": runs.runs,
        "history": runs.series,
        "baseline": bool(baseline),
        "record": report.get("record"),
    }


def _model_bars(report: Report, name: str) -> _HtmlModel:
    totals = report["totals"].get(name)
    if totals is None:
        return {"model": name, "rate": None, "lo": 0.0, "hi": 1.0, "p50": None, "cost": None}
    valid = totals["samples"] - totals["sample_errors"]
    lo, hi = clopper_pearson(totals["sample_passes"], valid, 0.95)
    return {
        "model": name,
        "rate": totals["sample_passes"] / valid if valid else None,
        "lo": lo,
        "hi": hi,
        "p50": totals["latency_p50_s"],
        "cost": totals["cost_usd"],
    }


@cache
def _asset(name: str) -> str:
    return files("pytest_llmeval.report").joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def embedded_json(value: object) -> str:
    """JSON safe inside a `<script>` element: no `<` at all, so no `</script>` or `<!--`."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def html(report: Report, history: Sequence[HistorySeries] = ()) -> str:
    """One HTML file that works offline: its data, style and script inline, and a content
    security policy that lets only that script and style run and nothing load."""
    script, style = _asset("html_report.js"), _asset("html_report.css")
    policy = (
        f"default-src 'none'; script-src 'sha256-{_sha256(script)}'; "
        f"style-src 'sha256-{_sha256(style)}'; img-src data:"
    )
    title = f"pytest-llmeval report {report.get('created_at', '')}"
    data = embedded_json(html_data(report, history))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{htmllib.escape(title)}</title>
<style>{style}</style></head>
<body>
<header><h1>pytest-llmeval</h1>
<p id="headline">{htmllib.escape(headline(report))}</p></header>
<div class="charts"><div id="chart-rate"></div><div id="chart-latency"></div>
<div id="chart-cost"></div></div>
<main id="app"></main>
<noscript>This report draws its table and charts with JavaScript.</noscript>
<script type="application/json" id="llmeval-data">{data}</script>
<script>{script}</script>
</body></html>
"""
