"""Benchmark suites across models: suite rows, exact paired tests, and a routing table.

A suite is a test parametrized over cases (beyond the model): its report rows share the test
name up to the `[case]` part. A model solves a case when the case's verdict passed, i.e. met
the marker's threshold (for a benchmark, one sample with `mode="observed"`: the answer was
right); cases with an error verdict are left out. `pass_at_1` is the mean per-case sample pass
rate. Paired comparisons and routing use the per-case pass rates: a case counts for model A
when A's rate on it is higher than B's, and the exact sign test on those counts is McNemar's
exact test when each case has one sample (with more samples per case it still is exact, and a
worse model cannot hide behind thresholds that both models meet). Functions take report rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import cast

from pytest_llmeval.report.schema import (
    CodeColumns,
    Gated,
    PairedComparison,
    PlanInfo,
    Preference,
    Result,
    Route,
    Row,
    Sample,
    SuiteGate,
    SuiteRate,
    SuiteRow,
    SuiteSections,
    SuiteStopping,
)
from pytest_llmeval.sandbox.code import sandbox_summary
from pytest_llmeval.verdict.stats import Mode, clopper_pearson, mcnemar_exact
from pytest_llmeval.verdict.suite import Population, SuiteVerdict, suite_verdict
from pytest_llmeval.verdict.suite_stopping import SuiteRule, decide, settle

ALPHA = 0.05
CONFIDENCE = 0.95
WORST = 5  # cases a gated suite's row names as its worst


# Fewer paired cases than this can never differ significantly (2 / 2**5 > ALPHA): no routing.
MIN_CASES = next(n for n in range(1, 64) if mcnemar_exact(n, 0) < ALPHA)


def suite_name(test: str) -> str | None:
    """`path::test` of a case `path::test[case]`, or None for a test without cases."""
    head, _, last = test.rpartition("::")
    if "[" not in last:
        return None
    return f"{head}::{last.split('[', 1)[0]}" if head else last.split("[", 1)[0]


def case_name(test: str) -> str:
    """`case` of a case `path::test[case]`."""
    return test.rpartition("::")[2].split("[", 1)[1][:-1]


def by_suite(rows: Iterable[Row]) -> dict[str, dict[str, dict[str, Row]]]:
    """suite -> model -> case -> row. A pairwise test's rows are pairs of models, not cases."""
    suites: dict[str, dict[str, dict[str, Row]]] = {}
    for row in rows:
        suite = suite_name(row["test"])
        if suite is not None and not row["plan"].get("paired"):
            suites.setdefault(suite, {}).setdefault(row["model"], {})[case_name(row["test"])] = row
    return suites


def _solved(row: Row) -> bool | None:
    """Whether the case met its threshold; None for an error verdict (no valid outcome)."""
    if row["verdict"] not in ("passed", "failed"):
        return None
    return bool(row["verdict"] == "passed")


def _case_rate(row: Row) -> float | None:
    """The case's sample pass rate; None for an error verdict or no valid sample."""
    valid = row["passed"] + row["failed"]
    return row["passed"] / valid if valid and _solved(row) is not None else None


def _rate(passed: int, total: int) -> SuiteRate:
    lo, hi = clopper_pearson(passed, total, CONFIDENCE)
    return {"passed": passed, "total": total, "rate": passed / total if total else None,
            "ci": [lo, hi]}  # fmt: skip


def _code_columns(samples: Sequence[Sample]) -> CodeColumns:
    """Syntax-error rate and mean solution lines from each sample's last sandbox run."""
    summary = sandbox_summary(samples)
    if summary is None:
        return {}
    return {
        "sandbox_runs": summary["runs"],
        "syntax_error_rate": summary["syntax_error_rate"],
        "mean_solution_lines": summary["mean_lines"],
    }


