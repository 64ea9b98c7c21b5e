"""Exact statistics behind every verdict: binomial tests with curtailment (early stopping),
Clopper-Pearson intervals, pass@k, McNemar's paired test, Fisher's test against a baseline and
Holm's adjustment for testing many of them at once."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

Mode = Literal["not_worse", "proven", "observed"]
MODES: tuple[str, ...] = ("not_worse", "proven", "observed")
Verdict = Literal["passed", "failed", "error"]

# Significance tests compare against alpha * (1 - _SLACK): float error can then only make a
# verdict more conservative, so the false-verdict guarantees survive rounding.
_SLACK = 1e-9
_NEGLIGIBLE = 1e-20
_OBSERVED_EPS = 1e-9
_BISECT_STEPS = 100


def _check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


def _check_p(p: float, name: str = "p") -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def check_verdict_args(pass_rate: float, confidence: float, mode: str) -> None:
    """A verdict's threshold, confidence and mode, as every verdict function takes them."""
    _check_p(pass_rate, "pass_rate")
    _check_confidence(confidence)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _mode_index(n: int, p: float) -> int:
    return min(n, math.floor((n + 1) * p))


def _tail(k: int, n: int, p: float, step: int) -> float:
    """Sum pmf(i) for i = k, k + step, ... inside [0, n], for 0 < p < 1.

    Terms must shrink away from k (k on the far side of the mode), so the sum stops once they
    are negligible; the first term comes from lgamma and the rest from the pmf ratio.
    """
    log_pmf = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )
    term = math.exp(log_pmf)
    odds = p / (1.0 - p)
    total = 0.0
    i = k
    while 0 <= i <= n and term > total * _NEGLIGIBLE:
        total += term
        if step > 0:
            term *= (n - i) / (i + 1) * odds
        else:
            term *= i / (n - i + 1) / odds
        i += step
    return total


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Bin(n, p), summed from the smaller side for relative accuracy."""
    _check_n(n)
    _check_p(p)
    if k < 0:
        return 0.0
    if k >= n or p == 0.0:
        return 1.0
    if p == 1.0:
        return 0.0
    if k < _mode_index(n, p):
        return min(1.0, _tail(k, n, p, -1))
    return max(0.0, 1.0 - _tail(k + 1, n, p, 1))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Bin(n, p), summed from the smaller side for relative accuracy."""
    _check_n(n)
    _check_p(p)
    if k <= 0:
        return 1.0
    if k > n or p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    if k > _mode_index(n, p):
        return min(1.0, _tail(k, n, p, 1))
    return max(0.0, 1.0 - _tail(k - 1, n, p, -1))


def _bisect(increasing: Callable[[float], float], target: float) -> float:
    """Solve increasing(x) = target on [0, 1] by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2
        if increasing(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@functools.lru_cache(maxsize=4096)
def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Exact two-sided Clopper-Pearson interval for a binomial rate after k successes in n."""
    _check_n(n)
    _check_confidence(confidence)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if n == 0:
        return 0.0, 1.0
    half = (1.0 - confidence) / 2
    lo = 0.0 if k == 0 else _bisect(lambda x: binom_sf(k, n, x), half)
    hi = 1.0 if k == n else _bisect(lambda x: -binom_cdf(k, n, x), -half)
    return lo, hi


def _first_true(lo: int, hi: int, pred: Callable[[int], bool]) -> int:
    """Smallest k in [lo, hi] with pred(k), for pred monotone false -> true and pred(hi) true."""
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def pass_threshold(n: int, pass_rate: float, confidence: float, mode: Mode) -> int:
    """Minimum passes among n valid samples for the verdict "passed" (n + 1 when impossible)."""
    _check_n(n)
    _check_p(pass_rate, "pass_rate")
    _check_confidence(confidence)
    level = (1.0 - confidence) * (1.0 - _SLACK)
    if mode == "not_worse":
        return _first_true(0, n, lambda k: binom_cdf(k, n, pass_rate) > level)
    if mode == "proven":
        return _first_true(0, n + 1, lambda k: binom_sf(k, n, pass_rate) <= level)
    if mode == "observed":
        return max(0, math.ceil(pass_rate * n - _OBSERVED_EPS))
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


