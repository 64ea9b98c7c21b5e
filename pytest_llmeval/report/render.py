"""Reports for people: GitHub-flavoured Markdown and one self-contained HTML file, both pure
functions of the JSON report (the plugin and `python -m pytest_llmeval compare` share them)."""

from __future__ import annotations

import html as htmllib
import json
from collections.abc import Sequence
from typing import TypedDict

from pytest_llmeval.report.answers import HEADING, example_blocks
from pytest_llmeval.report.baseline import change, rate_text, suite_change
from pytest_llmeval.report.build import ROLE_HEADER, role_cost, roles_used
from pytest_llmeval.report.schema import Report, Result, Row, RowComparison
from pytest_llmeval.report.suites import gated
from pytest_llmeval.verdict.stats import clopper_pearson

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
    worst = []
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
    return lines + (["", *worst] if worst else [])


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
    """The example answers that fit in `room` characters, and how many did not."""
    if not blocks:
        return ""
    text = f"\n{HEADING}\n"
    for shown, block in enumerate(blocks):
        more = f"\n{len(blocks) - shown} more in the JSON and HTML reports.\n"
        if len(text) + len(block) + 2 + len(more) > room:
            return text + more if shown else ""
        text += f"\n{block}\n"
    return text


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


class _HtmlRow(TypedDict):
    test: str
    model: str
    passed: int
    valid: int
    errors: int
    rate: float | None
    lo: float
    hi: float
    verdict: str
    p50: float | None
    cost: float | None
    judge_cost: float | None
    cached: int
    p_value: float | None
    regressed: bool
    changed: bool


class _HtmlModel(TypedDict):
    model: str
    rate: float | None
    lo: float
    hi: float
    p50: float | None
    cost: float | None


class _HtmlData(TypedDict):
    """What the page's script reads (`data.rows`, `data.models`), not the JSON report."""

    rows: list[_HtmlRow]
    models: list[_HtmlModel]


def _html_data(report: Report) -> _HtmlData:
    """The numbers the page draws: one entry per test x model, one per model."""
    versus = _comparisons(report)
    rows: list[_HtmlRow] = []
    for row in report["tests"]:
        comparison = versus.get(_key(row))
        valid = row["passed"] + row["failed"]
        rows.append(
            {
                "test": row["test"],
                "model": row["model"],
                "passed": row["passed"],
                "valid": valid,
                "errors": row["errors"],
                "rate": row["passed"] / valid if valid else None,
                "lo": row["ci"][0],
                "hi": row["ci"][1],
                "verdict": row["verdict"],
                "p50": row["metrics"]["latency_p50_s"],
                "cost": row["metrics"]["cost_usd"],
                "judge_cost": role_cost(row["metrics"], "judge"),
                "cached": row["metrics"].get("cached_samples", 0),
                "p_value": None if comparison is None else comparison["p_value"],
                "regressed": bool(comparison and comparison["regressed"]),
                "changed": bool(comparison and comparison["prompt_changed"]),
            }
        )
    models: list[_HtmlModel] = []
    for name, t in report["totals"].items():
        valid = t["samples"] - t["sample_errors"]
        lo, hi = clopper_pearson(t["sample_passes"], valid, 0.95)
        models.append(
            {
                "model": name,
                "rate": t["sample_passes"] / valid if valid else None,
                "lo": lo,
                "hi": hi,
                "p50": t["latency_p50_s"],
                "cost": t["cost_usd"],
            }
        )
    return {"rows": rows, "models": models}


