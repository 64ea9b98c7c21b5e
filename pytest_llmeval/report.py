"""Aggregation of test x model results into metrics, the terminal table and the JSON report."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .sampling import STOP_COMPLETED, STOP_ERRORS, STOP_SETTLED, Sampled

SCHEMA = "pytest-llmeval/report"
VERSION = 1
Result = dict[str, Any]


def sampled_result(
    nodeid: str, test: str, model: Mapping[str, Any], sampled: Sampled, message: str | None
) -> Result:
    """The plain-dict record of one test x model that travels to the controller."""
    lo, hi = sampled.interval
    return {
        "nodeid": nodeid,
        "test": test,
        "model": model["name"],
        "model_id": model["model_id"],
        "plan": sampled.plan.to_dict(),
        "verdict": sampled.verdict,
        "stop_reason": sampled.stop_reason,
        "passed": sampled.passes,
        "failed": sampled.failures,
        "errors": sampled.errors,
        "ci": [lo, hi],
        "wall_s": round(sampled.wall_s, 6),
        "message": message,
        "samples": [record.to_dict() for record in sampled.records],
    }


def broken_result(
    nodeid: str,
    test: str,
    model: Mapping[str, Any],
    plan: Mapping[str, Any],
    reason: str,
    message: str,
) -> Result:
    """Record for a test x model that never produced samples (setup error, crashed worker)."""
    return {
        "nodeid": nodeid,
        "test": test,
        "model": model["name"],
        "model_id": model["model_id"],
        "plan": dict(plan),
        "verdict": "error",
        "stop_reason": reason,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "ci": [0.0, 1.0],
        "wall_s": 0.0,
        "message": message,
        "samples": [],
    }


def sample_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Latency, time to first token, throughput, tokens, cost and error causes of samples."""
    latencies = sorted(s["latency_s"] for s in samples if s["calls"])
    ttfts = sorted(s["ttft_s"] for s in samples if s.get("ttft_s") is not None)
    costs = [s["cost_usd"] for s in samples if s["cost_usd"] is not None]
    saved = [s["saved_usd"] for s in samples if s.get("saved_usd") is not None]
    output = sum(s["output_tokens"] for s in samples)
    generating = sum(s["latency_s"] - (s.get("ttft_s") or 0.0) for s in samples if s["calls"])
    causes = Counter(s.get("cause") or s["error_type"] for s in samples if s["outcome"] == "error")
    return {
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        "ttft_p50_s": _quantile(ttfts, 0.5),
        "tokens_per_s": output / generating if output and generating > 0 else None,
        "input_tokens": sum(s["input_tokens"] for s in samples),
        "output_tokens": output,
        "cost_usd": sum(costs) if costs else None,
        "saved_usd": sum(saved) if saved else None,
        "cached_samples": sum(bool(s.get("cached")) for s in samples),
        "calls": sum(len(s["calls"]) for s in samples),
        "retries": sum(s.get("retries", 0) for s in samples),
        "errors_by_cause": dict(sorted(causes.items())),
    }


def with_metrics(result: Result) -> Result:
    """Add derived numbers (run, rate, metrics, fingerprints) computed from the samples."""
    samples = result["samples"]
    valid = result["passed"] + result["failed"]
    return {
        **result,
        "run": len(samples),
        "rate": result["passed"] / valid if valid else None,
        "fingerprints": sorted({f for s in samples for f in s["fingerprints"]}),
        "metrics": sample_metrics(samples),
    }


def model_totals(results: Iterable[Result]) -> dict[str, dict[str, Any]]:
    """Per model, over every test: verdict counts, samples, and the metrics of all its samples."""
    grouped: dict[str, list[Result]] = {}
    for result in results:
        grouped.setdefault(result["model"], []).append(result)
    totals = {}
    for name, rows in sorted(grouped.items()):
        verdicts = Counter(r["verdict"] for r in rows)
        totals[name] = {
            "tests": len(rows),
            "passed": verdicts["passed"],
            "failed": verdicts["failed"],
            "error": verdicts["error"],
            "samples": sum(r["run"] for r in rows),
            "sample_passes": sum(r["passed"] for r in rows),
            "sample_errors": sum(r["errors"] for r in rows),
            **sample_metrics([s for r in rows for s in r["samples"]]),
        }
    return totals