def suite_row(suite: str, model: str, cases: Mapping[str, Row]) -> SuiteRow:
    """One model's aggregate over a suite's cases: accuracy with an exact CI, pass@1 (the mean
    per-case sample rate), cost per case, per-subject rates and, for code, sandbox columns."""
    valid = [row for row in cases.values() if _solved(row) is not None]
    # What a case costs: spent plus what the cache saved, over the cases with a known cost
    # (an error case that never reached the model has none).
    costs = [
        (m["cost_usd"] or 0.0) + (m.get("saved_usd") or 0.0)
        for m in (row["metrics"] for row in cases.values())
        if m["cost_usd"] is not None or m.get("saved_usd") is not None
    ]
    subjects: dict[str, list[bool]] = {}
    for row in valid:
        if row.get("subject"):
            subjects.setdefault(row["subject"], []).append(bool(_solved(row)))
    rates = [r["passed"] / (r["passed"] + r["failed"]) for r in valid if r["passed"] + r["failed"]]
    return {
        "suite": suite,
        "model": model,
        "cases": len(cases),
        "errors": len(cases) - len(valid),
        **_rate(sum(bool(_solved(row)) for row in valid), len(valid)),
        "pass_at_1": statistics.fmean(rates) if rates else None,
        "cost_usd": sum(costs) if costs else None,
        "cost_per_case": sum(costs) / len(costs) if costs else None,
        "subjects": {name: _rate(sum(v), len(v)) for name, v in sorted(subjects.items())},
        **_code_columns([s for row in cases.values() for s in row["samples"]]),
        **_gated(cases),
    }


def _gated(cases: Mapping[str, Result]) -> Gated:
    gate = suite_gate(cases)
    return {} if gate is None else {"gate": gate}


def gated(row: Result) -> bool:
    """Whether the row is a case of a suite with its own threshold (`suite=True`)."""
    plan = row.get("plan")
    return bool(plan and plan.get("suite"))


def outcomes(row: Result) -> tuple[bool, ...]:
    """The case's valid samples in sample order: passed or not (errors left out)."""
    ordered = sorted(row["samples"], key=lambda s: s["index"])
    return tuple(s["outcome"] == "passed" for s in ordered if s["outcome"] in ("passed", "failed"))


def suite_gate(cases: Mapping[str, Result]) -> SuiteGate | None:
    """The suite's verdict over its cases, when its marker set `suite=True`."""
    plans = [row["plan"] for row in cases.values() if gated(row)]
    if not plans:
        return None
    plan = plans[0]
    population = cast(Population, plan.get("population", "fixed"))
    mode = cast(Mode, plan["mode"])
    ordered = sorted(cases.items())
    found = suite_verdict(
        [outcomes(row) for _, row in ordered],
        plan["pass_rate"], plan["confidence"], mode, population,
    )  # fmt: skip
    lows = sorted(
        ((sum(o) / len(o), case, o) for case, row in ordered if (o := outcomes(row))),
        key=lambda low: low[0],
    )
    worst = [f"{case} {sum(o)}/{len(o)}" for rate, case, o in lows[:WORST] if rate < 1]
    gate: SuiteGate = {
        "pass_rate": plan["pass_rate"],
        "confidence": plan["confidence"],
        "mode": mode,
        "population": population,
        "verdict": found.verdict,
        "rate": found.rate,
        "ci": list(found.interval),
        "cases": found.cases,
        "error_cases": found.error_cases,
        "samples": found.samples,
        "method": found.method,
        "worst": worst,
    }
    if any("order" in row["plan"] for row in cases.values()):
        gate["verdict"], gate["method"], gate["stopping"] = _stopped(gate, plan, cases, found)
    return gate


