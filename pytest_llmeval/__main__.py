"""`python -m pytest_llmeval`: `setup-local` builds, installs and checks llama-server and the
bundled local models; `merge` joins CI shards' JSON reports; `compare` gates a report on a
baseline and renders it; `history` prints the pass-rate trend and drift of a `--llm-history`
database; `judge-calibrate` measures the judge's error on a labelled set."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_llmeval.errors import BaselineError, HistoryError
from pytest_llmeval.judging.command import add_parser as add_calibrate
from pytest_llmeval.judging.command import calibrate_command
from pytest_llmeval.report.baseline import (
    compare,
    failing,
    load_report,
    suite_failures,
    summary_lines,
)
from pytest_llmeval.report.build import write_report, write_text
from pytest_llmeval.report.drift import LAST, WINDOW, drifts, history_lines
from pytest_llmeval.report.history import append, check, current_commit, runs, series_for, tracks
from pytest_llmeval.report.html_report import html
from pytest_llmeval.report.merge import merge_reports
from pytest_llmeval.report.render import markdown
from pytest_llmeval.report.schema import HistorySeries, Report
from pytest_llmeval.verdict.policy import FAIL_ON


def merge(paths: Sequence[str], output: str, history: str | None = None) -> int:
    """Merge shard reports; with `history`, append the merged report to it as one run."""
    try:
        merged = merge_reports([load_report(Path(path)) for path in paths])
        if history is not None and Path(history).exists():
            check(Path(history))
    except (BaselineError, ValueError) as exc:
        print(f"llmeval merge: {exc}", file=sys.stderr)
        return 2
    write_report(merged, Path(output))
    print(f"llmeval: merged {len(paths)} reports, {len(merged['tests'])} tests -> {output}")
    if history is not None:
        commit = current_commit(Path.cwd(), os.environ)
        try:
            run = append(Path(history), merged, commit, f"merge of {len(paths)} reports")
        except HistoryError as exc:
            print(f"llmeval merge: {exc}", file=sys.stderr)
            return 2
        print(f"llmeval history: run {run} appended to {history}")
    return 0


def compare_reports(args: argparse.Namespace) -> int:
    """Compare a (merged) report with a baseline, write Markdown/HTML; 1 when the gate fails."""
    try:
        report = load_report(Path(args.report))
        if args.baseline:
            report["baseline"] = compare(report, load_report(Path(args.baseline)), args.baseline)
        trend: list[HistorySeries] = []
        if args.history:
            check(Path(args.history))
            trend = series_for(Path(args.history), report)
    except (BaselineError, HistoryError) as exc:
        print(f"llmeval compare: {exc}", file=sys.stderr)
        return 2
    text = markdown(report)
    if args.md:
        write_text(Path(args.md), text)
    else:
        print(text, end="")
    if args.html:
        write_html(Path(args.html), report, trend)
    if args.output:
        write_report(report, Path(args.output))
    comparison = report.get("baseline")
    if comparison is not None:
        for line in summary_lines(comparison):
            print(line, file=sys.stderr)
    for line in suite_failures(report, args.fail_on):
        if line.startswith("FAILED"):  # a regressed suite is among the baseline's lines
            print(line, file=sys.stderr)
    return 1 if failing(comparison, report["tests"], args.fail_on, report["suites"]) else 0


def write_html(path: Path, report: Report, history: Sequence[HistorySeries]) -> None:
    """The HTML report; `history` holds its rows' series from `--history`."""
    write_text(path, html(report, history))


def history_command(args: argparse.Namespace) -> int:
    """Print the trend and drift of a history; 1 under `--fail-on-drift` when a series is
    significantly worse in the latest run."""
    path = Path(args.path)
    read = max(args.last, args.window + 1)
    try:
        found = runs(path, read)
        kept = tracks(path, read, args.test, args.model)
    except HistoryError as exc:
        print(f"llmeval history: {exc}", file=sys.stderr)
        return 2
    if not found:
        print(f"llmeval history: {path} has no runs yet")
        return 0
    tested = drifts(kept, [run.id for run in found], args.window, args.alpha)
    shown = found[-args.last :]
    visible = [d for d in tested if d.latest["run"] >= shown[0].id]
    for line in history_lines(shown, visible, args.window):
        print(line)
    worse = any(d.direction == "worse" for d in tested)
    return 1 if args.fail_on_drift and worse else 0


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def add_history(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = commands.add_parser(
        "history", help="print the pass-rate trend of a --llm-history database and flag drift"
    )
    history.add_argument("path", metavar="PATH", help="the --llm-history database")
    history.add_argument(
        "--last", type=_at_least_one, default=LAST, metavar="N", help=f"runs shown (default {LAST})"
    )
    history.add_argument("--test", metavar="SUBSTR", help="only tests whose name contains this")
    history.add_argument("--model", metavar="NAME", help="only this model")
    history.add_argument(
        "--window",
        type=_at_least_one,
        default=WINDOW,
        metavar="W",
        help=f"earlier runs pooled against the latest (default {WINDOW})",
    )
    history.add_argument(
        "--alpha",
        type=_level,
        metavar="A",
        help="level of each drift test (default: 1 - the marker's confidence)",
    )
    history.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit with status 1 when a test x model got significantly worse in the latest run",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_llmeval")
    commands = parser.add_subparsers(dest="command", required=True)
    local = commands.add_parser(
        "setup-local", help="build and check llama-server; install the bundled local models"
    )
    local.add_argument(
        "--native",
        action="store_true",
        help="build for this machine's CPU only (faster here, may crash on another CPU)",
    )
    local.add_argument(
        "--rebuild", action="store_true", help="build again even if a cached build exists"
    )
    merging = commands.add_parser("merge", help="merge JSON reports of CI shards into one")
    merging.add_argument("reports", nargs="+", metavar="REPORT")
    merging.add_argument("-o", "--output", required=True, metavar="PATH")
    merging.add_argument(
        "--history", metavar="PATH", help="append the merged report to this history as one run"
    )
    comparing = commands.add_parser(
        "compare", help="compare a JSON report with a baseline; print or write Markdown/HTML"
    )
    comparing.add_argument("report", metavar="REPORT")
    comparing.add_argument("--baseline", metavar="PATH", help="saved report to compare with")
    comparing.add_argument("--md", metavar="PATH", help="write Markdown here (default: stdout)")
    comparing.add_argument("--html", metavar="PATH", help="write the HTML report here")
    comparing.add_argument("-o", "--output", metavar="PATH", help="write the compared JSON here")
    comparing.add_argument(
        "--history", metavar="PATH", help="a --llm-history database: its trends for the HTML"
    )
    comparing.add_argument(
        "--fail-on", choices=FAIL_ON, default="both", help="what makes the exit code 1"
    )
    add_history(commands)
    add_calibrate(commands)
    args = parser.parse_args(argv)
    if args.command == "judge-calibrate":
        return calibrate_command(args)
    if args.command == "setup-local":
        from pytest_llmeval.local.setup import setup_local

        return setup_local(native=args.native, rebuild=args.rebuild)
    if args.command == "merge":
        return merge(args.reports, args.output, args.history)
    if args.command == "history":
        return history_command(args)
    return compare_reports(args)


if __name__ == "__main__":
    raise SystemExit(main())
