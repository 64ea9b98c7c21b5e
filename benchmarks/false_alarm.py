"""Exact false-alarm rate of the baseline gate (Fisher's exact one-sided test at alpha 0.05).

Baseline and current run both have n valid samples and the same true pass rate p; the gate
should fire with probability <= alpha. Computed exactly over all (baseline, current) outcomes
for p = 0.001 ... 0.999, with the largest value and where it occurs, then at a few typical p.
Run: python benchmarks/false_alarm.py [n]
"""

from __future__ import annotations

import sys

from pytest_llmeval.verdict.stats import false_alarm_rate

ALPHA = 0.05


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    grid = [i / 1000 for i in range(1, 1000)]
    worst, where = max((false_alarm_rate(n, n, p, ALPHA), p) for p in grid)
    print(f"n={n} baseline and current samples, alpha={ALPHA}")
    print(f"false-alarm rate, max over p: {worst:.4f} at p={where:.3f}")
    for p in (0.5, 0.8, 0.9, 0.95):
        print(f"  p={p:.2f}: {false_alarm_rate(n, n, p, ALPHA):.4f}")


if __name__ == "__main__":
    main()
