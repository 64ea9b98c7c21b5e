"""Baseline gate: each test x model against a saved report (Fisher's exact test, in `stats`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TypeGuard, cast

from pytest_llmeval.errors import BaselineError
from pytest_llmeval.report.schema import (
    SCHEMA,
    VERSION,
    BaselineComparison,
    Report,
    Result,
    Row,
    RowComparison,
)
from pytest_llmeval.verdict.stats import drop_p_value


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
    """One test x model against its baseline row: rates, p-value, verdict, prompt change."""
    base_valid = base["passed"] + base["failed"]
    valid = row["passed"] + row["failed"]
    alpha = 1.0 - float(row["plan"].get("confidence", 0.95))
    p_value = drop_p_value(base["passed"], base_valid, row["passed"], valid)
    old, new = _fingerprints(base), _fingerprints(row)
    return {
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


def compare(report: Report, baseline: Report, source: str) -> BaselineComparison:
    """The comparison section of a report: every common row, then tests new and gone."""
    old, new = index(baseline), index(report)
    rows = [compare_row(old[key], new[key]) for key in sorted(new) if key in old]
    return {
        "source": source,
        "created_at": baseline.get("created_at"),
        "rows": rows,
        "regressions": sum(r["regressed"] for r in rows),
        "changed_prompts": sum(r["prompt_changed"] for r in rows),
        "new": [_label(key) for key in sorted(new) if key not in old],
        "gone": [_label(key) for key in sorted(old) if key not in new],
    }


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
    lines.extend(f"new: {label}" for label in comparison["new"])
    lines.extend(f"gone: {label}" for label in comparison["gone"])
    return lines


def failing(comparison: BaselineComparison | None, tests: Iterable[Result], fail_on: str) -> bool:
    """Whether a (merged) report fails the gate under `--llm-fail-on` (no comparison: no
    baseline, so no regressions)."""
    regressions = 0 if comparison is None else comparison["regressions"]
    if fail_on in ("regression", "both") and regressions:
        return True
    return fail_on in ("threshold", "both") and any(t["verdict"] != "passed" for t in tests)
