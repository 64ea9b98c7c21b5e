"""Code from model output (markdown fences, bare code, one named function) and code metrics."""

from __future__ import annotations

import ast
import re
import statistics
from collections import Counter
from collections.abc import Sequence

from pytest_llmeval.report.schema import Sample, SandboxSummary

FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
OPEN_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*)\Z", re.M | re.S)
PYTHON_TAGS = {"", "py", "python", "python3", "py3"}


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a model's answer.

    Fenced blocks win (Python-tagged ones first; an unclosed last fence counts); without fences
    the text itself is the code. With `entry_point`, the block that defines it is chosen and,
    when the answer mixes prose and code, the imports and that function are kept.
    """
    blocks = _fenced(text)
    if not entry_point:
        return (blocks or [text])[0].strip("\n")
    for block in blocks:
        if _defines(block, entry_point):
            return _trim(block)
    if blocks:
        return blocks[0].strip("\n")
    if _parses(text):
        return _trim(text)
    return _function_from_prose(text, entry_point) or text.strip("\n")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _fenced(text: str) -> list[str]:
    found = [(m.group(2).lower(), m.group(3)) for m in FENCE.finditer(text)]
    rest = text[max((m.end() for m in FENCE.finditer(text)), default=0) :]
    if unclosed := OPEN_FENCE.search(rest):
        found.append((unclosed.group(2).lower(), unclosed.group(3)))
    python = [body for tag, body in found if tag in PYTHON_TAGS]
    return python or [body for _, body in found]


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def _trim(code: str) -> str:
    """Drop example calls and test scaffolding after the code when it parses."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code.strip("\n")
    keep = [
        node
        for node in tree.body
        if not (isinstance(node, ast.If) and _is_main_guard(node))
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
    ]
    lines = code.splitlines()
    parts = ["\n".join(lines[_first_line(n) - 1 : n.end_lineno]) for n in keep]
    return "\n".join(parts)


def _first_line(node: ast.stmt) -> int:
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _function_from_prose(text: str, entry_point: str) -> str | None:
    """Imports and the indented body of `def entry_point` out of unfenced prose."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _defines(line, entry_point)), None)
    if start is None:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    imports = [line for line in lines[:start] if re.match(r"\s*(import|from)\s+\w", line)]
    return "\n".join([*imports, *lines[start:end]]).rstrip()


def sandbox_summary(samples: Sequence[Sample]) -> SandboxSummary | None:
    """What the samples' generated code came to, judged by each sample's last sandbox run:
    runs, syntax-error rate, mean solution lines, statuses, unisolated runs and the share of
    hidden test cases passed (the seed's "7/10"); None if no sample used the sandbox."""
    runs = [s["sandbox"][-1] for s in samples if s.get("sandbox")]
    if not runs:
        return None
    lines = [r["lines"] for r in runs if r.get("lines") is not None]
    counted = [r for r in runs if r.get("cases")]
    return {
        "runs": len(runs),
        "syntax_error_rate": sum(r["status"] == "syntax_error" for r in runs) / len(runs),
        "mean_lines": statistics.fmean(lines) if lines else None,
        "statuses": dict(sorted(Counter(r["status"] for r in runs).items())),
        "unsafe_runs": sum(r.get("isolation") == "unsafe" for r in runs),
        "hidden_cases": (
            sum(r["cases_passed"] for r in counted) / sum(r["cases"] for r in counted)
            if counted
            else None
        ),
    }
