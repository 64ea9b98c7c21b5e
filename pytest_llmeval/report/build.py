"""Aggregation of test x model results into metrics, the terminal table and the JSON report."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pytest_llmeval.conversation import dialogue_summary
from pytest_llmeval.report.schema import (
    SCHEMA,
    VERSION,
    BudgetInfo,
    CodeMetrics,
    Derived,
    Metrics,
    ModelInfo,
    ModelTotals,
    PlanInfo,
    Report,
    RoleTotals,
    Row,
    Sample,
)
from pytest_llmeval.report.schema import Result as Result  # re-exported: plugin.py imports it
from pytest_llmeval.report.suites import compare, gated, stopping_text
from pytest_llmeval.sandbox.code import sandbox_summary
from pytest_llmeval.verdict.sampling import STOP_COMPLETED, STOP_ERRORS, STOP_SETTLED, Sampled
from pytest_llmeval.verdict.stats import pass_at_k
from pytest_llmeval.verdict.transcript import DEFAULT_RECORD, kept_samples


def result_row(
    nodeid: str,
    test: str,
    model: ModelInfo,
    plan: PlanInfo,
    *,
    verdict: str,
    stop_reason: str,
    passed: int,
    failed: int,
    errors: int,
    ci: tuple[float, float],
    wall_s: float,
    message: str | None,
    samples: list[Sample],
) -> Result:
    """The one constructor of a `Result`, the record of a test x model that travels from the
    process that ran it to the controller (`passed`, `failed`, `errors`: sample counts)."""
    return {
        "nodeid": nodeid,
        "test": test,
        "model": model["name"],
        "model_id": model["model_id"],
        "plan": plan,
        "verdict": verdict,
        "stop_reason": stop_reason,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "ci": list(ci),
        "wall_s": wall_s,
        "message": message,
        "samples": samples,
    }


def sampled_result(
    nodeid: str,
    test: str,
    model: ModelInfo,
    sampled: Sampled,
    message: str | None,
    record: str = DEFAULT_RECORD,
) -> Result:
    """The record of one test x model that was sampled; `record` chooses the samples that keep
    their transcripts (`verdict.transcript.kept_samples`)."""
    kept = kept_samples([r.outcome for r in sampled.records], record)
    result = result_row(
        nodeid,
        test,
        model,
        sampled.plan.to_dict(),
        verdict=sampled.verdict,
        stop_reason=sampled.stop_reason,
        passed=sampled.passes,
        failed=sampled.failures,
        errors=sampled.errors,
        ci=sampled.interval,
        wall_s=round(sampled.wall_s, 6),
        message=message,
        samples=[r.to_dict(transcript=i in kept) for i, r in enumerate(sampled.records)],
    )
    if sampled.decision is not None:
        result["decision"] = sampled.decision
    if sampled.gate_stop is not None:
        result["gate_stop"] = sampled.gate_stop
    return result


def broken_result(
    nodeid: str,
    test: str,
    model: ModelInfo,
    plan: PlanInfo,
    reason: str,
    message: str,
) -> Result:
    """Record for a test x model that never produced samples (setup error, crashed worker)."""
    return result_row(
        nodeid,
        test,
        model,
        plan.copy(),
        verdict="error",
        stop_reason=reason,
        passed=0,
        failed=0,
        errors=0,
        ci=(0.0, 1.0),
        wall_s=0.0,
        message=message,
        samples=[],
    )


def sample_metrics(samples: Sequence[Sample]) -> Metrics:
    """Latency, time to first token, throughput, tokens, cost and error causes of samples."""
    latencies = sorted(s["latency_s"] for s in samples if s["calls"])
    ttfts = sorted(ttft for s in samples if (ttft := s.get("ttft_s")) is not None)
    costs = [cost for s in samples if (cost := s["cost_usd"]) is not None]
    saved = [usd for s in samples if (usd := s.get("saved_usd")) is not None]
    output = sum(s["output_tokens"] for s in samples)
    generating = sum(s["latency_s"] - (s.get("ttft_s") or 0.0) for s in samples if s["calls"])
    causes = Counter(
        cause
        for s in samples
        if s["outcome"] == "error" and (cause := s.get("cause") or s["error_type"]) is not None
    )
    metrics: Metrics = {
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        "ttft_p50_s": _quantile(ttfts, 0.5),
        "tokens_per_s": output / generating if output and generating > 0 else None,
        "input_tokens": sum(s["input_tokens"] for s in samples),
        "output_tokens": output,
        "cost_usd": sum(costs) if costs else None,
        "saved_usd": sum(saved) if saved else None,
        "cached_samples": sum(bool(s.get("cached")) for s in samples),
        "calls": sum(c.get("role", "model") == "model" for s in samples for c in s["calls"]),
        "retries": sum(s.get("retries", 0) for s in samples),
        "errors_by_cause": dict(sorted(causes.items())),
    }
    roles = _role_totals(samples)
    if roles:
        metrics["roles"] = roles
    return metrics


def _role_totals(samples: Sequence[Sample]) -> dict[str, RoleTotals]:
    """The judge's and the embedding model's calls, tokens and cost, summed over samples."""
    totals: dict[str, RoleTotals] = {}
    for sample in samples:
        for role, part in sample.get("roles", {}).items():
            into = totals.setdefault(
                role,
                {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None,
                 "latency_s": 0.0},
            )  # fmt: skip
            into["calls"] += part["calls"]
            into["input_tokens"] += part["input_tokens"]
            into["output_tokens"] += part["output_tokens"]
            into["latency_s"] = round(into["latency_s"] + part["latency_s"], 6)
            if part["cost_usd"] is not None:
                into["cost_usd"] = (into["cost_usd"] or 0.0) + part["cost_usd"]
    return dict(sorted(totals.items()))


PASS_AT = (1, 5, 10)


def code_metrics(result: Result) -> CodeMetrics | None:
    """For tests that ran generated code in the sandbox: pass@k (unbiased, k <= valid samples)
    and the sandbox summary (syntax-error rate, mean solution lines, ...)."""
    summary = sandbox_summary(result["samples"])
    if summary is None:
        return None
    n, c = result["passed"] + result["failed"], result["passed"]
    return {"pass_at": {str(k): pass_at_k(n, c, k) for k in PASS_AT if k <= n}, **summary}


def with_metrics(result: Result) -> Row:
    """Add derived numbers (run, rate, metrics, fingerprints) computed from the samples: the one
    constructor of a `Row`. A row of a saved report (merge) is a `Result` too; its derived keys
    are computed again, in place."""
    samples = result["samples"]
    valid = result["passed"] + result["failed"]
    derived: Derived = {
        "run": len(samples),
        "rate": result["passed"] / valid if valid else None,
        "fingerprints": sorted({f for s in samples for f in s["fingerprints"]}),
        "metrics": sample_metrics(samples),
        "code": code_metrics(result),
    }
    return {**result, **derived}


def model_totals(results: Iterable[Row]) -> dict[str, ModelTotals]:
    """Per model, over every test: verdict counts, samples, and the metrics of all its samples."""
    grouped: dict[str, list[Row]] = {}
    for result in results:
        grouped.setdefault(result["model"], []).append(result)
    totals: dict[str, ModelTotals] = {}
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
    models: Mapping[str, ModelInfo],
    budget: tuple[float, float] | None = None,
) -> Report:
    """The versioned JSON document: every test x model with every sample, then model totals."""
    rows = sorted((with_metrics(r) for r in results), key=lambda r: r["nodeid"])
    add_dialogues(rows)
    spend: BudgetInfo | None = None
    if budget is not None:
        spend = {"limit_usd": budget[0], "spent_usd": budget[1]}
    sections = compare(rows)
    report: Report = {
        "schema": SCHEMA,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {name: models[name].copy() for name in sorted(models)},
        "budget": spend,
        "totals": model_totals(rows),
        "tests": rows,
        "suites": sections["suites"],
        "comparisons": sections["comparisons"],
        "routing": sections["routing"],
    }
    if "preferences" in sections:
        report["preferences"] = sections["preferences"]
    return report


def add_dialogues(rows: Iterable[Row]) -> None:
    """Per-turn pass rates on the rows of tests that score dialogue turns (`dialogue` key)."""
    for row in rows:
        dialogue = dialogue_summary(row["samples"])
        if dialogue is not None:
            row["dialogue"] = dialogue


def write_report(report: Mapping[str, object], path: Path, indent: int | None = None) -> None:
    """Any report as JSON: a `Report`, or one without some sections (a baseline to write).
    Compact by default (the C encoder; an indented dump of a 2,000-case run takes a second);
    a baseline kept in a repository is written indented, for readable diffs."""
    write_text(path, json.dumps(report, indent=indent, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file next to the real target, so a reader never sees half a
    report; a device or pipe (`/dev/null`, `/dev/stdout`) is written to, never replaced."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        with path.open("w", encoding="utf-8") as target:
            target.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


METRIC_HEADER = ["p50 s", "p95 s", "ttft s", "tok/s", "tok in/out", "cost $"]


def _metric_cells(m: Metrics) -> list[str]:
    return [
        _num(m["latency_p50_s"], 2),
        _num(m["latency_p95_s"], 2),
        _num(m["ttft_p50_s"], 2),
        _num(m["tokens_per_s"], 1),
        f"{m['input_tokens']}/{m['output_tokens']}",
        _num(m["cost_usd"], 4),
    ]


ROLES = ("judge", "embedding", "rival")
ROLE_HEADER = {"judge": "judge $", "embedding": "embed $", "rival": "rival $"}


def roles_used(metrics: Iterable[Metrics]) -> list[str]:
    """The judge and embedding roles that made calls, for their own cost columns."""
    used = {role for m in metrics for role in m.get("roles", {})}
    return [role for role in ROLES if role in used]


def role_cost(m: Metrics, role: str) -> float | None:
    part = m.get("roles", {}).get(role)
    return None if part is None else part["cost_usd"]


def table_lines(report: Report) -> list[str]:
    """The terminal summary: one row per test x model, then per-model totals and spend. The
    judge's and the embedding model's costs have their own columns, apart from the model's."""
    roles = roles_used(t for t in report["totals"].values())
    role_header = [ROLE_HEADER[role] for role in roles]
    header = ["test", "model", "pass/valid", "err", "rate", "CI", "need", "verdict", "stop"]
    rows = [header + METRIC_HEADER + role_header]
    in_suites = 0
    for r in report["tests"]:
        if gated(r) and r["verdict"] != "error":
            in_suites += 1
            continue
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
        rows.append(cells + _metric_cells(r["metrics"]) + _role_cells(r["metrics"], roles))
    lines = _align(rows) if len(rows) > 1 else []
    if in_suites:
        lines.append(f"({in_suites} cases of gated suites: their suite rows below judge them)")
    totals = report["totals"]
    if totals:
        lines.append("")
        header = ["model", "tests", "passed", "failed", "error", "samples", "sample pass", "errors"]
        model_rows = [header + METRIC_HEADER + role_header]
        causes = []
        for name, t in totals.items():
            valid = t["samples"] - t["sample_errors"]
            cells = [name, str(t["tests"]), str(t["passed"]), str(t["failed"]), str(t["error"])]
            cells += [str(t["samples"]), _pct(t["sample_passes"] / valid if valid else None)]
            model_rows.append(
                [*cells, str(t["sample_errors"]), *_metric_cells(t), *_role_cells(t, roles)]
            )
            if t["errors_by_cause"]:
                by_cause = ", ".join(f"{k} {v}" for k, v in t["errors_by_cause"].items())
                causes.append(f"errors of {name} by cause: {by_cause} ({t['retries']} retries)")
        lines.extend(_align(model_rows))
        lines.extend(causes)
        lines.extend(_cache_lines(totals))
    lines.extend(judged_lines(report["tests"]))
    lines.extend(code_lines(report["tests"]))
    budget = report.get("budget")
    if budget:
        lines.append(f"budget: ${budget['spent_usd']:.4f} spent of ${budget['limit_usd']:g}")
    lines.extend(dialogue_lines(report))
    lines.extend(suite_lines(report))
    lines.extend(preference_lines(report))
    lines.extend(in_order_lines(report["tests"]))
    return lines


