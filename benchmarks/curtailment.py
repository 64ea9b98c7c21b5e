"""Exact figures for the not_worse verdict: worst-case false-fail rate and curtailment savings.

Computed by dynamic programming over (passes, fails) states, one sample at a time, no errors.
"""

from __future__ import annotations

from fractions import Fraction

from pytest_llmeval.verdict.stats import settled, thresholds

CONFIDENCE = 0.95
MAX_N = 200
GUARANTEE_RATES = (0.5, 0.7, 0.8, 0.9, 0.95)
SAMPLES = 30
GATE_RATE = 0.8
TRUE_RATES = (0.5, 0.8, 0.95)


def step(layer: list[int], rate: Fraction) -> list[int]:
    """Pass-count numerators after one more sample (common denominator grows by rate's)."""
    a, d = rate.numerator, rate.denominator
    b = d - a
    return [
        (layer[k] * b if k < len(layer) else 0) + (layer[k - 1] * a if k > 0 else 0)
        for k in range(len(layer) + 1)
    ]


def worst_false_fail(pass_rate: float) -> tuple[Fraction, int]:
    """Max over n = 1..MAX_N of P(fail) for a model whose true rate is exactly pass_rate."""
    rate = Fraction(str(pass_rate))
    table = thresholds(MAX_N, pass_rate, CONFIDENCE, "not_worse")
    layer, worst, worst_n = [1], Fraction(0), 0
    for n in range(1, MAX_N + 1):
        layer = step(layer, rate)
        fail = Fraction(sum(layer[: table[n]]), rate.denominator**n)
        if fail > worst:
            worst, worst_n = fail, n
    return worst, worst_n


def run(true_rate: float, curtail: bool) -> tuple[Fraction, Fraction]:
    """(P(passed), mean samples used) for N = SAMPLES, stopping early when settled if curtail."""
    rate = Fraction(str(true_rate))
    table = thresholds(SAMPLES, GATE_RATE, CONFIDENCE, "not_worse")
    layer = [1]
    p_pass, used = Fraction(0), Fraction(0)
    for t in range(SAMPLES + 1):
        den = rate.denominator**t
        for k, mass in enumerate(layer):
            if not mass:
                continue
            verdict = settled(k, t, SAMPLES - t, SAMPLES, table)
            if verdict is None or (not curtail and t < SAMPLES):
                continue
            layer[k] = 0
            used += Fraction(mass * t, den)
            if verdict == "passed":
                p_pass += Fraction(mass, den)
        layer = step(layer, rate)
    return p_pass, used


def main() -> None:
    print(
        f"1. Worst-case false-fail probability, not_worse, confidence {CONFIDENCE}, n = 1..{MAX_N}"
    )
    print(f"   (alpha = {1 - Fraction(str(CONFIDENCE))}; true rate = pass_rate)")
    print(f"   {'pass_rate':>9}  {'max P(fail)':>11}  {'at n':>4}")
    for pass_rate in GUARANTEE_RATES:
        worst, n = worst_false_fail(pass_rate)
        print(f"   {pass_rate:>9}  {float(worst):>11.5f}  {n:>4}")
    print()
    print(
        f"2. Curtailment vs fixed N = {SAMPLES}, not_worse, pass_rate {GATE_RATE}, "
        f"confidence {CONFIDENCE}"
    )
    header = (
        f"   {'true rate':>9}  {'P(passed) fixed':>15}  {'P(passed) curtailed':>19}  "
        f"{'same':>4}  {'mean samples fixed':>18}  {'mean samples curtailed':>22}"
    )
    print(header)
    for true_rate in TRUE_RATES:
        fixed_pass, fixed_used = run(true_rate, curtail=False)
        early_pass, early_used = run(true_rate, curtail=True)
        print(
            f"   {true_rate:>9}  {float(fixed_pass):>15.6f}  {float(early_pass):>19.6f}  "
            f"{fixed_pass == early_pass!s:>4}  {float(fixed_used):>18.2f}  "
            f"{float(early_used):>22.2f}"
        )


if __name__ == "__main__":
    main()
