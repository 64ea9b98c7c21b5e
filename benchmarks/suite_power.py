"""Power of the paired suite regression test against the unpaired one, on 164 cases.

Question: on a HumanEval-sized suite, what is the smallest drop in pass@1 that a gate at
alpha 0.05 detects with 80% power? Paired: `paired_regression` (exact sign test case by case,
McNemar's with one sample per case). Unpaired: `drop_p_value` (Fisher's exact test on the pooled
passes and samples of the two runs), what a per-test baseline gate does with a suite's samples.

Model (fixed cases, like a benchmark): 164 cases with baseline per-case rates 0.97 for 115
(nearly always solved), 0.03 for 16 (nearly never) and 33 spread evenly over 0.1 .. 0.9; pass@1
0.784. The current model keeps the cases' rates except for a drop:
* concentrated: a quarter of the cases (one in four by ascending rate: 41 cases, 4 never
  solved, 9 in between, 28 nearly always) lose a fraction s of their rate, as when a prompt
  change breaks one kind of task;
* diffuse: every case loses a fraction s of its rate.
The drop in pass@1 is the mean loss over the 164 cases. Both runs take the same number of
samples per case (1 or 5). Power is exact, not simulated: the sign test's by dynamic
programming over (worse, better) case counts, Fisher's by summing over the Poisson-binomial
distributions of the two runs' passes (probabilities below 1e-16 dropped; the script checks that
less than 1e-9 of the total probability is lost).
Last, on one seeded draw of 5 samples per case from the baseline, the 95% intervals that
`suite_verdict` gives for pass@1 with the fixed and the sampled population.
Run: python benchmarks/suite_power.py
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence

from pytest_llmeval.verdict.stats import drop_p_value
from pytest_llmeval.verdict.suite import paired_regression, suite_verdict

ALPHA = 0.05
POWER = 0.8
CASES = 164
SAMPLES = (1, 5)
DROPS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10)
_TINY = 1e-16
_LOST = 1e-9


def baseline_rates() -> list[float]:
    """The 164 baseline per-case rates, ascending."""
    return [0.03] * 16 + [0.1 + 0.8 * i / 32 for i in range(33)] + [0.97] * 115


def concentrated(rates: Sequence[float], s: float) -> list[float]:
    return [p * (1 - s) if i % 4 == 0 else p for i, p in enumerate(rates)]


def diffuse(rates: Sequence[float], s: float) -> list[float]:
    return [p * (1 - s) for p in rates]


Model = Callable[[Sequence[float], float], list[float]]
Power = Callable[[Sequence[float], Sequence[float], int], float]
MODELS: dict[str, Model] = {
    "concentrated": concentrated,
    "diffuse": diffuse,
}


def binomial_pmf(k: int, p: float) -> list[float]:
    return [math.comb(k, i) * p**i * (1 - p) ** (k - i) for i in range(k + 1)]


def passes_pmf(rates: Sequence[float], k: int) -> list[float]:
    """Poisson-binomial pmf of the passes of the suite, k samples per case."""
    pmf = [1.0]
    for p in rates:
        for _ in range(k):
            nxt = [0.0] * (len(pmf) + 1)
            for i, q in enumerate(pmf):
                if q > _TINY:
                    nxt[i] += q * (1 - p)
                    nxt[i + 1] += q * p
            pmf = nxt
    return pmf


@functools.cache
def sign_critical(discordant: int) -> int:
    """Fewest worse cases among `discordant` untied ones for which paired_regression fires."""

    def fires(worse: int) -> bool:
        base = {f"c{i}": (i < worse,) for i in range(discordant)}
        current = {f"c{i}": (i >= worse,) for i in range(discordant)}
        return paired_regression(base, current, ALPHA).regressed

    lo, hi = 0, discordant + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if mid <= discordant and fires(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def paired_power(base: Sequence[float], now: Sequence[float], k: int) -> float:
    """Exact P(paired_regression fires): DP over (worse, better) counts, case by case."""
    states = {(0, 0): 1.0}
    for p, q in zip(base, now, strict=True):
        before, after = binomial_pmf(k, p), binomial_pmf(k, q)
        worse = sum(before[i] * after[j] for i in range(k + 1) for j in range(i))
        better = sum(before[i] * after[j] for i in range(k + 1) for j in range(i + 1, k + 1))
        tie = 1 - worse - better
        nxt: dict[tuple[int, int], float] = {}
        for (w, b), pr in states.items():
            for key, step in (((w + 1, b), worse), ((w, b + 1), better), ((w, b), tie)):
                mass = pr * step
                if mass > _TINY:
                    nxt[key] = nxt.get(key, 0.0) + mass
        states = nxt
    assert sum(states.values()) > 1 - _LOST
    return sum(pr for (w, b), pr in states.items() if w >= sign_critical(w + b))


@functools.cache
def fisher_critical(base_passes: int, n: int) -> int:
    """Most current passes (of n) for which drop_p_value <= ALPHA; -1 when none."""
    lo, hi = -1, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if drop_p_value(base_passes, n, mid, n) <= ALPHA:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fisher_power(base: Sequence[float], now: Sequence[float], k: int) -> float:
    """Exact P(Fisher's test on pooled samples fires), baseline and current independent."""
    n = len(base) * k
    before, after = passes_pmf(base, k), passes_pmf(now, k)
    assert min(sum(before), sum(after)) > 1 - _LOST
    below = [0.0]
    for q in after:
        below.append(below[-1] + q)
    return sum(pb * below[fisher_critical(sb, n) + 1] for sb, pb in enumerate(before) if pb > _TINY)


def smallest_drop(power: Power, model: Model, k: int) -> float:
    """Drop in pass@1 at which `power` first reaches POWER under `model`, to 0.001."""
    base = baseline_rates()
    lo, hi = 0.0, 1.0
    while (hi - lo) * sum(base) / CASES > 0.0005:
        mid = (lo + hi) / 2
        if power(base, model(base, mid), k) >= POWER:
            hi = mid
        else:
            lo = mid
    return (sum(base) - sum(model(base, hi))) / CASES


def main() -> None:
    base = baseline_rates()
    pass1 = sum(base) / CASES
    print(f"{CASES} cases, baseline pass@1 {pass1:.3f}, alpha {ALPHA}, power target {POWER}")
    for name, model in MODELS.items():
        per_unit = (sum(base) - sum(model(base, 1.0))) / CASES
        print(f"\n{name} drop (pass@1 loss = {per_unit:.3f} * s)")
        print(f"{'drop':>6}  " + "  ".join(f"paired k={k}  Fisher k={k}" for k in SAMPLES))
        for drop in DROPS:
            now = model(base, drop / per_unit)
            cells = []
            for k in SAMPLES:
                cells.append(f"{paired_power(base, now, k):11.3f}")
                cells.append(f"{fisher_power(base, now, k):11.3f}")
            print(f"{drop:6.3f}  " + "  ".join(cells))
        for k in SAMPLES:
            paired = smallest_drop(paired_power, model, k)
            fisher = smallest_drop(fisher_power, model, k)
            print(
                f"smallest drop with {POWER:.0%} power, {k} sample(s) per case: "
                f"paired {paired:.3f}, Fisher {fisher:.3f}"
            )

    rng = random.Random(0)
    cases = [tuple(rng.random() < p for _ in range(5)) for p in base]
    for population in ("fixed", "sampled"):
        result = suite_verdict(cases, 0.75, 0.95, "observed", population)
        lo, hi = result.interval
        print(f"{population}: pass@1 {result.rate:.3f}, 95% interval {lo:.3f} .. {hi:.3f}")


if __name__ == "__main__":
    main()