def _role_cells(m: Metrics, roles: Sequence[str]) -> list[str]:
    return [_num(role_cost(m, role), 4) for role in roles]


def judged_lines(tests: Sequence[Row]) -> list[str]:
    """Tests the judge graded: the judged rate, and the true rate when it could be corrected."""
    judged = [r for r in tests if "judged" in r]
    if not judged:
        return []
    rows = [["judged test", "model", "judge", "judged rate", "true rate", "CI", "verdict about"]]
    notes: dict[str, str] = {}
    for r in judged:
        j = r["judged"]
        ci = j["ci"]
        rows.append(
            [
                r["test"],
                r["model"],
                j["judge"],
                _pct(j["judged_rate"]),
                _pct(j["corrected_rate"]),
                "-" if ci is None else f"{ci[0] * 100:.0f}-{ci[1] * 100:.0f}%",
                "true rate (calibrated judge)" if j["about"] == "true_rate" else "judged rate",
            ]
        )
        if j["about"] != "true_rate":
            notes.setdefault(j["note"], r["test"])
    lines = ["", *_align(rows)]
    lines += [f"{test}: {note}" for note, test in notes.items()]
    return lines


def in_order_lines(tests: Sequence[Row]) -> list[str]:
    """Once per test function whose cases could not run ahead of their turn: why."""
    reasons: dict[str, str] = {}
    for r in tests:
        reason = r.get("in_order")
        if reason is not None:
            reasons.setdefault(r["test"].split("[", 1)[0], reason)
    if not reasons:
        return []
    lines = ["", "cases that waited for their turn (not run ahead with the others):"]
    return lines + [f"  {function}: {reason}" for function, reason in sorted(reasons.items())]


