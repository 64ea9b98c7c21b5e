"""When a judged test's verdict is about the model's true rate, and when it stays about the
judged rate (and why)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.judging.calibration import CalibrationStore, Figures
from pytest_llmeval.judging.correction import correct
from pytest_llmeval.report.schema import Judged
from pytest_llmeval.verdict.judged import Calibration, corrected_verdict
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.records import SampleRecord

PLAN = Plan(pass_rate=0.7, samples=20, confidence=0.95, mode="not_worse", judged=True)
GOOD = Calibration(true_pos=48, false_neg=2, true_neg=47, false_pos=3)


def grade(passed: bool, rubric: str = "fp", judge: str = "j-1") -> Judged:
    return {"kind": "grade", "judge": "j", "judge_model_id": judge, "rubric": rubric,
            "reason": "", "passed": passed, "score": None}  # fmt: skip


def sample(
    index: int, passed: bool, *judgements: Judged, outcome: str | None = None
) -> SampleRecord:
    outcome = outcome or ("passed" if passed else "failed")
    return SampleRecord(index, outcome, 0.0, judgements=judgements or (grade(passed),))


def store_with(tmp_path: Path, counts: Calibration = GOOD) -> CalibrationStore:
    store = CalibrationStore(tmp_path / "cal.json")
    store.save([Figures("j", "j-1", "rubric", "fp", "set", 1, counts, 0, counts, 100, 100)])
    return store


def records(passes: int, total: int) -> list[SampleRecord]:
    return [sample(i, i < passes) for i in range(total)]


def test_no_grade_no_correction(tmp_path: Path) -> None:
    plain = [SampleRecord(0, "passed", 0.0)]
    assert correct(plain, PLAN, store_with(tmp_path)) is None


def test_without_a_calibration_the_verdict_is_about_the_judged_rate(tmp_path: Path) -> None:
    found = correct(records(12, 20), PLAN, CalibrationStore(tmp_path / "none.json"))
    assert found is not None and found.verdict is None
    assert found.info["about"] == "judged_rate" and found.info["judged_rate"] == 0.6
    assert "no calibration of judge 'j'" in found.info["note"]
    assert "judge-calibrate" in found.info["note"]


def test_a_calibration_gives_the_corrected_verdict_on_the_true_rate(tmp_path: Path) -> None:
    found = correct(records(6, 20), PLAN, store_with(tmp_path))
    expected = corrected_verdict(6, 20, GOOD, 0.7, 0.95, "not_worse")
    assert found is not None and found.verdict == expected.verdict == "failed"
    info = found.info
    assert info["about"] == "true_rate" and info["judged_rate"] == 0.3
    assert info["corrected_rate"] == expected.corrected_rate
    assert info["ci"] == list(expected.interval)
    assert info["calibration"] is not None and info["calibration"]["true_pos"] == 48


def test_error_samples_are_left_out_of_the_rate(tmp_path: Path) -> None:
    rows = [*records(15, 18), SampleRecord(18, "error", 0.0), SampleRecord(19, "error", 0.0)]
    found = correct(rows, PLAN, store_with(tmp_path))
    assert found is not None and found.info["judged_rate"] == 15 / 18


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([sample(0, True), sample(1, True, grade(True), grade(False))], "graded 2 times"),
        ([sample(0, True), sample(1, True, grade(True, rubric="other"))], "more than one rubric"),
        ([sample(0, True), sample(1, True, grade(True, judge="j-2"))], "more than one judge"),
        ([sample(0, True), sample(1, False, grade(True))], "another check decided it"),
        (
            [sample(0, True), SampleRecord(1, "failed", 0.0)],
            "graded 0 times",
        ),
    ],
)
def test_samples_not_decided_by_one_grade_stay_about_the_judged_rate(
    tmp_path: Path, rows: list[SampleRecord], why: str
) -> None:
    found = correct(rows, PLAN, store_with(tmp_path))
    assert found is not None and found.verdict is None
    assert found.info["about"] == "judged_rate" and why in found.info["note"]


def test_a_suite_gate_stays_about_the_judged_rate(tmp_path: Path) -> None:
    suite = Plan(0.7, 20, 0.95, "not_worse", suite=True, judged=True)
    found = correct(records(15, 20), suite, store_with(tmp_path))
    assert found is not None and found.verdict is None and "suite" in found.info["note"]


def test_an_uninformative_judge_makes_the_verdict_an_error(tmp_path: Path) -> None:
    coin = Calibration(true_pos=5, false_neg=5, true_neg=5, false_pos=5)
    found = correct(records(15, 20), PLAN, store_with(tmp_path, coin))
    assert found is not None and found.verdict == "error"
    assert "not informative enough" in found.info["note"]


def test_the_judge_and_rubric_are_part_of_the_samples_fingerprints() -> None:
    first = sample(0, True).to_dict()["fingerprints"]
    assert first == sample(1, False).to_dict()["fingerprints"]
    assert first != sample(0, True, grade(True, rubric="other")).to_dict()["fingerprints"]
    assert first != sample(0, True, grade(True, judge="j-2")).to_dict()["fingerprints"]
