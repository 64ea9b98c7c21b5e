"""The history database: runs appended whole, series read back oldest first, concurrent
appends, files that are not a history, and the commit a run is tied to."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import HistoryError
from pytest_llmeval.report.history import (
    Commit,
    append,
    check,
    current_commit,
    prompt_hash,
    runs,
    series,
    series_for,
    tracks,
)


def row(test: str, passed: int, failed: int, *, model: str = "m", prompt: str = "p") -> Any:
    valid = passed + failed
    return {
        "test": test,
        "model": model,
        "model_id": f"{model}-id",
        "passed": passed,
        "failed": failed,
        "errors": 1,
        "rate": passed / valid if valid else None,
        "ci": [0.1, 0.9],
        "plan": {"confidence": 0.9},
        "metrics": {"cost_usd": 0.25},
        "verdict": "passed",
        "run": valid + 1,
        "fingerprints": [prompt],
    }


def report(*rows: Any, created_at: str = "2026-05-01T10:00:00+00:00") -> Any:
    return {"created_at": created_at, "tests": list(rows)}


def test_runs_are_appended_and_read_back_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "history.sqlite"
    first = append(path, report(row("t::a", 8, 2), row("t::b", 5, 5)), Commit("abc123", "main"))
    second = append(
        path,
        report(row("t::a", 2, 8), created_at="2026-05-02T10:00:00+00:00"),
        Commit("def456", None, dirty=True),
        source="merge of 2 reports",
    )
    assert second > first
    found = series(path)
    assert [(s["test"], s["model"], len(s["points"])) for s in found] == [
        ("t::a", "m", 2),
        ("t::b", "m", 1),
    ]
    assert found[0]["points"] == [
        {
            "run": first,
            "created_at": "2026-05-01T10:00:00+00:00",
            "commit": "abc123",
            "passed": 8,
            "valid": 10,
            "rate": 0.8,
            "ci": [0.1, 0.9],
            "cost_usd": 0.25,
            "verdict": "passed",
        },
        {
            "run": second,
            "created_at": "2026-05-02T10:00:00+00:00",
            "commit": "def456",
            "passed": 2,
            "valid": 10,
            "rate": 0.2,
            "ci": [0.1, 0.9],
            "cost_usd": 0.25,
            "verdict": "passed",
        },
    ]
    assert [(r.id, r.commit, r.branch, r.dirty, r.source) for r in runs(path)] == [
        (first, "abc123", "main", None, "pytest"),
        (second, "def456", None, True, "merge of 2 reports"),
    ]
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT model_id, errors, samples, prompt FROM results").fetchone()
    assert stored == ("m-id", 1, 11, prompt_hash(["p"]))


def test_last_runs_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    for passed in (10, 9, 8):
        append(path, report(row("t::a", passed, 0), row("t::b", 1, 0, model="n")), None)
    assert [p["passed"] for p in series(path, last=2)[0]["points"]] == [9, 8]
    assert [s["test"] for s in series(path, test="b")] == ["t::b"]
    assert series(path, model="n")[0]["model"] == "n"
    assert series(path, test="a", model="n") == []
    assert [r.id for r in runs(path, last=1)] == [3]
    track = tracks(path, test="a")[0]
    assert track.confidence == 0.9 and not track.gated
    assert track.prompts == (prompt_hash(["p"]),) * 3
    assert prompt_hash([]) is None and prompt_hash(["b", "a"]) == prompt_hash(["a", "b"])


def test_series_for_a_report_keeps_its_rows_and_needs_no_file(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    assert series_for(path, report(row("t::a", 1, 0))) == []
    assert not path.exists()
    append(path, report(row("t::a", 1, 0), row("t::b", 1, 0)), None)
    found = series_for(path, report(row("t::b", 1, 0), row("t::new", 1, 0)))
    assert [s["test"] for s in found] == ["t::b"]


APPENDER = """
import json, sys, time
from pathlib import Path
from pytest_llmeval.report.history import append

path, doc, go, label = Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
while not go.exists():
    time.sleep(0.001)
for _ in range(25):
    append(path, doc, None, label)
"""


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path, go = tmp_path / "h.sqlite", tmp_path / "go"
    doc = json.dumps(report(*(row(f"t::{i}", i, 1) for i in range(20))))
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), doc, str(go), label])
        for label in ("one", "two")
    ]
    go.touch()
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0]
    found = runs(path)
    assert len(found) == 50 and len({r.id for r in found}) == 50
    assert sorted(r.source for r in found) == ["one"] * 25 + ["two"] * 25
    assert all(len(s["points"]) == 50 for s in series(path))


def test_a_failed_append_leaves_no_partial_run(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    append(path, report(row("t::a", 1, 0)), None)
    broken = row("t::b", 1, 0)
    del broken["metrics"]
    with pytest.raises(KeyError):
        append(path, report(row("t::a", 1, 0), broken), None)
    assert len(runs(path)) == 1 and len(series(path)[0]["points"]) == 1


def other_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")


def other_meta(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema', 'someone-else')")


def newer_version(path: Path) -> None:
    append(path, report(row("t::a", 1, 0)), None)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'version'")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: path.write_text("a report, not a database\n" * 10), "not a pytest-llmeval"),
        (other_database, "not a pytest-llmeval history \\(an SQLite file of other tables\\)"),
        (other_meta, "not a pytest-llmeval history \\(schema is not"),
        (newer_version, "history version 2, this plugin reads version 1: upgrade"),
    ],
)
def test_files_that_are_not_a_readable_history_are_named(
    tmp_path: Path, make: Any, problem: str
) -> None:
    path = tmp_path / "h.sqlite"
    make(path)
    before = path.read_bytes()
    for action in (check, runs, series, lambda p: append(p, report(row("t::a", 1, 0)), None)):
        with pytest.raises(HistoryError, match=problem) as info:
            action(path)
        assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_a_missing_file_is_an_error_to_read_and_created_by_append(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with pytest.raises(HistoryError, match=r"h\.sqlite: no such history file"):
        series(path)
    assert not path.exists()
    (tmp_path / "folder").mkdir()
    with pytest.raises(HistoryError, match=r"folder: not a file"):
        check(tmp_path / "folder")
    path.touch()  # an empty file is an empty database: nothing to read, ready to append
    check(path)
    assert runs(path) == [] and series(path) == []
    append(path, report(row("t::a", 1, 0)), None)
    assert len(runs(path)) == 1


GIT = shutil.which("git")


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_the_commit_is_heads_with_its_branch_and_local_changes(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "work")
    (tmp_path / "f.txt").write_text("one")
    git(tmp_path, "add", "f.txt")
    git(tmp_path, "commit", "-qm", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    ci = {"GITHUB_SHA": "from-ci"}
    assert current_commit(tmp_path, ci) == Commit(head, "work", dirty=False)
    (tmp_path / "f.txt").write_text("two")
    (tmp_path / "sub").mkdir()
    assert current_commit(tmp_path / "sub", ci) == Commit(head, "work", dirty=True)
    git(tmp_path, "checkout", "-q", "--detach")
    assert current_commit(tmp_path, {}) == Commit(head, None, dirty=True)


def test_without_a_repository_the_ci_environment_names_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github = {"GITHUB_SHA": "abc", "GITHUB_REF_NAME": "main"}
    assert current_commit(tmp_path, github) == Commit("abc", "main")
    assert current_commit(tmp_path, {"CI_COMMIT_SHA": "def"}) == Commit("def")
    assert current_commit(tmp_path, {}) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert current_commit(tmp_path, github) == Commit("abc", "main")
