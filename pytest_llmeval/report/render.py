"""The Markdown report (and the headline the HTML report shares): a pure function of the JSON
report, for the plugin and `python -m pytest_llmeval compare`."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llmeval.report.answers import HEADING, MAX_EXAMPLES, example_blocks
from pytest_llmeval.report.baseline import change, rate_text, suite_change
from pytest_llmeval.report.build import ROLE_HEADER, role_cost, roles_used
from pytest_llmeval.report.schema import Report, Result, Row, RowComparison
from pytest_llmeval.report.suites import gated, stopping_text

ICONS = {"passed": "✅", "failed": "❌", "error": "⚠️"}
COMMENT_LIMIT = 65_000  # GitHub refuses PR comments over 65,536 characters
_TRUNCATED = "\n\n(truncated to fit; the JSON and HTML reports have everything)\n"


def _key(row: Result | RowComparison) -> tuple[str, str]:
    return row["test"], row["model"]


def _comparisons(report: Report) -> dict[tuple[str, str], RowComparison]:
    baseline = report.get("baseline")
    return {} if not baseline else {_key(r): r for r in baseline["rows"]}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _money(value: float | None) -> str:
    """Dollars to the cent's hundredth; amounts below that (embeddings) to six places."""
    if value is None:
        return "-"
    return f"${value:.6f}" if 0 < value < 0.00005 else f"${value:.4f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _versus(comparison: RowComparison | None) -> str:
    if comparison is None:
        return "new"
    text = f"was {rate_text(comparison['baseline_passed'], comparison['baseline_valid'])}, "
    text += f"p={comparison['p_value']:.3g}"
    if comparison["regressed"]:
        text = f"**regressed** {text}"
    if comparison["prompt_changed"]:
        text += ", prompt changed"
    return text


def headline(report: Report) -> str:
    """One line: verdict counts, regressions, cost."""
    tests = [t for t in report["tests"] if not _observed(t)]
    counts = {v: sum(t["verdict"] == v for t in tests) for v in ICONS}
    parts = [f"{counts[v]} {v}" for v in ("passed", "failed")] + [f"{counts['error']} errors"]
    gates = [s["gate"] for s in report.get("suites", []) if "gate" in s]
    if gates:
        passed = sum(g["verdict"] == "passed" for g in gates)
        parts.append(f"{passed} of {len(gates)} suite gates passed")
    baseline = report.get("baseline")
    if baseline:
        parts.append(f"{baseline['regressions']} regressions")
        parts.append(f"{baseline['changed_prompts']} changed prompts")
    spent, saved = _spend(report)
    parts.append(f"spent {_money(spent)}")
    for role in roles_used(report["totals"].values()):
        costs = [c for t in report["totals"].values() if (c := role_cost(t, role)) is not None]
        parts.append(f"{role} {_money(sum(costs) if costs else None)}")
    if saved:
        parts.append(f"saved {_money(saved)} by the cache")
    return ", ".join(parts)


