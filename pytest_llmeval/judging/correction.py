"""A judged test's verdict about the model's true pass rate, corrected for the judge's error.

It applies when every valid sample's outcome is one grade by the same judge on the same rubric
(the sample passed exactly when the judge said pass) and a calibration of that judge and rubric
exists. Otherwise the verdict stays about the judged rate, and the report says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llmeval.judging.calibration import CalibrationStore, Figures
from pytest_llmeval.report.schema import CalibrationInfo, Judged, JudgedVerdict
from pytest_llmeval.verdict.judged import corrected_verdict
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.records import SampleRecord
from pytest_llmeval.verdict.stats import Mode, Verdict


@dataclass(frozen=True)
class Correction:
    verdict: Verdict | None  # None: keep the sampled verdict (about the judged rate)
    info: JudgedVerdict


def correct(
    records: Sequence[SampleRecord], plan: Plan, store: CalibrationStore
) -> Correction | None:
    """The judged verdict of a test's samples; None when no sample was graded."""
    valid = [r for r in records if r.outcome != "error"]
    grades = [[j for j in r.judgements if j["kind"] == "grade"] for r in valid]
    passes = sum(r.outcome == "passed" for r in valid)
    judged_rate = passes / len(valid) if valid else None
    first = next((g[0] for g in grades if g), None)
    if first is None:
        return None
    judge, rubric = first["judge"], first["rubric"]
    problem = _mismatch(valid, grades)
    if problem is not None:
        return _about_judged(judge, rubric, judged_rate, problem)
    if plan.suite:
        return _about_judged(
            judge, rubric, judged_rate, "a suite's gate is about the judged rate of its cases"
        )
    figures = store.find(first["judge_model_id"], rubric)
    if figures is None:
        return _about_judged(
            judge, rubric, judged_rate,
            f"no calibration of judge {judge!r} for this rubric ({rubric}) in {store.path.name}: "
            "the verdict is about the judged rate; calibrate with "
            "`python -m pytest_llmeval judge-calibrate`",
        )  # fmt: skip
    mode: Mode = plan.mode  # type: ignore[assignment]
    result = corrected_verdict(
        passes, len(valid), figures.counts, plan.pass_rate, plan.confidence, mode
    )
    info: JudgedVerdict = {
        "judge": judge,
        "rubric": rubric,
        "judged_rate": judged_rate,
        "corrected_rate": result.corrected_rate,
        "ci": [result.interval[0], result.interval[1]],
        "calibration": _calibration(figures),
        "about": "true_rate",
        "note": result.method,
    }
    return Correction(result.verdict, info)


def _mismatch(valid: Sequence[SampleRecord], grades: Sequence[list[Judged]]) -> str | None:
    """Why the samples' outcomes are not the judge's grades, one per sample; None if they are."""
    keys = {(g["judge_model_id"], g["rubric"]) for graded in grades for g in graded}
    if len(keys) > 1:
        return "samples were graded on more than one rubric or by more than one judge"
    for record, graded in zip(valid, grades, strict=True):
        if len(graded) != 1:
            return f"sample {record.index} was graded {len(graded)} times, not once"
        if graded[0].get("passed") != (record.outcome == "passed"):
            return f"sample {record.index}'s outcome is not its grade (another check decided it)"
    return None


def _about_judged(judge: str, rubric: str, rate: float | None, note: str) -> Correction:
    info: JudgedVerdict = {
        "judge": judge,
        "rubric": rubric,
        "judged_rate": rate,
        "corrected_rate": None,
        "ci": None,
        "calibration": None,
        "about": "judged_rate",
        "note": note,
    }
    return Correction(None, info)


def _calibration(figures: Figures) -> CalibrationInfo:
    c = figures.counts
    return {
        "set": figures.set,
        "items": figures.items,
        "true_pos": c.true_pos,
        "false_neg": c.false_neg,
        "true_neg": c.true_neg,
        "false_pos": c.false_pos,
        "sensitivity": c.sensitivity,
        "specificity": c.specificity,
    }
