"""Judge calibration: run the judge on human-labelled outputs, measure its sensitivity and
specificity with exact intervals, and keep the figures where judged runs find them.

The stored counts are those of each item's first run: one judgement per item keeps the trials
independent, so the Clopper-Pearson intervals are exact. Later runs measure how often the
judge contradicts itself and give pooled point estimates; they are reported, not used.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, DatasetError, LLMError
from pytest_llmeval.verdict.judged import Calibration
from pytest_llmeval.verdict.stats import clopper_pearson

SCHEMA = "pytest-llmeval/calibration"
VERSION = 1
CONFIDENCE = 0.95
_LABELS = {"pass": True, "fail": False, True: True, False: False}


@dataclass(frozen=True)
class Labelled:
    """One output a human graded against a rubric."""

    id: str
    rubric: str
    output: str
    label: bool
    question: str | None = None
    reference: str | None = None


def load_labelled(path: Path) -> list[Labelled]:
    """A JSON Lines file: `rubric`, `output`, `label` ("pass"/"fail"), and optionally `id`,
    `question`, `reference`. Blank lines and lines starting with `//` are skipped."""
    items: list[Labelled] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(path, None, f"cannot read: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, number, f"not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise DatasetError(path, number, "expected a JSON object")
        for key in ("rubric", "output"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DatasetError(path, number, f"{key!r} must be a non-empty string")
        if row.get("label") not in _LABELS:
            raise DatasetError(path, number, '\'label\' must be "pass" or "fail"')
        for key in ("question", "reference"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise DatasetError(path, number, f"{key!r} must be a string")
        items.append(
            Labelled(
                str(row.get("id", number)),
                row["rubric"],
                row["output"],
                _LABELS[row["label"]],
                row.get("question"),
                row.get("reference"),
            )
        )
    if not items:
        raise DatasetError(path, None, "no labelled items")
    return items


@dataclass(frozen=True)
class Figures:
    """A judge's measured error on one rubric: first-run counts, and what the runs add."""

    judge: str
    judge_model_id: str
    rubric: str
    fingerprint: str
    set: str
    runs: int
    counts: Calibration
    errors: int  # no judgement: an answer outside the schema or a failed call (not counted)
    pooled: Calibration  # every run's judgements
    consistent_items: int  # items whose runs all agreed
    items: int

    @property
    def agreement(self) -> tuple[int, int]:
        c = self.counts
        return c.true_pos + c.true_neg, c.positives + c.negatives

    def to_dict(self) -> dict[str, Any]:
        c, p = self.counts, self.pooled
        return {
            "judge": self.judge,
            "judge_model_id": self.judge_model_id,
            "fingerprint": self.fingerprint,
            "rubric": self.rubric,
            "set": self.set,
            "items": self.items,
            "runs": self.runs,
            "true_pos": c.true_pos,
            "false_neg": c.false_neg,
            "true_neg": c.true_neg,
            "false_pos": c.false_pos,
            "errors": self.errors,
            "pooled": [p.true_pos, p.false_neg, p.true_neg, p.false_pos],
            "consistent_items": self.consistent_items,
        }

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Figures:
        counts = Calibration(
            entry["true_pos"], entry["false_neg"], entry["true_neg"], entry["false_pos"]
        )
        return cls(
            entry["judge"],
            entry["judge_model_id"],
            entry["rubric"],
            entry["fingerprint"],
            entry["set"],
            entry["runs"],
            counts,
            entry["errors"],
            Calibration(*entry["pooled"]),
            entry["consistent_items"],
            entry["items"],
        )

    def lines(self) -> list[str]:
        """The figures as the CLI prints them, with exact 95% intervals."""
        c = self.counts
        agree, total = self.agreement
        rows = [
            ("sensitivity", c.true_pos, c.positives, "judged pass | truly pass"),
            ("specificity", c.true_neg, c.negatives, "judged fail | truly fail"),
            ("agreement", agree, total, "judge = human"),
        ]
        out = [
            f"judge {self.judge} ({self.judge_model_id}), rubric {self.fingerprint}: "
            f"{self.rubric.strip().splitlines()[0][:70]}",
            f"  {self.items} items, {self.runs} run(s) each; counts from the first run",
        ]
        for name, k, n, what in rows:
            if n:
                lo, hi = clopper_pearson(k, n, CONFIDENCE)
                out.append(
                    f"  {name:<12} {k:>3}/{n:<3} = {k / n:6.1%}  "
                    f"95% CI {lo:6.1%} - {hi:6.1%}   ({what})"
                )
            else:
                out.append(f"  {name:<12}   no items ({what})")
        p = self.pooled
        if self.runs > 1:
            se = p.sensitivity
            sp = p.specificity
            out.append(
                f"  all runs     sensitivity {_pct(se)}, specificity {_pct(sp)}; "
                f"{self.consistent_items}/{self.items} items judged the same in every run"
            )
        if self.errors:
            out.append(f"  {self.errors} judge errors (answers outside the schema or failed calls)")
        return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


