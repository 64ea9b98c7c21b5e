"""The `--llm-history` database: each finished run's rates per test x model, kept in SQLite
(standard library only) so that trends and drift can be read across runs."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pytest_llmeval.errors import HistoryError
from pytest_llmeval.report.schema import HistoryPoint, HistorySeries, Report, Row

SCHEMA = "pytest-llmeval/history"
VERSION = 1
BUSY_TIMEOUT_S = 30.0
GIT_TIMEOUT_S = 5.0

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        report_created_at TEXT NOT NULL,
        git_commit TEXT,
        branch TEXT,
        dirty INTEGER,
        source TEXT NOT NULL
    )""",
    """CREATE TABLE results (
        run INTEGER NOT NULL REFERENCES runs (id),
        test TEXT NOT NULL,
        model TEXT NOT NULL,
        model_id TEXT NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        valid INTEGER NOT NULL,
        rate REAL,
        ci_low REAL NOT NULL,
        ci_high REAL NOT NULL,
        confidence REAL NOT NULL,
        cost_usd REAL,
        verdict TEXT NOT NULL,
        samples INTEGER NOT NULL,
        prompt TEXT,
        gated INTEGER NOT NULL,
        PRIMARY KEY (run, test, model)
    )""",
    "CREATE INDEX results_by_series ON results (test, model, run)",
)


@dataclass(frozen=True)
class Commit:
    """The checkout a run was made from; `dirty` is None when unknown."""

    sha: str
    branch: str | None = None
    dirty: bool | None = None


@dataclass(frozen=True)
class RunInfo:
    """One run of the history."""

    id: int
    created_at: str
    commit: str | None
    branch: str | None
    dirty: bool | None
    source: str


@dataclass(frozen=True)
class Track:
    """A test x model's series with what the drift test needs beside it."""

    series: HistorySeries
    prompts: tuple[str | None, ...]  # per point, a hash of its prompt fingerprints
    confidence: float  # the latest point's marker confidence
    gated: bool  # the latest point is a gated suite's case: the suite is its unit