def _suite_gates(report: Report) -> list[str]:
    """The gated suites: pass@1, interval, threshold, verdict and worst cases."""
    gated_rows = [s for s in report.get("suites", []) if "gate" in s]
    if not gated_rows:
        return []
    lines = [
        "",
        "### Suite gates",
        "",
        "| | suite | model | cases | pass@1 | CI | need | verdict |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")
    worst, stops = [], []
    for row in gated_rows:
        gate = row["gate"]
        lo, hi = gate["ci"]
        rate = "-" if gate["rate"] is None else f"{gate['rate']:.1%}"
        need = f"{gate['pass_rate']:.2f} {gate['mode']} ({gate['population']})"
        cells = [ICONS.get(gate["verdict"], ""), f"`{_cell(row['suite'])}`", _cell(row["model"])]
        cells += [str(gate["cases"]), rate, f"{lo:.0%}-{hi:.0%}", need, gate["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
        if gate["verdict"] != "passed" and gate["worst"]:
            worst.append(
                f"- `{_cell(row['suite'])}` [{row['model']}] worst: {', '.join(gate['worst'])}"
            )
        if "stopping" in gate:
            stopped = _cell(stopping_text(gate["stopping"]))
            stops.append(f"- `{_cell(row['suite'])}` [{_cell(row['model'])}] {stopped}")
    return lines + (["", *worst] if worst else []) + (["", *stops] if stops else [])


def _judged(tests: Sequence[Row]) -> list[str]:
    """Judged tests: the raw judged rate and, with a calibrated judge, the corrected one."""
    judged = [r for r in tests if "judged" in r]
    if not judged:
        return []
    lines = ["", "### Judged verdicts", ""]
    lines += ["| test | model | judge | judged rate | true rate | CI | verdict about |"]
    lines.append("|---|---|---|---|---|---|---|")
    for row in judged:
        j = row["judged"]
        ci = j["ci"]
        about = "true rate" if j["about"] == "true_rate" else "judged rate (not calibrated)"
        cells = [
            f"`{_cell(row['test'])}`",
            _cell(row["model"]),
            _cell(j["judge"]),
            "-" if j["judged_rate"] is None else f"{j['judged_rate']:.0%}",
            "-" if j["corrected_rate"] is None else f"{j['corrected_rate']:.0%}",
            "-" if ci is None else f"{ci[0]:.0%}-{ci[1]:.0%}",
            about,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _preferences(report: Report) -> list[str]:
    """Which model writes better answers, by the judge asked in both orders."""
    found = report.get("preferences") or []
    if not found:
        return []
    lines = ["", "### Which model writes better answers", ""]
    lines += ["| test | A | B | A better | B better | ties (order flips) | sign test p |"]
    lines.append("|---|---|---|---|---|---|---|")
    for c in found:
        cells = [f"`{_cell(c['suite'])}`", _cell(c["a"]), _cell(c["b"]), str(c["a_only"])]
        cells += [str(c["b_only"]), f"{c['ties']} ({c['flips']})", f"{c['p_value']:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _spend(report: Report) -> tuple[float | None, float | None]:
    totals = report["totals"].values()
    costs = [t["cost_usd"] for t in totals if t["cost_usd"] is not None]
    saved = [t.get("saved_usd") for t in totals if t.get("saved_usd") is not None]
    return (sum(costs) if costs else None), (sum(s for s in saved if s) if saved else None)


def markdown(report: Report, limit: int = COMMENT_LIMIT) -> str:
    """GitHub-flavoured Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment.

    Longer than `limit` characters (a PR comment holds 65,536), the table keeps only the rows
    that need attention: not passed, regressed or with a changed prompt. Example answers (and
    prompt diffs against the baseline) follow, as many as fit.
    """
    blocks = example_blocks(report, report["tests"])
    text = _markdown(report, report["tests"])
    if len(text) > limit:
        versus = _comparisons(report)
        notable = [r for r in report["tests"] if _notable(r, versus.get(_key(r)))]
        text = _markdown(report, notable, len(report["tests"]) - len(notable))
    if len(text) > limit:
        cut = text[: limit - len(_TRUNCATED)].rsplit("\n", 1)[0]
        return cut + _TRUNCATED
    return text + _fitting(blocks, limit - len(text))


def _fitting(blocks: list[str], room: int) -> str:
    """The first MAX_EXAMPLES example answers, as many as fit in `room` characters, and how
    many were left out."""
    if not blocks:
        return ""
    text = f"\n{HEADING}\n"
    for shown, block in enumerate(blocks):
        more = f"\n{len(blocks) - shown} more in the JSON and HTML reports.\n"
        if shown == MAX_EXAMPLES or len(text) + len(block) + 2 + len(more) > room:
            return text + more if shown else ""
        text += f"\n{block}\n"
    return text


def _stops(tests: Sequence[Row]) -> list[str]:
    """What the sequential verdicts (`seq`) and the baseline gate's futility stops (`gate`)
    spent against the most their markers allow."""
    lines = []
    for key, label, says in (
        ("decision", "`seq`", "sequential verdicts ran {spent} of at most {most} samples "
         "({saved} not spent); each stops once its design's bounds decide, with the fixed-N "
         "test's guarantee"),
        ("gate_stop", "`gate`", "tests were stopped by the baseline gate once a drop was "
         "unlikely to show (ran {spent} of at most {most} samples); a futility stop never "
         "calls a drop"),
    ):  # fmt: skip
        rows = [r for r in tests if key in r]
        if rows:
            spent = sum(r["run"] for r in rows)
            most = sum(r["plan"]["samples"] for r in rows)
            text = says.format(spent=spent, most=most, saved=f"{1 - spent / most:.0%}")
            lines += ["", f"{label}: {len(rows)} {text}."]
    return lines


def _observed(row: Result) -> bool:
    """A case of a gated suite that ran: its suite's gate judges it, not its own row."""
    return gated(row) and row["verdict"] != "error"


def _notable(row: Row, comparison: RowComparison | None) -> bool:
    changed = comparison is not None and (comparison["regressed"] or comparison["prompt_changed"])
    return row["verdict"] != "passed" or changed


def _markdown(report: Report, tests: Sequence[Row], left_out: int = 0) -> str:
    versus = _comparisons(report)
    has_baseline = bool(report.get("baseline"))
    lines = ["## pytest-llmeval", "", headline(report), ""]
    header = ["", "test", "model", "pass/valid", "CI", "need", "verdict"]
    header += ["vs baseline"] if has_baseline else []
    header += ["p50 s", "cost"]
    roles = roles_used(t for t in report["totals"].values())
    header += [ROLE_HEADER[role].removesuffix(" $") for role in roles] + ["cached"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    observed = [row for row in tests if _observed(row)]
    for row in tests:
        if _observed(row):
            continue
        lo, hi = row["ci"]
        valid = row["passed"] + row["failed"]
        metrics = row["metrics"]
        plan = row["plan"]
        need = f"{plan['pass_rate']:.2f} {plan['mode']}" if plan.get("marked", True) else "once"
        need += " seq" if plan.get("design") == "sequential" else ""
        cells = [
            ICONS.get(row["verdict"], ""),
            f"`{_cell(row['test'])}`",
            _cell(row["model"]),
            rate_text(row["passed"], valid) + (f", {row['errors']} err" if row["errors"] else ""),
            f"{lo:.0%}-{hi:.0%}" if valid else "-",
            need,
            row["verdict"],
        ]
        if has_baseline:
            cells.append(_versus(versus.get(_key(row))))
        cells += [
            _seconds(metrics["latency_p50_s"]),
            _money(metrics["cost_usd"]),
            *(_money(role_cost(metrics, role)) for role in roles),
            f"{metrics.get('cached_samples', 0)}/{row['run']}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if left_out:
        lines += [
            "",
            f"{left_out} passing rows with unchanged prompts are left out to fit; the "
            "JSON and HTML reports have every row.",
        ]
    if observed:
        lines += ["", f"{len(observed)} cases of gated suites are judged by their suites below."]
    lines += _stops(tests)
    lines += _suite_gates(report)
    lines += _judged(tests)
    lines += _preferences(report)
    baseline = report.get("baseline")
    if baseline:
        lines += ["", f"### Baseline `{_cell(str(baseline['source']))}`", ""]
        regressions = [r for r in baseline["rows"] if r["regressed"]]
        suites = [s for s in baseline.get("suites", []) if s["regressed"]]
        changed = [r for r in baseline["rows"] if r["prompt_changed"]]
        lines += [f"**Regressions ({len(regressions) + len(suites)})**", ""]
        lines += [f"- `{_cell(r['test'])}` [{r['model']}]: {change(r, '→')}" for r in regressions]
        lines += [
            f"- suite `{_cell(r['suite'])}` [{r['model']}]: {suite_change(r)}" for r in suites
        ]
        lines += ["- none"] if not regressions and not suites else []
        lines += ["", f"**Changed prompts ({len(changed)})**", ""]
        lines += [f"- `{_cell(r['test'])}` [{r['model']}]" for r in changed] or ["- none"]
        for title, labels in (("New tests", baseline["new"]), ("Gone tests", baseline["gone"])):
            if labels:
                lines += ["", f"**{title} ({len(labels)})**", ""]
                lines += [f"- `{_cell(label)}`" for label in labels]
    header = ["model", "samples", "cached", "spent", *(f"{role} spent" for role in roles)]
    header += ["saved", "p50 s"]
    lines += ["", "### Cost and speed", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    for name, t in report["totals"].items():
        cells = [_cell(name), str(t["samples"]), str(t.get("cached_samples", 0))]
        cells += [_money(t["cost_usd"]), *(_money(role_cost(t, role)) for role in roles)]
        cells += [_money(t.get("saved_usd")), _seconds(t["latency_p50_s"])]
        lines.append("| " + " | ".join(cells) + " |")
    if roles:
        lines += ["", "Spent is the models' own calls; judge, embedding and rival calls are apart."]
    budget = report.get("budget")
    if budget:
        lines += ["", f"Budget: ${budget['spent_usd']:.4f} spent of ${budget['limit_usd']:g}."]
    return "\n".join(lines) + "\n"
