"""Samples spent by the not_worse verdict: fixed-N, curtailment and the sequential design.

Exact dynamic programming (no simulation, no errors) at confidence 0.95: for each pass rate and
`samples`, at true rates from 0.3 below the pass rate to 0.99, the mean and 95th percentile of
the samples spent and the probability of failing (alpha at the pass rate, power below it);
then the mean reduction of the sequential design's expected samples against curtailment over
those rates, per `samples` and overall. Run: python benchmarks/sequential_exact.py
"""

from __future__ import annotations

import time

from pytest_llmeval.verdict.sequential import curtailed, design_for, fixed, operating
from pytest_llmeval.verdict.stats import pass_threshold

CONFIDENCE = 0.95
PASS_RATES = (0.5, 0.8, 0.9, 0.95)
SAMPLES = (10, 20, 30, 50, 100)


def true_rates(pass_rate: float) -> list[float]:
    offsets = (-0.3, -0.2, -0.1, 0.0, 0.1)
    rates = [round(pass_rate + x, 2) for x in offsets if pass_rate + x < 0.99]
    return [*rates, 0.99]


def main() -> None:
    print(f"confidence {CONFIDENCE}; cells: mean / p95 samples, P(fail)")
    print("| pass rate | samples | true rate | fixed-N | curtailed | sequential | saved |")
    print("|---|---|---|---|---|---|---|")
    reductions: dict[int, list[float]] = {n: [] for n in SAMPLES}
    timings = []
    for pass_rate in PASS_RATES:
        for n in SAMPLES:
            start = time.perf_counter()
            design = design_for(n, pass_rate, CONFIDENCE, "not_worse")
            timings.append(time.perf_counter() - start)
            below = pass_threshold(n, pass_rate, CONFIDENCE, "not_worse") - 1
            plans = (fixed(n, below), curtailed(n, below), design)
            for rate in true_rates(pass_rate):
                results = [operating(plan, rate) for plan in plans]
                cells = [
                    f"{float(r.expected_samples):.1f} / {r.quantile(0.95)}, {float(r.failed):.3f}"
                    for r in results
                ]
                saved = 1 - float(results[2].expected_samples / results[1].expected_samples)
                reductions[n].append(saved)
                print(f"| {pass_rate} | {n} | {rate} | {' | '.join(cells)} | {saved:.0%} |")
    print()
    print("| samples | mean reduction vs curtailment |")
    print("|---|---|")
    for n, values in reductions.items():
        print(f"| {n} | {sum(values) / len(values):.1%} |")
    every = [x for values in reductions.values() for x in values]
    print(f"| all | {sum(every) / len(every):.1%} |")
    print(f"\ndesign_for: slowest {max(timings) * 1000:.0f} ms over these {len(timings)} designs")


if __name__ == "__main__":
    main()
