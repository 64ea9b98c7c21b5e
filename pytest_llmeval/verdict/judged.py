"""Verdicts on pass rates decided by an imperfect LLM judge: Rogan-Gladen correction with an
exact interval for the model's true rate that carries the judge's calibration uncertainty."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeval.verdict.stats import Mode, Verdict, check_verdict_args, clopper_pearson

# Comparisons against pass_rate leave this margin so float error can only make a verdict more
# conservative (stats.py does the same with its _SLACK).
_MARGIN = 1e-12
_OBSERVED_EPS = 1e-9


@dataclass(frozen=True)
class Calibration:
    """Counts from judging outputs with human labels: the judge's confusion matrix."""

    true_pos: int  # truly pass, judged pass
    false_neg: int  # truly pass, judged fail
    true_neg: int  # truly fail, judged fail
    false_pos: int  # truly fail, judged pass

    def __post_init__(self) -> None:
        counts = (self.true_pos, self.false_neg, self.true_neg, self.false_pos)
        if any(count < 0 for count in counts):
            raise ValueError(f"calibration counts must be >= 0, got {self}")

    @property
    def positives(self) -> int:
        """Calibration items a human labelled pass."""
        return self.true_pos + self.false_neg

    @property
    def negatives(self) -> int:
        """Calibration items a human labelled fail."""
        return self.true_neg + self.false_pos

    @property
    def sensitivity(self) -> float | None:
        """P(judge says pass | truly pass), None without truly-passing items."""
        return self.true_pos / self.positives if self.positives else None

    @property
    def specificity(self) -> float | None:
        """P(judge says fail | truly fail), None without truly-failing items."""
        return self.true_neg / self.negatives if self.negatives else None


@dataclass(frozen=True)
class CorrectedVerdict:
    """A verdict on the model's true pass rate, corrected for the judge's errors."""

    verdict: Verdict
    judged_rate: float | None
    corrected_rate: float | None  # Rogan-Gladen point estimate, clipped to [0, 1]
    interval: tuple[float, float]  # for the true rate, calibration uncertainty carried in
    method: str


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def rogan_gladen(judged: float, sensitivity: float, specificity: float) -> float | None:
    """True rate from the judged rate, clipped to [0, 1]; None unless Se + Sp > 1."""
    informativeness = sensitivity + specificity - 1.0
    if informativeness <= 0.0:
        return None
    return _clip((judged + specificity - 1.0) / informativeness)


def corrected_verdict(
    passes: int,
    valid: int,
    calibration: Calibration,
    pass_rate: float,
    confidence: float,
    mode: Mode,
) -> CorrectedVerdict:
    """Verdict on the model's true pass rate p when `passes` of `valid` samples were judged pass.

    Guarantee (union bound, no assumption on p, Se or Sp): Clopper-Pearson intervals for the
    judged rate q, Se and Sp at level alpha/3 each all hold at once with probability
    >= 1 - alpha. On that event the true p satisfies q = p*Se + (1-p)*(1-Sp) inside the box, so
    p*(Se_lo + Sp_hi - 1) <= q_hi + Sp_hi - 1 and p*(Se_hi + Sp_lo - 1) >= q_lo + Sp_lo - 1.
    When the box has Se + Sp > 1 throughout (Se_lo + Sp_lo > 1) these give
    p <= RG(q_hi, Se_lo, Sp_hi) and p >= RG(q_lo, Se_hi, Sp_lo), from the two linear
    inequalities above (not from monotonicity: RG's slope in Sp has the sign of Se - q).
    Otherwise the judge is not informative enough and the verdict is "error".

    not_worse and proven use one-sided bounds (each end then holds with >= 1 - alpha), so
    P("failed") <= alpha when p >= pass_rate and P("passed") <= alpha when p <= pass_rate in
    proven mode; observed compares the point estimate and reports a two-sided interval with
    joint coverage >= 1 - alpha. Conservative by construction: the union bound and the box
    corners both overstate the uncertainty. It assumes the judge errs on the model's outputs
    as on the calibration set (same Se and Sp) and samples are independent.
    """
    if not 0 <= passes <= valid:
        raise ValueError(f"need 0 <= passes <= valid, got passes={passes} valid={valid}")
    check_verdict_args(pass_rate, confidence, mode)

    alpha = 1.0 - confidence
    # A two-sided interval at 1 - 2a has one-sided ends at level a each.
    each = 1.0 - (alpha / 3 if mode == "observed" else 2 * alpha / 3)
    q_lo, q_hi = clopper_pearson(passes, valid, each)
    se_lo, se_hi = clopper_pearson(calibration.true_pos, calibration.positives, each)
    sp_lo, sp_hi = clopper_pearson(calibration.true_neg, calibration.negatives, each)

    judged_rate = passes / valid if valid else None
    se, sp = calibration.sensitivity, calibration.specificity
    corrected_rate = (
        rogan_gladen(judged_rate, se, sp)
        if judged_rate is not None and se is not None and sp is not None
        else None
    )
    sides = "two-sided" if mode == "observed" else "one-sided"
    counts = (
        f"q {passes}/{valid}, Se {calibration.true_pos}/{calibration.positives}, "
        f"Sp {calibration.true_neg}/{calibration.negatives}"
    )

    if valid == 0:
        return CorrectedVerdict("error", None, None, (0.0, 1.0), "no valid samples to judge")
    if se_lo + sp_lo <= 1.0 or corrected_rate is None:
        return CorrectedVerdict(
            "error",
            judged_rate,
            corrected_rate,
            (0.0, 1.0),
            f"judge not informative enough: Se + Sp may be <= 1 "
            f"(Se >= {se_lo:.3f}, Sp >= {sp_lo:.3f} at {sides} alpha/3; {counts}); "
            f"add calibration items or use a better judge",
        )

    lower = _clip((q_lo + sp_lo - 1.0) / (se_hi + sp_lo - 1.0))
    upper = _clip((q_hi + sp_hi - 1.0) / (se_lo + sp_hi - 1.0))
    if mode == "not_worse":
        verdict: Verdict = "failed" if upper < pass_rate - _MARGIN else "passed"
    elif mode == "proven":
        verdict = "passed" if lower > pass_rate + _MARGIN else "failed"
    else:
        verdict = "passed" if corrected_rate >= pass_rate - _OBSERVED_EPS else "failed"
    method = (
        f"Rogan-Gladen corrected; union bound over {sides} Clopper-Pearson bounds at alpha/3 "
        f"for {counts}"
    )
    return CorrectedVerdict(verdict, judged_rate, corrected_rate, (lower, upper), method)