def build_report(
    results: Iterable[Result],
    models: Mapping[str, Mapping[str, Any]],
    budget: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The versioned JSON document: every test x model with every sample, then model totals."""
    rows = sorted((with_metrics(r) for r in results), key=lambda r: r["nodeid"])
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {name: dict(models[name]) for name in sorted(models)},
        "budget": None if budget is None else {"limit_usd": budget[0], "spent_usd": budget[1]},
        "totals": model_totals(rows),
        "tests": rows,
    }


def write_report(report: Mapping[str, Any], path: Path) -> None:
    write_text(path, json.dumps(report, indent=2, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


METRIC_HEADER = ["p50 s", "p95 s", "ttft s", "tok/s", "tok in/out", "cost $"]


def _metric_cells(m: Mapping[str, Any]) -> list[str]:
    return [
        _num(m["latency_p50_s"], 2),
        _num(m["latency_p95_s"], 2),
        _num(m["ttft_p50_s"], 2),
        _num(m["tokens_per_s"], 1),
        f"{m['input_tokens']}/{m['output_tokens']}",
        _num(m["cost_usd"], 4),
    ]


def table_lines(report: Mapping[str, Any]) -> list[str]:
    """The terminal summary: one row per test x model, then per-model totals and spend."""
    header = ["test", "model", "pass/valid", "err", "rate", "CI", "need", "verdict", "stop"]
    rows = [header + METRIC_HEADER]
    for r in report["tests"]:
        lo, hi = r["ci"]
        cells = [
            r["test"],
            r["model"],
            f"{r['passed']}/{r['passed'] + r['failed']}",
            str(r["errors"]),
            _pct(r["rate"]),
            f"{lo * 100:.0f}-{hi * 100:.0f}%" if r["run"] else "-",
            _need(r["plan"]),
            r["verdict"].upper(),
            _stop(r),
        ]
        rows.append(cells + _metric_cells(r["metrics"]))
    lines = _align(rows)
    totals = report["totals"]
    if totals:
        lines.append("")
        header = ["model", "tests", "passed", "failed", "error", "samples", "sample pass", "errors"]
        model_rows = [header + METRIC_HEADER]
        causes = []
        for name, t in totals.items():
            valid = t["samples"] - t["sample_errors"]
            cells = [name, str(t["tests"]), str(t["passed"]), str(t["failed"]), str(t["error"])]
            cells += [str(t["samples"]), _pct(t["sample_passes"] / valid if valid else None)]
            model_rows.append([*cells, str(t["sample_errors"]), *_metric_cells(t)])
            if t["errors_by_cause"]:
                by_cause = ", ".join(f"{k} {v}" for k, v in t["errors_by_cause"].items())
                causes.append(f"errors of {name} by cause: {by_cause} ({t['retries']} retries)")
        lines.extend(_align(model_rows))
        lines.extend(causes)
        lines.extend(_cache_lines(totals))
    budget = report.get("budget")
    if budget:
        lines.append(f"budget: ${budget['spent_usd']:.4f} spent of ${budget['limit_usd']:g}")
    return lines


def _cache_lines(totals: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per model that had answers from the response cache: samples and money saved."""
    lines = []
    for name, t in totals.items():
        if t["cached_samples"]:
            saved = "" if t["saved_usd"] is None else f", ${t['saved_usd']:.4f} saved"
            lines.append(f"cache of {name}: {t['cached_samples']}/{t['samples']} samples{saved}")
    return lines


def _need(plan: Mapping[str, Any]) -> str:
    if not plan.get("marked", True):
        return "once"
    return f"{plan['pass_rate']:.2f} {plan['mode']}"


def _stop(result: Mapping[str, Any]) -> str:
    reason, run, planned = result["stop_reason"], result["run"], result["plan"].get("samples", 0)
    if reason == STOP_SETTLED:
        return f"settled {run}/{planned}"
    if reason == STOP_COMPLETED:
        return f"all {run}"
    if reason == STOP_ERRORS:
        return f"errors {run}/{planned}"
    return str(reason)


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
