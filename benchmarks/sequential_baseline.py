"""Samples a test spends with a baseline: the gate stopped by curtailment only, and with futility.

Exact dynamic programming (no simulation). A test of `samples` n with its own not_worse verdict
(the sequential design, as by default) and a baseline row of n samples at the same true rate as
the current run (an unchanged model; the baseline's passes summed over their binomial law)
samples until its own verdict is decided and the gate says "settled" or "futile". For each
pass rate and n, at true rates around the pass rate: the expected samples with the old gate
(curtailment only) and the new one, and P(regression flagged) when the current rate is 0.1 and
0.2 below the baseline's for the fixed-N Fisher test, the old gate and the new one.
Run: python benchmarks/sequential_baseline.py
"""

from __future__ import annotations

import math
import time

from pytest_llmeval.verdict.futility import Gate
from pytest_llmeval.verdict.futility import futility as futility_rule
from pytest_llmeval.verdict.sequential import Design, design_for
from pytest_llmeval.verdict.stats import min_valid_samples, regressed

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
PASS_RATES = (0.5, 0.8, 0.9, 0.95)
SAMPLES = (10, 20, 30, 50)


def run(design: Design, gate: Gate, p: float) -> tuple[float, float]:
    """(expected samples, P(flagged as a regression)) of one test against one baseline row."""
    n = design.n
    alive = {(0, False): 1.0}  # (passes, own verdict decided) -> probability, not yet stopped
    spent = flagged = 0.0
    for valid in range(1, n + 1):
        step: dict[tuple[int, bool], float] = {}
        for (passes, decided), mass in alive.items():
            for outcome, weight in ((1, p), (0, 1 - p)):
                if weight:
                    key = (passes + outcome, decided)
                    step[key] = step.get(key, 0.0) + mass * weight
        alive = {}
        for (passes, decided), mass in step.items():
            decided = decided or not (
                design.fail_at[valid - 1] < passes < design.pass_at[valid - 1]
            )
            stop = gate(passes, valid, n - valid) if decided else None
            if valid == n or stop is not None:
                spent += mass * valid
                if stop != "futile" and regressed(
                    gate.base_passes, gate.base_valid, passes, valid, ALPHA
                ):
                    flagged += mass
            else:
                key = (passes, decided)
                alive[key] = alive.get(key, 0.0) + mass
    return spent, flagged


def over_baselines(
    design: Design, n: int, base_rate: float, rate: float, futile: bool
) -> tuple[float, float]:
    """`run` averaged over the baseline's passes, Bin(n, base_rate)."""
    spent = flagged = 0.0
    least = min_valid_samples(n)
    for base in range(n + 1):
        weight = math.comb(n, base) * base_rate**base * (1 - base_rate) ** (n - base)
        if weight < 1e-12:
            continue
        e, f = run(design, Gate(base, n, ALPHA, least, n, futile), rate)
        spent += weight * e
        flagged += weight * f
    return spent, flagged


def fixed_power(n: int, base_rate: float, rate: float) -> float:
    total = 0.0
    for base in range(n + 1):
        wb = math.comb(n, base) * base_rate**base * (1 - base_rate) ** (n - base)
        for passes in range(n + 1):
            if regressed(base, n, passes, n, ALPHA):
                total += wb * math.comb(n, passes) * rate**passes * (1 - rate) ** (n - passes)
    return total


def main() -> None:
    start = time.perf_counter()
    print(f"confidence {CONFIDENCE}; baseline of n samples at the true rate of the 'same' column")
    print(
        "| pass rate | n | same rate | samples: curtailed gate | futility gate | saved "
        "| flagged at -0.1: fixed / curtailed / futility | at -0.2 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    saved_all: list[float] = []
    for pass_rate in PASS_RATES:
        for n in SAMPLES:
            design = design_for(n, pass_rate, CONFIDENCE, "not_worse")
            for rate in sorted({pass_rate, min(round(pass_rate + 0.05, 2), 0.99), 0.99}):
                old, _ = over_baselines(design, n, rate, rate, futile=False)
                new, _ = over_baselines(design, n, rate, rate, futile=True)
                saved = 1 - new / old
                saved_all.append(saved)
                powers = []
                for drop in (0.1, 0.2):
                    current = max(rate - drop, 0.0)
                    _, f_old = over_baselines(design, n, rate, current, futile=False)
                    _, f_new = over_baselines(design, n, rate, current, futile=True)
                    fixed = fixed_power(n, rate, current)
                    powers.append(f"{fixed:.3f} / {f_old:.3f} / {f_new:.3f}")
                print(
                    f"| {pass_rate} | {n} | {rate} | {old:.1f} | {new:.1f} | {saved:.0%} "
                    f"| {powers[0]} | {powers[1]} |"
                )
    print(f"\nmean saving of an unchanged model's samples: {sum(saved_all) / len(saved_all):.1%}")
    slowest = 0.0
    for n in (30, 50, 100, 200):
        futility_rule.cache_clear()
        t0 = time.perf_counter()
        futility_rule(int(0.9 * n), n, n, ALPHA)
        slowest = max(slowest, time.perf_counter() - t0)
        print(f"futility rule for a baseline of {n} samples: {time.perf_counter() - t0:.2f} s")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