# --- Dialogue turns, benchmark suites, comparisons and routing (compare.py, conversation.py) ---


def preference_lines(report: Report) -> list[str]:
    """Which model writes better answers: the judge's pairwise preferences, both orders."""
    found = report.get("preferences") or []
    if not found:
        return []
    rows = [["which is better", "model A", "model B", "compared", "A better", "B better"]]
    rows[0] += ["ties (flips)", "sign test p", "verdict"]
    for c in found:
        if c["significant"]:
            verdict = f"{c['a'] if c['a_only'] > c['b_only'] else c['b']} better"
        else:
            verdict = "no significant difference"
        rows.append(
            [
                c["suite"],
                c["a"],
                c["b"],
                str(c["cases"]),
                str(c["a_only"]),
                str(c["b_only"]),
                f"{c['ties']} ({c['flips']})",
                f"{c['p_value']:.4g}",
                verdict,
            ]
        )
    return ["", *_align(rows)]


def dialogue_lines(report: Report) -> list[str]:
    """Per test x model that scored dialogue turns: the pass rate of each turn."""
    rows = [["dialogue", "model", "turn", "passed", "rate", "checks (rate)"]]
    for r in report["tests"]:
        dialogue = r.get("dialogue")
        if not dialogue:
            continue
        mean = f"{dialogue['mean_turns_passed']:.1f}/{dialogue['turns_scored']} turns"
        rows.append([r["test"], r["model"], "all", mean, _pct(r["rate"]), "whole dialogue"])
        for t in dialogue["turns"]:
            checks = ", ".join(f"{c['name']} {_pct(c['rate'])}" for c in t["checks"])
            rows.append(
                ["", "", str(t["turn"]), f"{t['passed']}/{t['total']}", _pct(t["rate"]), checks]
            )
    return ["", *_align(rows)] if len(rows) > 1 else []


