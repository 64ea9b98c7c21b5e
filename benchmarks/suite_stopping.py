"""How many cases a suite with design="sequential" spends, against the 164 a full run spends.

Question: on a HumanEval-sized suite (N = 164 cases) gated at pass_rate 0.6 (not_worse,
confidence 0.95), how many cases run before the verdict is settled, at a few true pass@1
values, with 1 and 5 samples per case, for the fixed and the sampled population?

Simulated with a fixed seed, not exact: each run draws 164 case rates from a Beta distribution
with the true pass@1 as its mean and a + b = 2 (easy and hard cases mixed), then each sample of a
case passes with its case's rate. Cases finish in the canonical order one at a time (a serial
run with no run-ahead, so no overshoot); the suite stops at the first prefix that
`suite_stopping.decide` settles. Settling only grows with the prefix, so a bisection finds it.
Reported: the mean cases spent over the runs and how often the suite failed. For a fixed
population the claim is about the 164 cases drawn, whose mean rate scatters around the true
pass@1 (sd about 0.02 here), so at 0.6 some draws are truly below it; its verdict is the full
run's, and so is its failure rate. The sampled one-sample column is also given exactly
(`sequential.operating` on `design_for(164, ...)`), as a check of the simulation.
Run: python benchmarks/suite_stopping.py
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pytest_llmeval.verdict.sequential import design_for, operating
from pytest_llmeval.verdict.suite import Population
from pytest_llmeval.verdict.suite_stopping import SuiteRule, decide

N = 164
PASS_RATE = 0.6
RATES = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)
RUNS = 200
SEED = 20261202
CONCENTRATION = 2.0


def draw(rng: random.Random, mean: float, samples: int) -> list[tuple[bool, ...]]:
    a, b = mean * CONCENTRATION, (1 - mean) * CONCENTRATION
    rates = [rng.betavariate(a, b) for _ in range(N)]
    return [tuple(rng.random() < r for _ in range(samples)) for r in rates]


def spent(rule: SuiteRule, cases: Sequence[tuple[bool, ...]]) -> tuple[int, str]:
    """Cases run before the verdict settled, and the verdict."""
    lo, hi = 1, N
    while lo < hi:
        mid = (lo + hi) // 2
        if decide(rule, dict(enumerate(cases[:mid]))).verdict is None:
            lo = mid + 1
        else:
            hi = mid
    stop = decide(rule, dict(enumerate(cases[:lo])))
    assert stop.verdict is not None
    return lo, stop.verdict


def main() -> None:
    rng = random.Random(SEED)
    print(f"N = {N} cases, pass_rate {PASS_RATE} not_worse at 0.95, {RUNS} seeded runs each")
    print("mean cases spent (P(fail)); a full run spends 164")
    print()
    configs: list[tuple[Population, int]] = [
        (pop, s) for pop in ("fixed", "sampled") for s in (1, 5)
    ]
    header = ["true pass@1", *(f"{pop}, {s} sample{'s' if s > 1 else ''}" for pop, s in configs)]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for rate in RATES:
        cells = [f"{rate:.2f}"]
        for population, samples in configs:
            rule = SuiteRule(N, samples, PASS_RATE, 0.95, "not_worse", population)
            results = [spent(rule, draw(rng, rate, samples)) for _ in range(RUNS)]
            mean = sum(k for k, _ in results) / RUNS
            failed = sum(v == "failed" for _, v in results) / RUNS
            cells.append(f"{mean:.1f} ({failed:.2f})")
        print(" | ".join(cells))
    print()
    design = design_for(N, PASS_RATE, 0.95, "not_worse")
    print("sampled, 1 sample, exact:")
    for rate in RATES:
        found = operating(design, rate)
        print(f"{rate:.2f}: {float(found.expected_samples):.1f} ({float(found.failed):.3f})")


if __name__ == "__main__":
    main()
