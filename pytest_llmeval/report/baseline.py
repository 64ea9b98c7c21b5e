"""Baseline gate: each test x model against a saved report (Fisher's exact test, in `stats`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TypeGuard, cast

from pytest_llmeval.errors import BaselineError
from pytest_llmeval.report.diff import transcript_diff
from pytest_llmeval.report.schema import (
    SCHEMA,
    VERSION,
    BaselineComparison,
    Report,
    Result,
    Row,
    RowComparison,
    SuiteComparison,
    SuiteGate,
    SuiteRow,
)
from pytest_llmeval.report.suites import by_suite, gated, outcomes
from pytest_llmeval.verdict.stats import drop_p_value
from pytest_llmeval.verdict.suite import paired_regression


def load_report(path: Path) -> Report:
    """A JSON report of this plugin (schema and version checked), as saved by `--llm-report`.

    The one place where a report from disk becomes a `Report`: past the schema, the version and
    the shape of its `tests` rows, it is taken to be what this plugin's version wrote."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the report ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BaselineError(f"{path}: not a pytest-llmeval report (schema is not {SCHEMA!r})")
    if doc.get("version") != VERSION:
        raise BaselineError(
            f"{path}: report version {doc.get('version')!r}, this plugin reads {VERSION}"
        )
    tests = doc.get("tests")
    if not isinstance(tests, list) or not all(
        isinstance(t, dict) and {"test", "model", "passed", "failed"} <= t.keys() for t in tests
    ):
        raise BaselineError(f"{path}: 'tests' must be a list of test x model rows")
    return cast(Report, doc)


def index(report: Report) -> dict[tuple[str, str], Row]:
    """Rows of a report by (test, model): the identity that survives model lists and shards."""
    return {(row["test"], row["model"]): row for row in report["tests"]}


def _is_row(row: Result) -> TypeGuard[Row]:
    """A row of a report (with its derived keys), not yet a fresh result of this run."""
    return "fingerprints" in row


def _fingerprints(row: Result) -> list[str]:
    found = row.get("fingerprints") if _is_row(row) else None
    if found is None:
        found = sorted({f for s in row.get("samples", []) for f in s.get("fingerprints", [])})
    return list(found)


def compare_row(base: Result, row: Result) -> RowComparison:
    """One test x model against its baseline row: rates, p-value, verdict, prompt change; and
    for a regressed or changed row, the prompt diff and an answer from each run."""
    base_valid = base["passed"] + base["failed"]
    valid = row["passed"] + row["failed"]
    alpha = 1.0 - float(row["plan"].get("confidence", 0.95))
    passed, judged = row["passed"], valid
    futile = row.get("gate_stop")
    if futile is not None and futile["baseline"] == [base["passed"], base_valid]:
        passed, judged = futile["passed"], futile["valid"]  # what the gate stopped on
    p_value = drop_p_value(base["passed"], base_valid, passed, judged)
    old, new = _fingerprints(base), _fingerprints(row)
    compared: RowComparison = {
        "test": row["test"],
        "model": row["model"],
        "baseline_passed": base["passed"],
        "baseline_valid": base_valid,
        "passed": row["passed"],
        "valid": valid,
        "p_value": p_value,
        "alpha": alpha,
        "regressed": row.get("verdict") != "error" and p_value <= alpha,
        "prompt_changed": bool(old and new and old != new),
    }
    if compared["regressed"] or compared["prompt_changed"]:
        diff = transcript_diff(base, row)
        if diff is not None:
            compared["diff"] = diff
    return compared


def compare(report: Report, baseline: Report, source: str) -> BaselineComparison:
    """The comparison section of a report: every common row (a gated suite's cases as one
    paired comparison per suite x model), then tests new and gone."""
    old, new = index(baseline), index(report)
    common = {key: compare_row(old[key], new[key]) for key in sorted(new) if key in old}
    rows = [row for key, row in common.items() if not gated(new[key])]
    changed = {key for key, row in common.items() if row["prompt_changed"]}
    suites = compare_suites(report, baseline, changed)
    return {
        "source": source,
        "created_at": baseline.get("created_at"),
        "rows": rows,
        "suites": suites,
        "regressions": sum(r["regressed"] for r in rows) + sum(s["regressed"] for s in suites),
        "changed_prompts": len(changed),
        "new": [_label(key) for key in sorted(new) if key not in old],
        "gone": [_label(key) for key in sorted(old) if key not in new],
    }


def compare_suites(
    report: Report, baseline: Report, changed: Collection[tuple[str, str]] = ()
) -> list[SuiteComparison]:
    """Each gated suite x model of the report against the same suite of the baseline: case
    paired with case, by the exact sign test (McNemar's with one sample per case); `changed`
    holds the (test, model) keys whose prompts changed."""
    before = by_suite(baseline["tests"])
    found: list[SuiteComparison] = []
    for suite, models in sorted(by_suite(report["tests"]).items()):
        for model, cases in sorted(models.items()):
            plans = [row["plan"] for row in cases.values() if gated(row)]
            old = before.get(suite, {}).get(model)
            if not plans or not old:
                continue
            alpha = 1.0 - float(plans[0]["confidence"])
            paired = paired_regression(
                {case: outcomes(row) for case, row in old.items()},
                {case: outcomes(row) for case, row in cases.items()},
                alpha,
            )
            found.append(
                {
                    "suite": suite,
                    "model": model,
                    "cases": paired.cases,
                    "worse": paired.worse,
                    "better": paired.better,
                    "ties": paired.ties,
                    "p_value": paired.p_value,
                    "alpha": alpha,
                    "regressed": paired.regressed,
                    "baseline_rate": paired.base_rate,
                    "rate": paired.rate,
                    "added": list(paired.added),
                    "removed": list(paired.removed),
                    "prompt_changed": sum(
                        (row["test"], model) in changed for row in cases.values()
                    ),
                }
            )
    return found


