"""Suite rows, exact McNemar tests and the routing table, on hand-made report rows."""

from __future__ import annotations

from math import comb
from typing import Any

import pytest

from pytest_llmeval.report.suites import (
    compare,
    gated,
    outcomes,
    suite_gate,
    suite_name,
    suite_row,
)
from pytest_llmeval.verdict.stats import clopper_pearson, mcnemar_exact
from pytest_llmeval.verdict.suite import suite_verdict


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (1, 9, 0.021484375),  # 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024
        (9, 1, 0.021484375),
        (0, 5, 0.0625),  # 2 / 2^5
        (2, 3, 1.0),  # 2 * (1 + 5 + 10) / 32 = 1
        (0, 0, 1.0),
        (3, 12, 2 * sum(comb(15, i) for i in range(4)) / 2**15),  # 0.03515625
    ],
)
def test_mcnemar_exact_matches_hand_computed_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_exact(-1, 2)


def test_suite_name_strips_only_the_case_id() -> None:
    assert suite_name("t.py::test_mmlu[astronomy-0]") == "t.py::test_mmlu"
    assert suite_name("t.py::TestX::test_q[a[b]]") == "t.py::TestX::test_q"
    assert suite_name("t.py::test_plain") is None


# A case's plan as `Plan.to_dict` writes it: one sample, the answer right or not.
PLAN: dict[str, Any] = {
    "pass_rate": 1.0, "samples": 1, "confidence": 0.95, "mode": "observed", "marked": True,
}  # fmt: skip


def row(
    case: str,
    model: str,
    verdict: str,
    *,
    cost: float | None = None,
    subject: str | None = None,
    samples: list[dict[str, Any]] | None = None,
    test: str = "t.py::test_bench",
    plan: dict[str, Any] | None = None,
) -> Any:
    """A report row by hand, with only the keys the suite functions read (so not a full Row)."""
    samples = samples if samples is not None else [{"index": 0, "outcome": verdict}]
    passed = sum(s["outcome"] == "passed" for s in samples)
    failed = sum(s["outcome"] == "failed" for s in samples)
    result = {
        "test": f"{test}[{case}]",
        "model": model,
        "plan": plan or PLAN,
        "verdict": verdict,
        "passed": passed,
        "failed": failed,
        "samples": samples,
        "metrics": {"cost_usd": cost},
    }
    if subject:
        result["subject"] = subject
    return result


def bench(
    a_pass: int, b_pass: int, both: int, neither: int, costs: dict[str, float | None]
) -> list[Any]:
    """Cases where only big passes, only small passes, both pass, and neither passes."""
    rows = []
    kinds = [(True, False)] * a_pass + [(False, True)] * b_pass
    kinds += [(True, True)] * both + [(False, False)] * neither
    for i, (big, small) in enumerate(kinds):
        for model, ok in (("big", big), ("small", small)):
            rows.append(row(f"q{i}", model, "passed" if ok else "failed", cost=costs[model]))
    return rows


def test_suite_rows_comparison_and_routing_when_the_cheap_model_is_not_worse() -> None:
    rows = bench(3, 1, 10, 6, {"big": 0.01, "small": 0.001})
    report = compare(rows)
    big, small = report["suites"]
    assert (big["model"], big["passed"], big["total"], big["rate"]) == ("big", 13, 20, 0.65)
    assert (small["passed"], small["rate"], small["pass_at_1"]) == (11, 0.55, 0.55)
    assert big["ci"][0] == pytest.approx(0.4078115, abs=1e-6)  # exact Clopper-Pearson 95%
    assert big["ci"][1] == pytest.approx(0.8460908, abs=1e-6)
    assert big["cost_per_case"] == pytest.approx(0.01)
    [pair] = report["comparisons"]
    assert (pair["a"], pair["b"], pair["cases"], pair["a_only"], pair["b_only"]) == (
        "big", "small", 20, 3, 1,
    )  # fmt: skip
    assert pair["p_value"] == pytest.approx(0.625)  # 2 * (1 + 4) / 16
    assert not pair["significant"]
    [route] = report["routing"]
    assert (route["best"], route["recommended"], route["equivalent"]) == (
        "big", "small", ["big", "small"],
    )  # fmt: skip
    assert route["cost_per_case"] == pytest.approx(0.001)