Grade = Callable[[Labelled], bool]


def calibrate(
    grade: Grade,
    items: Sequence[Labelled],
    *,
    judge: str,
    judge_model_id: str,
    fingerprint: Callable[[str], str],
    set_name: str,
    runs: int = 3,
    workers: int = 4,
    errors: tuple[type[BaseException], ...] = (LLMError,),
) -> list[Figures]:
    """Judge every item `runs` times (an item's runs one after another, items in parallel) and
    return the figures per rubric. `grade` returns the judge's pass; what it raises of `errors`
    (an answer outside the schema, a call that failed after its retries) counts as no
    judgement."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    results: dict[int, list[bool | None]] = {}
    lock = threading.Lock()

    def judge_item(index: int) -> None:
        said: list[bool | None] = []
        for _ in range(runs):
            try:
                said.append(grade(items[index]))
            except errors:
                said.append(None)
        with lock:
            results[index] = said

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(judge_item, range(len(items))))
    by_rubric: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_rubric.setdefault(item.rubric.strip(), []).append(index)
    return [
        _figures(items, results, indices, judge, judge_model_id, fingerprint(rubric), set_name)
        for rubric, indices in by_rubric.items()
    ]


def _figures(
    items: Sequence[Labelled],
    results: Mapping[int, list[bool | None]],
    indices: Iterable[int],
    judge: str,
    judge_model_id: str,
    fingerprint: str,
    set_name: str,
) -> Figures:
    first = [0, 0, 0, 0]
    pooled = [0, 0, 0, 0]
    errors = consistent = count = runs = 0
    rubric = ""
    for index in indices:
        item, said = items[index], results[index]
        rubric, runs, count = item.rubric, len(said), count + 1
        errors += sum(s is None for s in said)
        valid = [s for s in said if s is not None]
        consistent += len(set(valid)) <= 1
        for position, verdict in enumerate(said):
            if verdict is None:
                continue
            cell = _cell(item.label, verdict)
            pooled[cell] += 1
            if position == 0:
                first[cell] += 1
    return Figures(
        judge, judge_model_id, rubric, fingerprint, set_name, runs,
        Calibration(*first), errors, Calibration(*pooled), consistent, count,
    )  # fmt: skip


def _cell(truth: bool, judged: bool) -> int:
    """Index into (true_pos, false_neg, true_neg, false_pos)."""
    if truth:
        return 0 if judged else 1
    return 3 if judged else 2


class CalibrationStore:
    """The calibration file: one entry per judge model and rubric fingerprint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: tuple[float, dict[tuple[str, str], Figures]] | None = None

    def entries(self) -> dict[tuple[str, str], Figures]:
        """Read again whenever the file changed (a calibration earlier in the same run)."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._loaded is None or self._loaded[0] != mtime:
            self._loaded = (mtime, self._read())
        return self._loaded[1]

    def find(self, judge_model_id: str, fingerprint: str) -> Figures | None:
        return self.entries().get((judge_model_id, fingerprint))

    def _read(self) -> dict[tuple[str, str], Figures]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA or data.get("version") != VERSION:
                raise ValueError(f"not a {SCHEMA} version {VERSION} file")
            figures = [Figures.from_dict(entry) for entry in data["calibrations"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"calibration file {self.path}: {exc}") from None
        return {(f.judge_model_id, f.fingerprint): f for f in figures}

    def save(self, figures: Iterable[Figures]) -> None:
        """Add or replace entries, atomically, keeping the others."""
        entries = {key: f.to_dict() for key, f in self.entries().items()}
        for f in figures:
            entries[(f.judge_model_id, f.fingerprint)] = f.to_dict()
        document = {
            "schema": SCHEMA,
            "version": VERSION,
            "calibrations": [entries[key] for key in sorted(entries)],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(name, self.path)
        self._loaded = None