def _stopped(
    gate: SuiteGate, plan: PlanInfo, cases: Mapping[str, Result], found: SuiteVerdict
) -> tuple[str, str, SuiteStopping]:
    """The verdict of a suite that stops over its cases, from the cases that ran: the stopping
    rule's over the canonical order its rows carry. Rows of several collections (CI shards)
    share no canonical order: when every case ran, the suite is judged as one that runs them
    all; else a fixed suite's order-free rule may still settle it over N, the shards' sum, and
    anything else is an error (the cases a shard skipped depend on its outcomes)."""
    collections: dict[str, tuple[int, dict[int, tuple[bool, ...]]]] = {}
    for name, row in sorted(cases.items()):
        order = row["plan"].get("order")
        key, n = (order["collection"], order["cases"]) if order else (f"every case {name}", 1)
        position = order["position"] if order else 0
        collections.setdefault(key, (n, {}))[1][position] = outcomes(row)
    total = sum(n for n, _ in collections.values())
    ran = sum(len(finished) for _, finished in collections.values())
    shown: SuiteStopping = {"cases": total, "ran": ran, "judged": ran, "skipped": total - ran,
                            "overshoot": 0, "why": ""}  # fmt: skip
    rule = SuiteRule(
        total, plan["samples"], gate["pass_rate"], gate["confidence"],
        cast(Mode, gate["mode"]), cast(Population, gate["population"]),
    )  # fmt: skip
    if len(collections) == 1:
        ((_, finished),) = collections.values()
        stop, overshoot = settle(rule, finished)
        assert stop.verdict is not None
        return stop.verdict, rule.method, {
            **shown, "judged": stop.judged, "overshoot": overshoot, "why": stop.why
        }  # fmt: skip
    if ran == total:
        why = f"{len(collections)} shards, every case ran: judged as a suite that runs them all"
        return found.verdict, found.method, {**shown, "why": why}
    if rule.population == "fixed":
        pooled = [o for _, f in collections.values() for o in f.values()]
        stop = decide(rule, dict(enumerate(pooled)))
        if stop.verdict is not None:
            return (
                stop.verdict,
                rule.method,
                {**shown, "why": f"{len(collections)} shards: {stop.why}"},
            )
    why = (
        f"{len(collections)} shards skipped {total - ran} cases, each once its own verdict "
        "settled, and together they do not settle the suite; run it in one shard, or without "
        "design='sequential'"
    )
    return "error", rule.method, {**shown, "why": why}


def stopping_text(stop: SuiteStopping) -> str:
    """`stopped: 27 of 40 cases judged, 13 skipped, 1 past the stop (14 passes in 26 ...)`."""
    return (
        f"stopped: {stop['judged']} of {stop['cases']} cases judged, {stop['skipped']} skipped, "
        f"{stop['overshoot']} past the stop ({stop['why']})"
    )


def compare(rows: Sequence[Row]) -> SuiteSections:
    """The report's `suites`, `comparisons` and `routing` sections."""
    suites: list[SuiteRow] = []
    comparisons: list[PairedComparison] = []
    routing: list[Route] = []
    for suite, by_model in sorted(by_suite(rows).items()):
        suite_rows = {m: suite_row(suite, m, cases) for m, cases in sorted(by_model.items())}
        suites.extend(suite_rows.values())
        pairs = [_paired(suite, a, b, by_model) for a, b in combinations(sorted(by_model), 2)]
        comparisons.extend(pairs)
        if len(by_model) > 1:
            routing.append(_route(suite, suite_rows, pairs))
    sections: SuiteSections = {"suites": suites, "comparisons": comparisons, "routing": routing}
    preferred = preferences(rows)
    if preferred:
        sections["preferences"] = preferred
    return sections