_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}
th{cursor:pointer;background:#f4f4f4;user-select:none}th[aria-sort]::after{content:" \\25B4"}
th[aria-sort=descending]::after{content:" \\25BE"}
tr.failed td{background:#fde8e8}tr.error td{background:#fff4d6}tr.regressed td{font-weight:bold}
.charts{display:flex;gap:2em;flex-wrap:wrap}svg text{font-size:12px}
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('llmeval-data').textContent);
const columns = [
  ['test', r => r.test],
  ['model', r => r.model],
  ['pass/valid', r => r.valid ? r.passed / r.valid : -1,
   r => r.passed + '/' + r.valid + (r.errors ? ' (' + r.errors + ' err)' : '')],
  ['rate', r => r.rate ?? -1, r => pct(r.rate)],
  ['CI', r => r.lo, r => pct(r.lo) + '-' + pct(r.hi)],
  ['verdict', r => r.verdict],
  ['p vs baseline', r => r.p_value ?? 2,
   r => r.p_value == null ? '-' : r.p_value.toPrecision(3) + (r.regressed ? ' regressed' : '') +
   (r.changed ? ' (prompt changed)' : '')],
  ['p50 s', r => r.p50 ?? -1, r => num(r.p50, 2)],
  ['cost $', r => r.cost ?? -1, r => num(r.cost, 4)],
  ['judge $', r => r.judge_cost ?? -1, r => num(r.judge_cost, 4)],
  ['cached', r => r.cached],
];
function pct(x) { return x == null ? '-' : (100 * x).toFixed(1) + '%'; }
function num(x, d) { return x == null ? '-' : x.toFixed(d); }
const table = document.getElementById('results');
const head = table.tHead.rows[0];
columns.forEach(([name], i) => {
  const th = document.createElement('th');
  th.textContent = name;
  th.addEventListener('click', () => sortBy(i, th.getAttribute('aria-sort') === 'ascending'));
  head.appendChild(th);
});
function sortBy(i, descending) {
  const key = columns[i][1];
  const rows = data.rows.slice().sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
  });
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement('tr');
    tr.className = r.verdict + (r.regressed ? ' regressed' : '');
    columns.forEach(([, k, show]) => {
      const td = document.createElement('td');
      td.textContent = show ? show(r) : k(r);
      tr.appendChild(td);
    });
    return tr;
  }));
  const order = descending ? 'descending' : 'ascending';
  [...head.cells].forEach((th, j) => j === i ?
    th.setAttribute('aria-sort', order) : th.removeAttribute('aria-sort'));
  table.dataset.sortedBy = columns[i][0];
}
const NS = 'http://www.w3.org/2000/svg';
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}
function chart(id, title, value, label, whiskers) {
  const width = 260, left = 120, bar = 18, gap = 8;
  const svg = el('svg', {width: left + width + 80, height: 30 + data.models.length * (bar + gap),
                         role: 'img', 'aria-label': title});
  svg.appendChild(el('text', {x: 0, y: 14, 'font-weight': 'bold'}, title));
  const top = whiskers ? 1 : Math.max(1e-12, ...data.models.map(m => value(m) ?? 0));
  data.models.forEach((m, i) => {
    const y = 24 + i * (bar + gap), v = value(m) ?? 0;
    svg.appendChild(el('text', {x: 0, y: y + 13}, m.model));
    svg.appendChild(el('rect', {class: 'bar', x: left, y, width: width * v / top, height: bar,
                                fill: '#4a78c2', 'data-model': m.model}));
    if (whiskers) {
      const a = left + width * m.lo / top, b = left + width * m.hi / top, c = y + bar / 2;
      const ends = `M${a} ${y + 3}V${y + bar - 3}M${b} ${y + 3}V${y + bar - 3}`;
      svg.appendChild(el('path', {class: 'ci', d: `M${a} ${c}H${b}` + ends,
                                  stroke: '#111', 'stroke-width': 1.5, fill: 'none'}));
    }
    svg.appendChild(el('text', {x: left + width + 6, y: y + 13}, label(m)));
  });
  document.getElementById(id).appendChild(svg);
}
chart('chart-rate', 'pass rate (95% CI)', m => m.rate, m => pct(m.rate), true);
chart('chart-latency', 'p50 latency (s)', m => m.p50, m => num(m.p50, 2), false);
chart('chart-cost', 'cost ($)', m => m.cost, m => num(m.cost, 4), false);
sortBy(3, false);
document.body.dataset.rendered = 'yes';
"""


def html(report: Report) -> str:
    """One HTML file that opens offline: sortable table and per-model bars, no external assets."""
    data = json.dumps(_html_data(report)).replace("</", "<\\/")
    title = f"pytest-llmeval report {report.get('created_at', '')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{htmllib.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>pytest-llmeval</h1>
<p id="headline">{htmllib.escape(headline(report))}</p>
<div class="charts"><div id="chart-rate"></div><div id="chart-latency"></div>
<div id="chart-cost"></div></div>
<table id="results"><thead><tr></tr></thead><tbody></tbody></table>
<noscript>This report draws its table and charts with JavaScript.</noscript>
<script type="application/json" id="llmeval-data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
