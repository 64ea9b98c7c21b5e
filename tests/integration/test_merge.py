"""CI shards: merged JSON reports equal one run; `compare` gates and renders a merged report."""

from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from processes import cli

from pytest_llmeval.testing import FakeGateway, RecordedRequest

SUITE = """
import pytest

@pytest.mark.parametrize("case", range(4))
@pytest.mark.llmeval(pass_rate=0.5, samples=8, mode="observed")
def test_case(llm, case):
    assert "PASS" in llm.chat(f"case {case}").text
"""
STABLE = ("nodeid", "test", "model", "verdict", "passed", "failed", "errors", "run", "fingerprints")
TOTALS = ("tests", "passed", "failed", "error", "samples", "sample_passes", "input_tokens")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def stable(report: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What must not depend on sharding: rows and sample outcomes, and the totals' counts."""
    rows = [
        {**{k: r[k] for k in STABLE}, "outcomes": [s["outcome"] for s in r["samples"]]}
        for r in report["tests"]
    ]
    totals = {m: {k: t[k] for k in TOTALS} for m, t in report["totals"].items()}
    return rows, totals


def every_third_fails() -> Callable[[RecordedRequest], str]:
    """Answers that depend only on the prompt and how often it was asked, not on test order."""
    counters: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)

    def reply(request: RecordedRequest) -> str:
        return "FAIL" if next(counters[request.prompt]) % 3 == 2 else "PASS"

    return reply


def run(suite: pytest.Pytester, gateway: FakeGateway, report: str, *args: str) -> None:
    gateway.add_model("a", "PASS")
    gateway.add_model("b", every_third_fails())
    suite.runpytest("--llm-models=a,b", "--llm-concurrency=1", f"--llm-report={report}", *args)


def test_merged_shards_equal_one_run(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    suite.makepyfile(test_suite=SUITE)
    run(suite, gateway, "single.json")
    run(suite, gateway, "shard1.json", "-k", "0 or 1")
    run(suite, gateway, "shard2.json", "-k", "2 or 3")
    done = cli(suite.path, "merge", "shard1.json", "shard2.json", "-o", "merged/all.json")
    assert done.returncode == 0, done.stderr
    assert "merged 2 reports, 8 tests -> merged/all.json" in done.stdout
    merged, single = load(suite.path / "merged" / "all.json"), load(suite.path / "single.json")
    assert len(load(suite.path / "shard1.json")["tests"]) == 4
    assert stable(merged) == stable(single)
    assert merged["schema"] == single["schema"] and merged["models"] == single["models"]


def test_overlapping_shards_are_refused(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    suite.makepyfile(test_suite=SUITE)
    run(suite, gateway, "shard.json", "-k", "0")
    done = cli(suite.path, "merge", "shard.json", "shard.json", "-o", "all.json")
    assert done.returncode == 2
    assert "test_suite.py::test_case[a-0] is in more than one shard" in done.stderr
    missing = cli(suite.path, "merge", "nope.json", "-o", "all.json")
    assert missing.returncode == 2 and "nope.json: cannot read the report" in missing.stderr


def test_compare_gates_a_merged_report(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    suite.makepyfile(test_suite=SUITE)
    run(suite, gateway, "base.json")
    base = load(suite.path / "base.json")
    for row in base["tests"]:
        row["passed"], row["failed"] = 8, 0  # a baseline where every sample passed
    (suite.path / "base.json").write_text(json.dumps(base))
    run(suite, gateway, "shard1.json", "-k", "0 or 1")
    run(suite, gateway, "shard2.json", "-k", "2 or 3")
    cli(suite.path, "merge", "shard1.json", "shard2.json", "-o", "all.json")
    done = cli(suite.path, "compare", "all.json", "--baseline", "base.json", "--html", "r.html")
    assert done.returncode == 0, done.stderr  # 8/8 -> 6/8 is noise at this size
    assert done.stdout.startswith("## pytest-llmeval\n\n8 passed, 0 failed, 0 errors, 0 regr")
    assert "baseline base.json: 0 regressions, 0 changed prompts, 0 new, 0 gone" in done.stderr
    assert (suite.path / "r.html").read_text().startswith("<!DOCTYPE html>")
    strict = cli(suite.path, "compare", "all.json", "--baseline", "base.json", "--fail-on=both")
    assert strict.returncode == 0
    for row in base["tests"]:
        row["passed"], row["failed"] = 800, 0
    (suite.path / "base.json").write_text(json.dumps(base))
    gated = cli(suite.path, "compare", "all.json", "--baseline", "base.json", "--md", "s.md")
    assert gated.returncode == 1 and gated.stdout == ""
    found = re.findall(r"REGRESSED test_suite.py::test_case\[\d\] \[b\]", gated.stderr)
    summary = (suite.path / "s.md").read_text()
    assert found and f"**Regressions ({len(found)})**" in summary
    assert re.search(r"- `test_suite.py::test_case\[\d\]` \[b\]: 800/800 \(100%\) → \d/\d", summary)
    lenient = cli(suite.path, "compare", "all.json", "--baseline=base.json", "--fail-on=threshold")
    assert lenient.returncode == 0
    bad = cli(suite.path, "compare", "all.json", "--baseline", "missing.json")
    assert bad.returncode == 2 and "missing.json: cannot read the report" in bad.stderr