def current_commit(root: Path, env: Mapping[str, str]) -> Commit | None:
    """HEAD of the git checkout at `root` (with its branch and whether files changed), else the
    commit a CI names in its environment, else None. Never raises."""
    head = _git(root, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    if head is not None and len(head.split()) == 2:
        sha, branch = head.split()
        status = _git(root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status.strip())
        return Commit(sha, None if branch == "HEAD" else branch, dirty)
    named = env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA")
    if not named:
        return None
    return Commit(named, env.get("GITHUB_REF_NAME") or env.get("CI_COMMIT_REF_NAME") or None)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def prompt_hash(fingerprints: Sequence[str]) -> str | None:
    """One short hash of a row's prompt fingerprints: it changes when any prompt changes."""
    if not fingerprints:
        return None
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()[:16]


def append(path: Path, report: Report, commit: Commit | None, source: str = "pytest") -> int:
    """Add a finished run's rows as one run, in one transaction; returns the run's id. Creates
    the file; concurrent appends wait for each other (up to `BUSY_TIMEOUT_S`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {(row["test"], row["model"]): row for row in report["tests"]}
    with _connect(path, write=True) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            if not _checked(db, path):
                for statement in _TABLES:
                    db.execute(statement)
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)", [("schema", SCHEMA), ("version", VERSION)]
                )
            run = db.execute(
                "INSERT INTO runs (created_at, report_created_at, git_commit, branch, dirty, "
                "source) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    report["created_at"],
                    None if commit is None else commit.sha,
                    None if commit is None else commit.branch,
                    None if commit is None or commit.dirty is None else int(commit.dirty),
                    source,
                ),
            ).lastrowid
            assert run is not None
            db.executemany(
                f"INSERT INTO results VALUES ({', '.join('?' * 17)})",
                [_values(run, row) for row in rows.values()],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return run


def _values(run: int, row: Row) -> tuple[object, ...]:
    valid = row["passed"] + row["failed"]
    return (
        run,
        row["test"],
        row["model"],
        row["model_id"],
        row["passed"],
        row["failed"],
        row["errors"],
        valid,
        row["rate"],
        row["ci"][0],
        row["ci"][1],
        float(row["plan"]["confidence"]),
        row["metrics"]["cost_usd"],
        row["verdict"],
        row["run"],
        prompt_hash(row["fingerprints"]),
        int(bool(row["plan"].get("suite"))),
    )


def check(path: Path) -> None:
    """Raise HistoryError unless `path` is a history this version can read and append to (or
    an empty database, which the first append fills)."""
    with _connect(path, write=False) as db:
        _checked(db, path)


def runs(path: Path, last: int | None = None) -> list[RunInfo]:
    """The last `last` runs (all by default), oldest first."""
    with _connect(path, write=False) as db:
        if not _checked(db, path):
            return []
        found = db.execute(
            "SELECT id, report_created_at, git_commit, branch, dirty, source FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (-1 if last is None else last,),
        ).fetchall()
    return [
        RunInfo(id, created, sha, branch, None if dirty is None else bool(dirty), source)
        for id, created, sha, branch, dirty, source in reversed(found)
    ]


def tracks(
    path: Path, last: int | None = None, test: str | None = None, model: str | None = None
) -> list[Track]:
    """Every test x model in the last `last` runs (all by default), points oldest first;
    `test` keeps tests whose name contains it, `model` one model."""
    query = (
        "SELECT x.test, x.model, x.run, r.report_created_at, r.git_commit, x.passed, x.valid, "
        "x.rate, x.ci_low, x.ci_high, x.cost_usd, x.verdict, x.prompt, x.confidence, x.gated "
        "FROM results x JOIN runs r ON r.id = x.run "
        "WHERE x.run IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?) "
        "AND (? IS NULL OR instr(x.test, ?) > 0) AND (? IS NULL OR x.model = ?) "
        "ORDER BY x.test, x.model, x.run"
    )
    with _connect(path, write=False) as db:
        if not _checked(db, path):
            return []
        found = db.execute(query, (-1 if last is None else last, test, test, model, model))
        grouped: dict[tuple[str, str], list[tuple[HistoryPoint, str | None, float, bool]]] = {}
        for name, model_name, run, created, sha, passed, valid, rate, lo, hi, cost, *rest in found:
            verdict, prompt, confidence, gated = rest
            point: HistoryPoint = {
                "run": run,
                "created_at": created,
                "commit": sha,
                "passed": passed,
                "valid": valid,
                "rate": rate,
                "ci": [lo, hi],
                "cost_usd": cost,
                "verdict": verdict,
            }
            grouped.setdefault((name, model_name), []).append(
                (point, prompt, confidence, bool(gated))
            )
    return [
        Track(
            series={"test": name, "model": model_name, "points": [p[0] for p in points]},
            prompts=tuple(p[1] for p in points),
            confidence=points[-1][2],
            gated=points[-1][3],
        )
        for (name, model_name), points in grouped.items()
    ]


def series(
    path: Path, last: int | None = None, test: str | None = None, model: str | None = None
) -> list[HistorySeries]:
    """`tracks` as the report's `HistorySeries`."""
    return [track.series for track in tracks(path, last, test, model)]


def series_for(path: Path, report: Report, last: int | None = 50) -> list[HistorySeries]:
    """The series of the report's test x model rows over the last `last` runs, for the HTML
    report; none without a file."""
    if not path.exists():
        return []
    wanted = {(row["test"], row["model"]) for row in report["tests"]}
    return [s for s in series(path, last) if (s["test"], s["model"]) in wanted]


@contextmanager
def _connect(path: Path, *, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection that turns SQLite's errors into HistoryErrors naming the file; a reader
    opens the file read-only and never creates it."""
    if not write and not path.is_file():
        problem = "not a file" if path.exists() else "no such history file"
        raise HistoryError(f"{path}: {problem}")
    target = str(path) if write else path.resolve().as_uri() + "?mode=ro"
    try:
        db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=not write)
    except sqlite3.Error as exc:
        raise HistoryError(f"{path}: cannot open the history ({exc})") from None
    try:
        yield db
    except sqlite3.OperationalError as exc:
        raise HistoryError(f"{path}: cannot use the history ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: not a pytest-llmeval history ({exc})") from None
    finally:
        db.close()


def _checked(db: sqlite3.Connection, path: Path) -> bool:
    """Whether the database holds a history (False: it is empty); HistoryError when it holds
    something else, or a history of another version."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    if not tables:
        return False
    if "meta" not in tables:
        raise HistoryError(f"{path}: not a pytest-llmeval history (an SQLite file of other tables)")
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:
        meta = {}
    if meta.get("schema") != SCHEMA:
        raise HistoryError(f"{path}: not a pytest-llmeval history (schema is not {SCHEMA!r})")
    version = str(meta.get("version"))
    if version != str(VERSION):
        newer = version.isdigit() and int(version) > VERSION
        hint = ": upgrade pytest-llmeval to read it" if newer else ""
        raise HistoryError(
            f"{path}: history version {version}, this plugin reads version {VERSION}{hint}"
        )
    return True