def suite_lines(report: Report) -> list[str]:
    """Suite rows like a leaderboard, then paired McNemar tests and the routing table."""
    suites = report.get("suites") or []
    if not suites:
        return []
    code = any("sandbox_runs" in s for s in suites)
    gates = any("gate" in s for s in suites)
    header = ["suite", "model", "cases", "passed", "rate", "95% CI", "pass@1", "err", "cost/case"]
    rows = [
        header
        + (["syntax err", "mean lines"] if code else [])
        + (["need", "gate CI", "verdict"] if gates else [])
    ]
    subjects = []
    for s in suites:
        lo, hi = s["ci"]
        cells = [
            s["suite"],
            s["model"],
            str(s["cases"]),
            f"{s['passed']}/{s['total']}",
            _pct(s["rate"]),
            f"{lo * 100:.0f}-{hi * 100:.0f}%",
            _pct(s["pass_at_1"]),
            str(s["errors"]),
            _num(s["cost_per_case"], 6),
        ]
        if code:
            cells += [_pct(s.get("syntax_error_rate")), _num(s.get("mean_solution_lines"), 1)]
        gate = s.get("gate")
        if gate is not None:
            glo, ghi = gate["ci"]
            need = f"{gate['pass_rate']:.2f} {gate['mode']} ({gate['population']})"
            cells += [need, f"{glo * 100:.0f}-{ghi * 100:.0f}%", gate["verdict"].upper()]
            if gate["worst"]:
                subjects.append(f"{s['suite']} [{s['model']}] worst: {', '.join(gate['worst'])}")
            if "stopping" in gate:
                subjects.append(f"{s['suite']} [{s['model']}] {stopping_text(gate['stopping'])}")
        elif gates:
            cells += ["-", "-", "-"]
        rows.append(cells)
        if s["subjects"]:
            by_subject = ", ".join(
                f"{name} {v['passed']}/{v['total']}" for name, v in s["subjects"].items()
            )
            subjects.append(f"{s['suite']} [{s['model']}] by subject: {by_subject}")
    lines = ["", *_align(rows), *subjects]
    pairs = report.get("comparisons") or []
    if pairs:
        rows = [
            [
                "suite",
                "model A",
                "model B",
                "cases",
                "A rate",
                "B rate",
                "only A",
                "only B",
                "McNemar p",
                "",
            ]
        ]
        for c in pairs:
            rows.append(
                [
                    c["suite"],
                    c["a"],
                    c["b"],
                    str(c["cases"]),
                    _pct(c["a_rate"]),
                    _pct(c["b_rate"]),
                    str(c["a_only"]),
                    str(c["b_only"]),
                    f"{c['p_value']:.4g}",
                    "p<0.05" if c["significant"] else "n.s.",
                ]
            )
        lines += ["", *_align(rows)]
    routing = report.get("routing") or []
    if routing:
        rows = [["suite", "best", "best rate", "route to", "rate", "cost/case", "why"]]
        for r in routing:
            rows.append(
                [
                    r["suite"],
                    r["best"],
                    _pct(r["best_rate"]),
                    r["recommended"],
                    _pct(r["rate"]),
                    _num(r["cost_per_case"], 6),
                    r["note"],
                ]
            )
        lines += ["", *_align(rows)]
    return lines