@functools.lru_cache(maxsize=256)
def thresholds(samples: int, pass_rate: float, confidence: float, mode: Mode) -> tuple[int, ...]:
    """pass_threshold for every valid count 0..samples, cached because each test item needs it."""
    _check_n(samples)
    return tuple(pass_threshold(n, pass_rate, confidence, mode) for n in range(samples + 1))


def min_valid_samples(samples: int) -> int:
    """Fewest valid samples that still give a verdict: half of them, at least one."""
    _check_n(samples)
    return max(1, (samples + 1) // 2)


def _check_counts(
    passes: int, valid: int, remaining: int, samples: int, table: tuple[int, ...]
) -> None:
    if not (0 <= passes <= valid and remaining >= 0 and valid + remaining <= samples):
        raise ValueError(
            f"inconsistent counts: passes={passes} valid={valid} remaining={remaining} "
            f"samples={samples}"
        )
    if len(table) != samples + 1:
        raise ValueError(f"table must have samples + 1 = {samples + 1} entries, got {len(table)}")


def final_verdict(passes: int, valid: int, samples: int, table: tuple[int, ...]) -> Verdict:
    """Verdict once all samples are done: "error" with too few valid samples, else the threshold."""
    _check_counts(passes, valid, 0, samples, table)
    if valid < min_valid_samples(samples):
        return "error"
    return "passed" if passes >= table[valid] else "failed"


def settled(
    passes: int, valid: int, remaining: int, samples: int, table: tuple[int, ...]
) -> Verdict | None:
    """Verdict already fixed whatever the `remaining` unfinished samples do, else None.

    "passed"/"failed" means every completion with enough valid samples gives it; completions
    that end with too few valid samples would still be "error".
    """
    _check_counts(passes, valid, remaining, samples, table)
    least = min_valid_samples(samples)
    if valid + remaining < least:
        return "error"
    finals = range(max(valid, least), valid + remaining + 1)
    if all(passes >= table[n] for n in finals):
        return "passed"
    if all(passes + n - valid < table[n] for n in finals):
        return "failed"
    return None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), for k <= n."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b and c are the two kinds of discordant pairs."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binom_cdf(min(b, c), n, 0.5))


@functools.lru_cache(maxsize=65536)
def drop_p_value(base_passes: int, base_valid: int, passes: int, valid: int) -> float:
    """One-sided p-value of Fisher's exact test that the current rate is below the baseline's.

    Conditional on the total number of passes, the current passes are hypergeometric; the
    p-value is P(X <= passes), summed exactly over integers.
    """
    if not (0 <= base_passes <= base_valid and 0 <= passes <= valid):
        raise ValueError(f"bad counts: {base_passes}/{base_valid} and {passes}/{valid}")
    total, size = base_passes + passes, base_valid + valid
    lowest = max(0, valid - (size - total))
    tail = sum(
        math.comb(total, x) * math.comb(size - total, valid - x) for x in range(lowest, passes + 1)
    )
    return tail / math.comb(size, valid)


def regressed(base_passes: int, base_valid: int, passes: int, valid: int, alpha: float) -> bool:
    """A significant drop at level `alpha` (false alarms <= alpha for any common true rate)."""
    return drop_p_value(base_passes, base_valid, passes, valid) <= alpha


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: rejecting those <= alpha keeps
    the chance of any false rejection among them <= alpha, whatever their dependence."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def false_alarm_rate(base_n: int, n: int, rate: float, alpha: float) -> float:
    """Exact probability that `regressed` fires when both runs have the same true `rate`."""
    base_pmf = [
        math.comb(base_n, k) * rate**k * (1 - rate) ** (base_n - k) for k in range(base_n + 1)
    ]
    pmf = [math.comb(n, k) * rate**k * (1 - rate) ** (n - k) for k in range(n + 1)]
    return sum(
        base_pmf[i] * pmf[j]
        for i in range(base_n + 1)
        for j in range(n + 1)
        if regressed(i, base_n, j, n, alpha)
    )
