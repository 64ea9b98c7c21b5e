"""CI shards: JSON reports of disjoint parts of a suite become one report, as if run at once."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmeval.report.build import build_report
from pytest_llmeval.report.schema import ModelInfo, Report, Row


def merge_reports(reports: Sequence[Report]) -> Report:
    """Rows of every shard, totals recomputed; a test x model found in two shards is an error.
    The shards' `--llm-record` carries over when they agree."""
    rows: dict[str, Row] = {}
    models: dict[str, ModelInfo] = {}
    for report in reports:
        models.update(report["models"])
        for row in report["tests"]:
            if row["nodeid"] in rows:
                raise ValueError(
                    f"{row['nodeid']} is in more than one shard; shards must not overlap"
                )
            rows[row["nodeid"]] = row
    budgets = [b for r in reports if (b := r.get("budget"))]
    budget = None
    if budgets:
        budget = (sum(b["limit_usd"] for b in budgets), sum(b["spent_usd"] for b in budgets))
    merged = build_report(rows.values(), models, budget)
    records = {r["record"] for r in reports if "record" in r}
    if len(records) == 1:
        merged["record"] = records.pop()
    return merged
