"""What the models said, in short, for the Markdown comment: one example answer per failing or
regressed row, and beside the baseline's answer the prompt diff where the baseline kept one."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pytest_llmeval.report.diff import example, example_answer
from pytest_llmeval.report.schema import ExampleAnswer, Report, Row, RowComparison

ANSWER_CHARS = 300
MESSAGE_CHARS = 200
DIFF_LINES = 12
MAX_EXAMPLES = 30  # blocks in one comment: enough to see the pattern, short enough to read
HEADING = "### What the models said"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more]"


def _fenced(text: str, language: str = "") -> list[str]:
    """A code block that no backticks in `text` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, text, fence]


def _answer_lines(title: str, answer: ExampleAnswer) -> list[str]:
    lines = [f"{title} (sample {answer['index']}, {answer['outcome']}):", ""]
    lines += _fenced(_short(answer["answer"], ANSWER_CHARS) or "(empty answer)")
    if answer["message"] and answer["outcome"] != "passed":
        lines += ["", f"> {_short(answer['message'], MESSAGE_CHARS).splitlines()[0]}"]
    return lines


def _block(summary: str, body: list[str]) -> str:
    while body and not body[-1]:
        body = body[:-1]
    return "\n".join(["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"])


def _label(test: str, model: str) -> str:
    return f"<code>{html.escape(test, quote=False)}</code> [{html.escape(model, quote=False)}]"


def example_blocks(report: Report, rows: Sequence[Row]) -> list[str]:
    """One collapsed block per regressed or changed row with a diff, then per failed row that
    kept a failing answer; each short, so that a PR comment holds many."""
    blocks: list[str] = []
    shown: set[tuple[str, str]] = set()
    baseline = report.get("baseline")
    for compared in baseline["rows"] if baseline else []:
        diff = compared.get("diff")
        if diff is None:
            continue
        shown.add((compared["test"], compared["model"]))
        body = _diff_lines(diff["prompt_diff"]) if diff["prompt_diff"] else []
        for title, answer in (("Baseline", diff["baseline"]), ("Now", diff["current"])):
            if answer is not None:
                body += [*_answer_lines(title, answer), ""]
        blocks.append(
            _block(f"{_label(compared['test'], compared['model'])}: {_why(compared)}", body)
        )
    for row in rows:
        if row["verdict"] != "failed" or (row["test"], row["model"]) in shown:
            continue
        found = example(row["samples"], "failed")
        if found is None or found[0]["outcome"] == "passed":
            continue
        label = _label(row["test"], row["model"])
        failing = _answer_lines("A failing answer", example_answer(found))
        blocks.append(_block(f"{label}: failed", failing))
    return blocks


def _why(compared: RowComparison) -> str:
    reasons = ["regressed"] if compared["regressed"] else []
    return ", ".join(reasons + (["prompt changed"] if compared["prompt_changed"] else []))


def _diff_lines(lines: list[str]) -> list[str]:
    kept = [_short(line, ANSWER_CHARS) for line in lines[:DIFF_LINES]]
    if len(lines) > DIFF_LINES:
        kept.append(f"... {len(lines) - DIFF_LINES} more lines of diff")
    return ["Prompt diff:", "", *_fenced("\n".join(kept), "diff"), ""]