def test_routing_keeps_the_best_when_the_cheap_model_is_significantly_worse() -> None:
    rows = bench(9, 0, 5, 6, {"big": 0.01, "small": 0.001})
    report = compare(rows)
    [pair] = report["comparisons"]
    assert pair["p_value"] == pytest.approx(2 / 2**9)
    assert pair["significant"]
    [route] = report["routing"]
    assert (route["best"], route["recommended"], route["equivalent"]) == ("big", "big", ["big"])
    assert route["note"] == "every other model is significantly below it (McNemar p<0.05)"


def test_routing_without_prices_says_so() -> None:
    report = compare(bench(3, 1, 10, 6, {"big": None, "small": 0.001}))
    [route] = report["routing"]
    assert route["recommended"] == "small"
    assert route["note"] == "cheapest not significantly below the best; no prices for big"
    report = compare(bench(3, 1, 10, 6, {"big": None, "small": None}))
    [route] = report["routing"]
    assert route["recommended"] == "big"
    assert route["note"] == "no prices for big, small: picked the best rate"


def test_error_verdicts_are_left_out_of_rates_and_pairs() -> None:
    rows = bench(0, 0, 4, 0, {"big": None, "small": None})
    rows.append(row("q9", "big", "error", samples=[{"outcome": "error"}]))
    rows.append(row("q9", "small", "failed"))
    report = compare(rows)
    big = report["suites"][0]
    assert (big["cases"], big["errors"], big["total"], big["rate"]) == (5, 1, 4, 1.0)
    assert report["comparisons"][0]["cases"] == 4