def suite_change(row: SuiteComparison) -> str:
    """`pass@1 84.1% -> 79.3% over 164 paired cases: 12 worse, 4 better, p=0.038`."""
    before = "-" if row["baseline_rate"] is None else f"{row['baseline_rate']:.1%}"
    now = "-" if row["rate"] is None else f"{row['rate']:.1%}"
    text = (
        f"pass@1 {before} -> {now} over {row['cases']} paired cases: {row['worse']} worse, "
        f"{row['better']} better, p={row['p_value']:.4g}"
    )
    if row["added"] or row["removed"]:
        text += f" ({len(row['added'])} cases new, {len(row['removed'])} gone)"
    return text


def _label(key: tuple[str, str]) -> str:
    return f"{key[0]} [{key[1]}]"


def change(row: RowComparison, arrow: str = "->") -> str:
    """`20/20 (100%) -> 5/10 (50%), p=0.001768` (and whether the prompt changed)."""
    before = rate_text(row["baseline_passed"], row["baseline_valid"])
    text = f"{before} {arrow} {rate_text(row['passed'], row['valid'])}, p={row['p_value']:.4g}"
    return text + (", prompt changed" if row["prompt_changed"] else "")


def regression_message(row: RowComparison) -> str:
    """Why a test x model fails the gate, for the pytest failure."""
    return (
        f"llmeval: regression vs baseline: {change(row)} <= {row['alpha']:.2g} "
        "(Fisher exact one-sided)"
    )


def rate_text(passes: int, valid: int) -> str:
    """`7/10 (70%)`."""
    return f"{passes}/{valid}" + (f" ({passes / valid:.0%})" if valid else "")


def summary_lines(comparison: BaselineComparison) -> list[str]:
    """Terminal lines: the counts, then each regression, changed prompt, new and gone test."""
    lines = [
        f"baseline {comparison['source']}: {comparison['regressions']} regressions, "
        f"{comparison['changed_prompts']} changed prompts, {len(comparison['new'])} new, "
        f"{len(comparison['gone'])} gone"
    ]
    for row in comparison["rows"]:
        label = _label((row["test"], row["model"]))
        if row["regressed"]:
            lines.append(f"REGRESSED {label}: {change(row)} <= {row['alpha']:.2g}")
        elif row["prompt_changed"]:
            lines.append(f"prompt changed: {label}")
    for suite in comparison.get("suites", []):
        label = _label((suite["suite"], suite["model"]))
        verdict = "REGRESSED suite" if suite["regressed"] else "suite"
        alpha = f"sign test, alpha {suite['alpha']:.2g}"
        lines.append(f"{verdict} {label}: {suite_change(suite)} ({alpha})")
        if suite["prompt_changed"]:
            lines.append(f"  prompt changed in {suite['prompt_changed']} of its cases")
        for kind in ("added", "removed"):
            if suite[kind]:
                shown = ", ".join(suite[kind][:10]) + (" ..." if len(suite[kind]) > 10 else "")
                lines.append(f"  cases {kind} since the baseline: {shown}")
    lines.extend(f"new: {label}" for label in comparison["new"])
    lines.extend(f"gone: {label}" for label in comparison["gone"])
    return lines


def failing(
    comparison: BaselineComparison | None,
    tests: Iterable[Result],
    fail_on: str,
    suites: Iterable[SuiteRow] = (),
) -> bool:
    """Whether a (merged) report fails the gate under `--llm-fail-on` (no comparison: no
    baseline, so no regressions). A gated suite's case fails only by erring; its suite's
    verdict counts instead."""
    regressions = 0 if comparison is None else comparison["regressions"]
    if fail_on in ("regression", "both") and regressions:
        return True
    if fail_on not in ("threshold", "both"):
        return False
    missed = any(
        t["verdict"] not in (("passed", "failed") if gated(t) else ("passed",)) for t in tests
    )
    return missed or any(s["gate"]["verdict"] != "passed" for s in suites if "gate" in s)


def suite_failures(report: Report, fail_on: str) -> list[str]:
    """Why gated suites fail the run under `--llm-fail-on`: a missed suite threshold, a
    significant paired regression against the baseline."""
    lines = []
    if fail_on in ("threshold", "both"):
        for row in report["suites"]:
            gate = row.get("gate")
            if gate is not None and gate["verdict"] != "passed":
                label = _label((row["suite"], row["model"]))
                lines.append(f"FAILED suite {label}: {gate_text(gate)}")
    comparison = report.get("baseline")
    if comparison is not None and fail_on in ("regression", "both"):
        for suite in comparison.get("suites", []):
            if suite["regressed"]:
                label = _label((suite["suite"], suite["model"]))
                lines.append(f"REGRESSED suite {label}: {suite_change(suite)}")
    return lines


def gate_text(gate: SuiteGate) -> str:
    """`pass@1 72.0% (95% CI 65.1-78.2%) vs pass_rate 0.85 [not_worse, fixed cases]: failed`."""
    lo, hi = gate["ci"]
    rate = "-" if gate["rate"] is None else f"{gate['rate']:.1%}"
    text = (
        f"pass@1 {rate} ({gate['confidence']:.0%} CI {lo:.1%}-{hi:.1%}) vs pass_rate "
        f"{gate['pass_rate']:.2f} [{gate['mode']}, {gate['population']} cases]: {gate['verdict']}"
    )
    if gate["worst"]:
        text += f"; worst: {', '.join(gate['worst'])}"
    return text
