"""Calibration: the labelled set's format, the counts from each item's first run, what the
other runs add, and the file that judged runs read."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError, DatasetError, LLMError
from pytest_llmeval.judging.calibration import (
    CalibrationStore,
    Figures,
    Labelled,
    calibrate,
    load_labelled,
)
from pytest_llmeval.verdict.judged import Calibration


def write(tmp_path: Path, lines: list[object]) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_a_labelled_set_loads_with_optional_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            "// a comment",
            {"rubric": "r", "output": "o", "label": "pass", "id": "a", "question": "q"},
            "",
            {"rubric": "r", "output": "p", "label": "fail", "reference": "ref"},
        ],
    )
    first, second = load_labelled(path)
    assert first == Labelled("a", "r", "o", True, "q", None)
    assert second == Labelled("4", "r", "p", False, None, "ref")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "set.jsonl:1: not JSON"),
        ('["a"]', "expected a JSON object"),
        ({"rubric": "r", "label": "pass"}, "'output' must be a non-empty string"),
        ({"rubric": "r", "output": "o", "label": "yes"}, "'label' must be"),
    ],
)
def test_a_bad_line_names_the_file_and_line(tmp_path: Path, line: object, problem: str) -> None:
    with pytest.raises(DatasetError, match=problem):
        load_labelled(write(tmp_path, [line]))


def test_an_empty_set_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no labelled items"):
        load_labelled(write(tmp_path, ["// nothing"]))


def items(labels: list[bool], rubric: str = "r") -> list[Labelled]:
    return [Labelled(str(i), rubric, f"out {i}", label) for i, label in enumerate(labels)]


def scripted(answers: dict[str, list[bool | None]]):  # type: ignore[no-untyped-def]
    """The judge's answers per output, one per run, in order (None: outside its schema)."""
    runs = {key: iter(values) for key, values in answers.items()}
    lock = threading.Lock()

    def grade(item: Labelled) -> bool:
        with lock:
            said = next(runs[item.output])
        if said is None:
            raise LLMError("outside the schema")
        return said

    return grade


def run(labelled: list[Labelled], answers: dict[str, list[bool | None]], runs: int) -> Figures:
    [figures] = calibrate(
        scripted(answers), labelled, judge="j", judge_model_id="j-1",
        fingerprint=lambda rubric: f"fp:{rubric}", set_name="set.jsonl", runs=runs,
    )  # fmt: skip
    return figures


def test_counts_come_from_each_items_first_run() -> None:
    labelled = items([True, True, False, False])
    answers: dict[str, list[bool | None]] = {
        "out 0": [True, False, False],  # truly pass: judged pass first
        "out 1": [False, True, True],  # truly pass: judged fail first
        "out 2": [False, False, False],
        "out 3": [True, True, True],
    }
    figures = run(labelled, answers, 3)
    assert figures.counts == Calibration(true_pos=1, false_neg=1, true_neg=1, false_pos=1)
    assert figures.pooled == Calibration(true_pos=3, false_neg=3, true_neg=3, false_pos=3)
    assert figures.consistent_items == 2 and figures.items == 4 and figures.runs == 3
    assert figures.agreement == (2, 4)
    assert figures.fingerprint == "fp:r"


def test_answers_outside_the_schema_are_counted_apart() -> None:
    figures = run(items([True, False]), {"out 0": [None, True], "out 1": [False, None]}, 2)
    assert figures.errors == 2
    assert figures.counts == Calibration(0, 0, 1, 0)  # item 0's first run was an error
    assert figures.pooled == Calibration(1, 0, 1, 0)


def test_each_rubric_gets_its_own_figures() -> None:
    labelled = [*items([True]), Labelled("x", "other", "out x", False)]
    found = calibrate(
        scripted({"out 0": [True], "out x": [True]}), labelled, judge="j",
        judge_model_id="j-1", fingerprint=lambda r: r, set_name="s", runs=1,
    )  # fmt: skip
    assert {f.fingerprint: f.counts for f in found} == {
        "r": Calibration(1, 0, 0, 0),
        "other": Calibration(0, 0, 0, 1),
    }


def test_the_printed_figures_have_exact_intervals() -> None:
    labelled = items([True] * 10 + [False] * 10)
    answers = {f"out {i}": [i != 0] for i in range(10)}
    answers.update({f"out {i}": [i == 19] for i in range(10, 20)})
    figures = run(labelled, answers, 1)
    text = "\n".join(figures.lines())
    assert "sensitivity    9/10  =  90.0%  95% CI  55.5% -  99.7%" in text
    assert "specificity    9/10" in text and "agreement     18/20" in text


def test_the_store_keeps_other_entries_and_replaces_the_same_key(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "sub" / "cal.json")
    assert store.find("j-1", "fp:r") is None
    first = run(items([True, False]), {"out 0": [True], "out 1": [False]}, 1)
    other = run(items([True], rubric="s"), {"out 0": [False]}, 1)
    store.save([first, other])
    again = run(items([True, False]), {"out 0": [False], "out 1": [False]}, 1)
    CalibrationStore(store.path).save([again])
    found = store.find("j-1", "fp:r")  # re-read: the file changed on disk
    assert found is not None and found.counts == Calibration(0, 1, 1, 0)
    assert store.find("j-1", "fp:s") == other
    data = json.loads(store.path.read_text())
    assert data["schema"] == "pytest-llmeval/calibration" and len(data["calibrations"]) == 2


def test_a_broken_store_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text('{"schema": "something else"}')
    with pytest.raises(ConfigError, match="calibration file"):
        CalibrationStore(path).find("j", "fp")


def test_calibrate_judges_every_run_of_every_item() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def grade(item: Labelled) -> bool:
        with lock:
            seen.append(item.output)
        return True

    labelled = items([True, False, True])
    calibrate(grade, labelled, judge="j", judge_model_id="j", fingerprint=str, set_name="s",
              runs=4, workers=3)  # fmt: skip
    assert sorted(seen) == sorted(itertools.chain.from_iterable([i.output] * 4 for i in labelled))


def test_a_call_that_failed_counts_as_no_judgement_when_its_error_is_named() -> None:
    def grade(item: Labelled) -> bool:
        if item.output == "out 0":
            raise TimeoutError("the judge did not answer")
        return True

    labelled = items([True, False])
    [figures] = calibrate(grade, labelled, judge="j", judge_model_id="j", fingerprint=str,
                          set_name="s", runs=1, errors=(LLMError, TimeoutError))  # fmt: skip
    assert figures.errors == 1 and figures.counts == Calibration(0, 0, 0, 1)
    with pytest.raises(TimeoutError):
        calibrate(grade, labelled, judge="j", judge_model_id="j", fingerprint=str,
                  set_name="s", runs=1)  # fmt: skip