def test_per_subject_rates_and_pass_at_1_over_samples() -> None:
    samples = [{"outcome": "passed"}, {"outcome": "passed"}, {"outcome": "failed"}]
    rows = [
        row("a-0", "m", "passed", subject="algebra", samples=samples),
        row("a-1", "m", "failed", subject="algebra", samples=[{"outcome": "failed"}]),
        row("h-0", "m", "passed", subject="history"),
    ]
    [suite] = compare(rows)["suites"]
    assert suite["subjects"]["algebra"]["passed"] == 1
    assert suite["subjects"]["algebra"]["total"] == 2
    assert suite["subjects"]["history"]["rate"] == 1.0
    assert suite["pass_at_1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert compare(rows)["routing"] == []  # one model: nothing to route


def test_code_columns_use_the_last_sandbox_run_of_each_sample() -> None:
    def sample(*runs: tuple[str, int]) -> dict[str, Any]:
        return {
            "outcome": "passed" if runs[-1][0] == "passed" else "failed",
            "sandbox": [{"status": s, "lines": n, "duration_s": 0.1} for s, n in runs],
        }

    rows = [
        row("t0", "m", "passed", samples=[sample(("syntax_error", 3), ("passed", 4))]),
        row("t1", "m", "failed", samples=[sample(("syntax_error", 9))]),
        row("t2", "m", "failed", samples=[sample(("failed", 5)), {"outcome": "error"}]),
    ]
    [suite] = compare(rows)["suites"]
    assert suite["sandbox_runs"] == 3
    assert suite["syntax_error_rate"] == pytest.approx(1 / 3)
    assert suite["mean_solution_lines"] == pytest.approx(6.0)
    assert "syntax_error_rate" not in suite_row("s", "m", {"x": row("x", "m", "passed")})


def test_routing_with_too_few_cases_keeps_the_best() -> None:
    report = compare(bench(0, 0, 3, 2, {"big": 0.01, "small": 0.001}))
    [route] = report["routing"]
    assert route["recommended"] == "big"
    assert route["note"] == (
        "only 5 paired cases, too few for a significant difference: the best rate"
    )


def test_paired_test_uses_per_case_rates_when_thresholds_hide_a_gap() -> None:
    """Both models meet every case's threshold, but one passes 5/5 samples where the other
    passes 3/5: the sign test on per-case rates sees it, and routing keeps the better model."""
    good = [{"outcome": "passed"}] * 5
    weak = [{"outcome": "passed"}] * 3 + [{"outcome": "failed"}] * 2
    rows = [row(f"c{i}", "strong", "passed", cost=1.0, samples=good) for i in range(8)]
    rows += [row(f"c{i}", "cheap", "passed", cost=0.1, samples=weak) for i in range(8)]
    report = compare(rows)
    suites = {s["model"]: s for s in report["suites"]}
    assert suites["strong"]["rate"] == suites["cheap"]["rate"] == 1.0  # verdicts alike
    assert (suites["strong"]["pass_at_1"], suites["cheap"]["pass_at_1"]) == (1.0, 0.6)
    [pair] = report["comparisons"]
    assert (pair["a"], pair["a_only"], pair["b_only"]) == ("cheap", 0, 8)
    assert pair["p_value"] == pytest.approx(2 / 2**8) and pair["significant"]
    [route] = report["routing"]
    assert (route["best"], route["recommended"], route["rate"]) == ("strong", "strong", 1.0)


def test_cost_per_case_counts_cache_savings_and_skips_cases_without_a_cost() -> None:
    rows = [row(f"c{i}", "m", "passed", cost=None) for i in range(3)]
    for r in rows:  # a fully cached run: nothing spent, the price saved
        r["metrics"]["saved_usd"] = 0.5
    rows.append(row("c3", "m", "error", cost=None, samples=[]))  # never reached the model
    [suite] = compare(rows)["suites"]
    assert suite["cost_per_case"] == pytest.approx(0.5)


def gated_case(
    case: str,
    script: str,
    *,
    model: str = "m",
    pass_rate: float = 0.8,
    mode: str = "not_worse",
    population: str = "fixed",
    test: str = "t.py::test_bench",
) -> Any:
    """A case of a `suite=True` test whose samples passed (P), failed (F) or erred (E)."""
    kinds = {"P": "passed", "F": "failed", "E": "error"}
    samples = [{"index": i, "outcome": kinds[k]} for i, k in enumerate(script)]
    valid = script.replace("E", "")
    verdict = "error" if not valid else "passed" if "F" not in valid else "failed"
    plan = {
        "pass_rate": pass_rate, "samples": len(script), "confidence": 0.95, "mode": mode,
        "marked": True, "suite": True, "population": population,
    }  # fmt: skip
    return row(case, model, verdict, samples=samples, test=test, plan=plan)


def test_gated_rows_and_their_outcomes_in_sample_order() -> None:
    case = gated_case("c0", "PFP")
    case["samples"] = [
        {"index": 2, "outcome": "passed"},
        {"index": 0, "outcome": "failed"},
        {"index": 1, "outcome": "error"},
        {"index": 3, "outcome": "passed"},
    ]
    assert gated(case)
    assert outcomes(case) == (False, True, True)  # by index, the error left out
    assert not gated(row("c0", "m", "passed"))
    assert outcomes(gated_case("c1", "EE")) == ()


def test_a_suite_without_suite_true_has_no_gate() -> None:
    cases = {f"c{i}": row(f"c{i}", "m", "failed") for i in range(6)}
    assert suite_gate(cases) is None
    assert "gate" not in suite_row("t.py::test_bench", "m", cases)


def test_a_fixed_suite_gate_judges_the_cases_together() -> None:
    """12 of 20 one-sample cases right: below a 0.9 gate, above a 0.5 one."""

    def suite(pass_rate: float) -> dict[str, Any]:
        script = "P" * 12 + "F" * 8
        return {f"c{i:02d}": gated_case(f"c{i:02d}", k, pass_rate=pass_rate)
                for i, k in enumerate(script)}  # fmt: skip

    gate = suite_gate(suite(0.9))
    assert gate is not None
    assert (gate["verdict"], gate["rate"], gate["population"]) == ("failed", 0.6, "fixed")
    assert (gate["pass_rate"], gate["confidence"], gate["mode"]) == (0.9, 0.95, "not_worse")
    assert (gate["cases"], gate["error_cases"], gate["samples"]) == (20, 0, 20)
    assert gate["ci"] == pytest.approx(list(clopper_pearson(12, 20, 0.95)))
    assert gate["method"] == "exact binomial over 20 samples of 20 fixed cases"
    assert gate["worst"] == ["c12 0/1", "c13 0/1", "c14 0/1", "c15 0/1", "c16 0/1"]
    assert suite_gate(suite(0.5)) == {**gate, "pass_rate": 0.5, "verdict": "passed"}


def test_the_worst_cases_are_the_lowest_rates_below_one_at_most_five() -> None:
    scripts = {
        "a": "PPP", "b": "PFF", "c": "FFF", "d": "PPF", "e": "PEF",
        "f": "PPP", "g": "FPP", "h": "PPPPF", "i": "EEE",
    }  # fmt: skip
    cases = {k: gated_case(k, v, pass_rate=0.5, population="sampled") for k, v in scripts.items()}
    gate = suite_gate(cases)
    assert gate is not None
    assert gate["worst"] == ["c 0/3", "b 1/3", "e 1/2", "d 2/3", "g 2/3"]
    assert (gate["cases"], gate["error_cases"], gate["samples"]) == (8, 1, 25)
    assert gate["rate"] == pytest.approx((1 + 1 / 3 + 0 + 2 / 3 + 1 / 2 + 1 + 2 / 3 + 4 / 5) / 8)
    assert gate["method"] == "betting test over the pass rates of 8 sampled cases (25 samples)"
    assert gate["verdict"] == "passed"  # 0.62 is not significantly below 0.5
    few = suite_gate({k: cases[k] for k in ("a", "d", "f", "h")})
    assert few is not None and few["worst"] == ["d 2/3", "h 4/5"]  # only those below 1


def test_a_suite_of_error_cases_has_an_error_gate() -> None:
    cases = {f"c{i}": gated_case(f"c{i}", "EE") for i in range(3)}
    gate = suite_gate(cases)
    assert gate is not None
    assert (gate["verdict"], gate["rate"], gate["error_cases"], gate["worst"]) == (
        "error", None, 3, [],
    )  # fmt: skip


def test_suite_rows_carry_a_gate_only_for_gated_suites() -> None:
    rows = [gated_case(f"c{i}", "P" if i % 4 else "F", pass_rate=0.6) for i in range(8)]
    rows += [row(f"c{i}", "m", "passed", test="t.py::test_plain_cases") for i in range(3)]
    by_suite = {s["suite"]: s for s in compare(rows)["suites"]}
    assert "gate" not in by_suite["t.py::test_plain_cases"]
    gate = by_suite["t.py::test_bench"]["gate"]
    assert (gate["verdict"], gate["rate"], gate["worst"]) == ("passed", 0.75, ["c0 0/1", "c4 0/1"])


def stopped_case(
    case: str, script: str, position: int, cases: int, collection: str = "one", **plan: Any
) -> Any:
    """A case of a suite with design="sequential", at `position` of `cases` collected."""
    found = gated_case(case, script, **plan)
    found["plan"]["order"] = {"position": position, "cases": cases, "collection": collection}
    return found


def test_a_stopped_suite_is_judged_by_its_rule_over_the_cases_that_ran() -> None:
    """Seven of ten fixed cases failed: three passes cannot reach 0.8, so the rest was skipped;
    the verdict is the full run's, and the row says where it could have stopped."""
    cases = {f"c{i}": stopped_case(f"c{i}", "F", i, 10) for i in range(7)}
    gate = suite_gate(cases)
    assert gate is not None and gate["verdict"] == "failed"
    assert "curtailed" in gate["method"]
    assert gate["stopping"] == {
        "cases": 10, "ran": 7, "judged": 7, "skipped": 3, "overshoot": 2,
        "why": "0 passes in 7 samples stay below the pass bound whatever the other 3 cases give",
    }  # fmt: skip


def test_a_sampled_stop_counts_its_canonical_prefix_only() -> None:
    """The sequential design decides on positions 0..j; a case finished past them is
    reported (overshoot) and not counted, even when it passed."""
    cases = {f"c{i}": stopped_case(f"c{i}", "F", i, 20, population="sampled") for i in range(12)}
    cases["c19"] = stopped_case("c19", "P", 19, 20, population="sampled")
    gate = suite_gate(cases)
    assert gate is not None and gate["verdict"] == "failed"
    stop = gate["stopping"]
    assert stop["ran"] == 13 and stop["skipped"] == 7
    assert stop["judged"] <= 12 and stop["overshoot"] == 13 - stop["judged"]


def test_a_sequential_suite_whose_cases_all_ran_gets_its_last_verdict() -> None:
    cases = {f"c{i}": stopped_case(f"c{i}", "P" if i % 5 else "F", i, 10) for i in range(10)}
    gate = suite_gate(cases)
    assert gate is not None
    assert (
        gate["verdict"]
        == suite_verdict(
            [outcomes(row) for row in cases.values()], 0.8, 0.95, "not_worse", "fixed"
        ).verdict
    )
    assert gate["stopping"]["skipped"] == 0


def test_shards_of_a_sequential_suite_are_judged_whole_or_are_an_error() -> None:
    """Two shards collected five cases each (two canonical orders)."""
    # Fixed: every case of shard "a" failed, and shard "b" skipped two cases; over N = 10 the
    # two skipped ones cannot lift 3 passes to 0.8.
    a = {f"a{i}": stopped_case(f"a{i}", "F", i, 5, "a") for i in range(5)}
    b = {f"b{i}": stopped_case(f"b{i}", "P", i, 5, "b") for i in range(3)}
    gate = suite_gate({**a, **b})
    assert gate is not None and gate["verdict"] == "failed"
    assert gate["stopping"]["cases"] == 10 and gate["stopping"]["skipped"] == 2
    # Fixed, not settled over N = 10 by the cases that ran: an error, not a guess.
    b = {f"b{i}": stopped_case(f"b{i}", "F" if i == 2 else "P", i, 5, "b") for i in range(3)}
    a = {f"a{i}": stopped_case(f"a{i}", "F" if i in (2, 3) else "P", i, 5, "a") for i in range(5)}
    gate = suite_gate({**a, **b})
    assert gate is not None and gate["verdict"] == "error"
    assert "one shard" in gate["stopping"]["why"]
    # Sampled: skipped cases leave no canonical order over both shards.
    sampled = {
        f"{s}{i}": stopped_case(f"{s}{i}", "F", i, 5, s, population="sampled")
        for s, ran in (("a", 5), ("b", 3))
        for i in range(ran)
    }
    gate = suite_gate(sampled)
    assert gate is not None and gate["verdict"] == "error"
    # Every case of both shards ran: judged like a suite that runs every case.
    sampled.update(
        {f"b{i}": stopped_case(f"b{i}", "F", i, 5, "b", population="sampled") for i in (3, 4)}
    )
    gate = suite_gate(sampled)
    full = suite_verdict([(False,)] * 10, 0.8, 0.95, "not_worse", "sampled")
    assert gate is not None and (gate["verdict"], gate["method"]) == (full.verdict, full.method)
