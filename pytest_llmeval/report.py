"""Aggregation of test x model results into metrics, the terminal table and the JSON report."""

from __future__ import annotations

import json
import statistics
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


def with_metrics(result: Result) -> Result:
    """Add derived numbers (run, rate, latency, tokens, cost) computed from the samples."""
    samples = result["samples"]
    valid = result["passed"] + result["failed"]
    latencies = sorted(s["latency_s"] for s in samples if s["calls"])
    costs = [s["cost_usd"] for s in samples if s["cost_usd"] is not None]
    fingerprints = sorted({f for s in samples for f in s["fingerprints"]})
    return {
        **result,
        "run": len(samples),
        "rate": result["passed"] / valid if valid else None,
        "fingerprints": fingerprints,
        "metrics": {
            "latency_p50_s": _quantile(latencies, 0.5),
            "latency_p95_s": _quantile(latencies, 0.95),
            "input_tokens": sum(s["input_tokens"] for s in samples),
            "output_tokens": sum(s["output_tokens"] for s in samples),
            "cost_usd": sum(costs) if costs else None,
            "calls": sum(len(s["calls"]) for s in samples),
        },
    }


def model_totals(results: Iterable[Result]) -> dict[str, dict[str, Any]]:
    """Per-model sums over every test: verdict counts, samples, tokens, cost, latency."""
    totals: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    for result in results:
        t = totals.setdefault(
            result["model"],
            {
                "tests": 0,
                "passed": 0,
                "failed": 0,
                "error": 0,
                "samples": 0,
                "sample_passes": 0,
                "sample_errors": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": None,
            },
        )
        t["tests"] += 1
        t[result["verdict"]] += 1
        t["samples"] += result["run"]
        t["sample_passes"] += result["passed"]
        t["sample_errors"] += result["errors"]
        t["input_tokens"] += result["metrics"]["input_tokens"]
        t["output_tokens"] += result["metrics"]["output_tokens"]
        if result["metrics"]["cost_usd"] is not None:
            t["cost_usd"] = (t["cost_usd"] or 0.0) + result["metrics"]["cost_usd"]
        latencies.setdefault(result["model"], []).extend(
            s["latency_s"] for s in result["samples"] if s["calls"]
        )
    for name, t in totals.items():
        t["latency_p50_s"] = _quantile(sorted(latencies[name]), 0.5)
    return dict(sorted(totals.items()))


def build_report(
    results: Iterable[Result], models: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The versioned JSON document: every test x model with every sample, then model totals."""
    rows = sorted((with_metrics(r) for r in results), key=lambda r: r["nodeid"])
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {name: dict(models[name]) for name in sorted(models)},
        "totals": model_totals(rows),
        "tests": rows,
    }


def write_report(report: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def table_lines(report: Mapping[str, Any]) -> list[str]:
    """The terminal summary: one row per test x model, then per-model totals."""
    header = [
        "test",
        "model",
        "pass/valid",
        "err",
        "rate",
        "CI",
        "need",
        "verdict",
        "stop",
        "p50 s",
        "tok in/out",
        "cost $",
    ]
    rows = [header]
    for r in report["tests"]:
        plan, m = r["plan"], r["metrics"]
        lo, hi = r["ci"]
        rows.append(
            [
                r["test"],
                r["model"],
                f"{r['passed']}/{r['passed'] + r['failed']}",
                str(r["errors"]),
                _pct(r["rate"]),
                f"{lo * 100:.0f}-{hi * 100:.0f}%" if r["run"] else "-",
                _need(plan),
                r["verdict"].upper(),
                _stop(r),
                _num(m["latency_p50_s"], 2),
                f"{m['input_tokens']}/{m['output_tokens']}",
                _num(m["cost_usd"], 4),
            ]
        )
    lines = _align(rows)
    totals = report["totals"]
    if totals:
        lines.append("")
        model_rows = [
            [
                "model",
                "tests",
                "passed",
                "failed",
                "error",
                "samples",
                "sample pass",
                "errors",
                "p50 s",
                "tok in/out",
                "cost $",
            ]
        ]
        for name, t in totals.items():
            valid = t["samples"] - t["sample_errors"]
            model_rows.append(
                [
                    name,
                    str(t["tests"]),
                    str(t["passed"]),
                    str(t["failed"]),
                    str(t["error"]),
                    str(t["samples"]),
                    _pct(t["sample_passes"] / valid if valid else None),
                    str(t["sample_errors"]),
                    _num(t["latency_p50_s"], 2),
                    f"{t['input_tokens']}/{t['output_tokens']}",
                    _num(t["cost_usd"], 4),
                ]
            )
        lines.extend(_align(model_rows))
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