def preferences(rows: Sequence[Row]) -> list[Preference]:
    """Per test function and pair of labels (models): how often the judge preferred each
    answer in both orders, and the exact two-sided sign test on those wins (ties left out)."""
    counts: dict[tuple[str, str, str], list[int]] = {}
    for row in rows:
        function = row["test"].split("[", 1)[0]
        for sample in row.get("samples", ()):
            for judged in sample.get("judgements", []):
                if judged["kind"] != "compare":
                    continue
                a, b = sorted(judged.get("labels", ["a", "b"]))
                tally = counts.setdefault((function, a, b), [0, 0, 0, 0])
                winner = judged.get("winner")
                tally[0 if winner == a else 1 if winner == b else 2] += 1
                tally[3] += not judged.get("consistent", True)
    found: list[Preference] = []
    for (function, a, b), (a_won, b_won, ties, flips) in sorted(counts.items()):
        total = a_won + b_won + ties
        p = mcnemar_exact(a_won, b_won)
        found.append(
            {
                "suite": function,
                "a": a,
                "b": b,
                "cases": total,
                "a_rate": a_won / total,
                "b_rate": b_won / total,
                "a_only": a_won,
                "b_only": b_won,
                "p_value": p,
                "significant": p < ALPHA,
                "ties": ties,
                "flips": flips,
            }
        )
    return found


def _paired(
    suite: str, a: str, b: str, by_model: Mapping[str, Mapping[str, Row]]
) -> PairedComparison:
    """Exact paired test of models a and b on the cases both have valid samples for."""
    rates = [
        (ra, rb)
        for case in sorted(by_model[a].keys() & by_model[b].keys())
        if (ra := _case_rate(by_model[a][case])) is not None
        and (rb := _case_rate(by_model[b][case])) is not None
    ]
    a_only = sum(ra > rb for ra, rb in rates)
    b_only = sum(rb > ra for ra, rb in rates)
    p = mcnemar_exact(a_only, b_only)
    return {
        "suite": suite,
        "a": a,
        "b": b,
        "cases": len(rates),
        "a_rate": statistics.fmean(ra for ra, _ in rates) if rates else None,
        "b_rate": statistics.fmean(rb for _, rb in rates) if rates else None,
        "a_only": a_only,
        "b_only": b_only,
        "p_value": p,
        "significant": p < ALPHA,
    }


def _route(
    suite: str, suite_rows: Mapping[str, SuiteRow], pairs: Sequence[PairedComparison]
) -> Route:
    """The cheapest model whose pass@1 is not significantly below the best one's."""

    def score(model: str) -> float:
        return float(suite_rows[model]["pass_at_1"] or 0.0)

    best = max(suite_rows, key=lambda m: (score(m), -_order(suite_rows, m)))

    def significantly_worse(model: str) -> bool:
        pair = next(p for p in pairs if {p["a"], p["b"]} == {model, best})
        return bool(pair["significant"]) and score(model) < score(best)

    equivalent = [m for m in suite_rows if m == best or not significantly_worse(m)]
    priced = [m for m in equivalent if suite_rows[m]["cost_per_case"] is not None]
    unpriced = [m for m in equivalent if m not in priced]
    cases = min(p["cases"] for p in pairs if best in (p["a"], p["b"]))
    if equivalent == [best]:
        pick = best
        note = f"every other model is significantly below it (McNemar p<{ALPHA})"
    elif cases < MIN_CASES:
        pick = best
        note = f"only {cases} paired cases, too few for a significant difference: the best rate"
    elif priced:
        pick = min(priced, key=lambda m: (suite_rows[m]["cost_per_case"], _order(suite_rows, m)))
        note = "cheapest not significantly below the best"
        if unpriced:
            note += f"; no prices for {', '.join(unpriced)}"
    else:
        pick = best
        note = f"no prices for {', '.join(unpriced)}: picked the best rate"
    return {
        "suite": suite,
        "best": best,
        "best_rate": suite_rows[best]["pass_at_1"],
        "recommended": pick,
        "rate": suite_rows[pick]["pass_at_1"],
        "cost_per_case": suite_rows[pick]["cost_per_case"],
        "equivalent": equivalent,
        "note": note,
    }


def _order(suite_rows: Mapping[str, SuiteRow], model: str) -> int:
    return list(suite_rows).index(model)