def code_lines(tests: Sequence[Row]) -> list[str]:
    """Generated-code rows: pass@k, syntax errors, solution length, and a warning if any code
    ran without isolation."""
    coded = [(r, code) for r in tests if (code := r.get("code"))]
    if not coded:
        return []
    header = ["test", "model", *(f"pass@{k}" for k in PASS_AT), "syntax err", "mean lines"]
    rows = [[*header, "hidden cases"]]
    for r, code in coded:
        rows.append(
            [
                r["test"],
                r["model"],
                *(_pct(code["pass_at"].get(str(k))) for k in PASS_AT),
                _pct(code["syntax_error_rate"]),
                _num(code["mean_lines"], 1),
                _pct(code["hidden_cases"]),
            ]
        )
    lines = ["", *_align(rows)]
    unsafe = sum(code["unsafe_runs"] for _, code in coded)
    if unsafe:
        lines.append(f"WARNING: {unsafe} sandbox runs were NOT isolated (--llm-sandbox=unsafe)")
    return lines


def _cache_lines(totals: Mapping[str, ModelTotals]) -> list[str]:
    """One line per model that had answers from the response cache: samples and money saved."""
    lines = []
    for name, t in totals.items():
        if t["cached_samples"]:
            saved = "" if t["saved_usd"] is None else f", ${t['saved_usd']:.4f} saved"
            lines.append(f"cache of {name}: {t['cached_samples']}/{t['samples']} samples{saved}")
    return lines


def _need(plan: PlanInfo) -> str:
    if not plan.get("marked", True):
        return "once"
    return f"{plan['pass_rate']:.2f} {plan['mode']}"


def stop_text(result: Result) -> str:
    """Why sampling stopped, in words: the design's bound, or the old reasons."""
    decision, futile = result.get("decision"), result.get("gate_stop")
    if decision is None:
        text = result["stop_reason"]
    else:
        text = f"stopped after {decision['at']}: {decision['why']}"
        if decision["overshoot"]:
            text += f"; {decision['overshoot']} more ran (launched before the stop), not counted"
    if futile is not None:
        text += f"; the baseline gate stopped after {futile['at']}: {futile['why']}"
    return text


def _stop(result: Row) -> str:
    reason, run, planned = result["stop_reason"], result["run"], result["plan"].get("samples", 0)
    decision = result.get("decision")
    futile = result.get("gate_stop")
    gated = f" gate {futile['at']}" if futile is not None else ""
    if decision is not None:
        extra = f"+{decision['overshoot']}" if decision["overshoot"] else ""
        return f"seq {decision['at']}{extra}/{planned}{gated}"
    if futile is not None:
        return f"gate {futile['at']}/{planned}"
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
