"""Many cases with few samples (the shape of a benchmark suite) against the bare `openai` SDK.

Side by side in one run, against one fake gateway process at 100 ms latency (model `m` replies
"PASS", model `mc` replies "The answer is B."), 64 requests at a time everywhere:

1. 200 cases: a bare SDK script sends 200 chat completions (`AsyncOpenAI(max_retries=0)`, an
   `asyncio.Semaphore(64)`); pytest sends the same 200 requests as ONE parametrized test of 200
   cases, one sample each (`samples=1, mode="observed"`, `--llm-concurrency=64`), serially and
   with `-n 2`. Whole processes, spawn to exit, best of 3; the ratio is to the bare script
   (goal: at most 2x).
2. MMLU-shaped, 2,000 cases: 2,000 four-way questions built here (20 subjects x 100, answer
   always B), sent by a bare script 64 at a time, and by pytest as ONE parametrized test
   mirroring `examples/test_mmlu.py` (`params(...)` with a subject mark each, `api="chat",
   samples=1, suite=True, pass_rate=0.9`, `check_choice` on the reply), serially and with
   `-n 2`. Whole processes, best of 3; the ratio is to this bare script (goal: at most 2x).
3. Warm interpreter, cache off: ONE child process imports openai, pytest and the plugin, then
   alternates the request phase of the bare 200-request script (`asyncio.run(main(url))`, a new
   client each time) and `pytest.main([...])` on the 200-case suite of (1) (`--llm-cache=off`,
   `-p no:cacheprovider`), one warm-up each and then 5 timed rounds; the ratio is of the best
   pytest.main to the best request phase (goal: at most 1.5x). Each pytest.main builds a new
   config, plugin manager and session and collects again; modules already imported stay
   imported, the test module included (pytest finds it in `sys.modules`).
4. HumanEval: `examples/test_humaneval.py`, 164 tasks x 5 samples on the demo model
   `demo-careful` (served by the examples' in-process fake gateway, code run in the sandbox),
   serially and with `-n 2`, whole processes, one run each.

Every pytest run must pass every case (checked in its JSON report). The load average is
printed before and after: other processes on the machine inflate the figures.
Run: python benchmarks/cases.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from throughput import CONCURRENCY, Gateway, Run, best_of, load, pytest_command, timed, walls

CASES = 200
QUESTIONS = 2000
LATENCY = 0.1
ROUNDS = 5
WHOLE_GOAL = 2.0
WARM_GOAL = 1.5
ROOT = Path(__file__).resolve().parents[1]
CHOICE_MODEL = "mc"
CHOICE_REPLY = "The answer is B."

# The bare script's request phase, `main(base_url)`; the last line runs it.
BARE_MAIN = f"""
import asyncio
import sys

import openai


async def main(base_url):
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    limit = asyncio.Semaphore({CONCURRENCY})

    async def one(i):
        async with limit:
            reply = await client.chat.completions.create(
                model="m", messages=[{{"role": "user", "content": f"Say PASS {{i}}"}}]
            )
        assert "PASS" in reply.choices[0].message.content

    await asyncio.gather(*(one(i) for i in range({CASES})))
    await client.close()
"""
RUN_MAIN = "\n\nasyncio.run(main(sys.argv[1]))\n"
BARE = BARE_MAIN + RUN_MAIN
SUITE = f"""
import pytest


@pytest.mark.parametrize("i", range({CASES}))
@pytest.mark.llmeval(pass_rate=1.0, samples=1, mode="observed")
def test_q(llm, i):
    assert "PASS" in llm.chat(f"Say PASS {{i}}").text
"""

# The MMLU-shaped questions, shared by the bare script and the test module: (id, subject,
# question, choices, answer) tuples in the layout `examples/test_mmlu.py` formats.
SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_physics", "computer_security",
    "econometrics", "formal_logic", "global_facts", "high_school_geography", "machine_learning",
    "marketing", "nutrition", "philosophy", "prehistory", "virology", "world_religions",
)  # fmt: skip
MMLU_DATA = f"""
SUBJECTS = {SUBJECTS!r}
PROMPT = (
    "{{question}}\\n\\nA. {{0}}\\nB. {{1}}\\nC. {{2}}\\nD. {{3}}\\n\\n"
    "Answer with the letter of the correct option."
)
QUESTIONS = [
    (
        f"{{subject}}-{{i:04d}}",
        subject,
        f"In {{subject.replace('_', ' ')}}, question {{i}}: which of the following statements "
        f"about the quantity q{{i}} holds under the assumptions given in the course?",
        tuple(f"q{{i}} is at most {{i * 7 + k}} in every case considered" for k in range(4)),
        "B",
    )
    for i in range({QUESTIONS})
    for subject in [SUBJECTS[i % len(SUBJECTS)]]
]
"""
BARE_MMLU = f"""
import asyncio
import sys

import openai
{MMLU_DATA}

async def main(base_url):
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    limit = asyncio.Semaphore({CONCURRENCY})

    async def one(question, choices, answer):
        content = PROMPT.format(*choices, question=question)
        async with limit:
            reply = await client.chat.completions.create(
                model="{CHOICE_MODEL}", messages=[{{"role": "user", "content": content}}],
                temperature=0,
            )
        assert reply.choices[0].message.content.rstrip(".").endswith(answer)

    await asyncio.gather(*(one(q, c, a) for _id, _s, q, c, a in QUESTIONS))
    await client.close()


asyncio.run(main(sys.argv[1]))
"""
MMLU_SUITE = f"""
import pytest

from pytest_llmeval import check_choice
from pytest_llmeval.datasets import MmluQuestion
from pytest_llmeval.params import params
{MMLU_DATA}

@pytest.mark.llmeval(api="chat", pass_rate=0.9, samples=1, suite=True)
@pytest.mark.parametrize(
    "q", params(MmluQuestion(i, q, c, a, s) for i, s, q, c, a in QUESTIONS)
)
def test_mmlu(llm, q):
    answer = llm.chat(PROMPT.format(*q.choices, question=q.question), temperature=0)
    check_choice(answer, q.answer)
"""

# One interpreter: the bare request phase and pytest.main alternately; writes the times as JSON.
WARM = (
    BARE_MAIN
    + f"""
import json
import time
from pathlib import Path

import pytest

import pytest_llmeval.plugin


def bare(url):
    start = time.perf_counter()
    asyncio.run(main(url))
    return time.perf_counter() - start


def plugin(url):
    report = Path("report.json")
    report.unlink(missing_ok=True)
    args = [
        "-q", "-p", "no:cacheprovider", "--llm-models=m", f"--llm-base-url={{url}}",
        "--llm-concurrency={CONCURRENCY}", "--llm-cache=off", "--llm-report=report.json",
        "test_cases.py",
    ]
    start = time.perf_counter()
    code = pytest.main(args)
    wall = time.perf_counter() - start
    rows = json.loads(report.read_text())["tests"]
    assert code == 0 and len(rows) == {CASES} and all(r["passed"] == 1 for r in rows), code
    return wall


url, out = sys.argv[1], sys.argv[2]
bare(url)
plugin(url)
times = {{"bare": [], "pytest": []}}
for _ in range({ROUNDS}):
    times["bare"].append(bare(url))
    times["pytest"].append(plugin(url))
Path(out).write_text(json.dumps(times))
"""
)


def suite_run(folder: Path, gateway: Gateway, test: str, cases: int, *args: str) -> Run:
    """One pytest process over a suite of one-sample cases; every case must have passed."""
    report = folder / "report.json"
    report.unlink(missing_ok=True)
    model = CHOICE_MODEL if test == "test_mmlu.py" else "m"
    run = timed(pytest_command(gateway.url, test, *args, model=model), folder, gateway)
    rows = json.loads(report.read_text())["tests"]
    assert len(rows) == cases and all(row["passed"] == 1 for row in rows), "a case did not pass"
    return run


def warm_runs(folder: Path, gateway: Gateway) -> tuple[list[Run], list[Run]]:
    """The in-process rounds of (3): request phase and pytest.main walls, as runs."""
    out = folder / "warm.json"
    timed([sys.executable, "warm.py", gateway.url, str(out)], folder, gateway)
    times = json.loads(out.read_text())
    as_runs = [[Run(wall, 0.0, 0.0) for wall in times[kind]] for kind in ("bare", "pytest")]
    return as_runs[0], as_runs[1]


def humaneval_run(gateway: Gateway, *args: str) -> Run:
    """The HumanEval example on the demo model: 164 tasks x up to 5 samples each."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "examples/test_humaneval.py", "--llm-models=demo-careful", f"--llm-report={report}",
            *args,
        ]  # fmt: skip
        run = timed(command, ROOT, gateway)
        rows = json.loads(report.read_text())["tests"]
    assert len(rows) == 164, f"{len(rows)} HumanEval rows"
    run.sampling = float(sum(len(row["samples"]) for row in rows))
    return run


def row(name: str, best: Run, bare: Run, runs: list[Run], goal: float | None = None) -> str:
    ratio = best.wall / bare.wall
    flag = "" if goal is None else ("  ok" if ratio <= goal else f"  > {goal}x")
    return f"{name:<48} {best.wall:8.2f}s  {ratio:6.2f}x  {walls(runs)}{flag}"


def main() -> None:
    start_load = load()
    gateway = Gateway(LATENCY, f"{CHOICE_MODEL}={CHOICE_REPLY}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, text in (
                ("bare.py", BARE),
                ("test_cases.py", SUITE),
                ("bare_mmlu.py", BARE_MMLU),
                ("test_mmlu.py", MMLU_SUITE),
                ("warm.py", WARM),
            ):
                (folder / name).write_text(text)
            bare, bare_runs = best_of(
                lambda: timed([sys.executable, "bare.py", gateway.url], folder, gateway)
            )
            serial, serial_runs = best_of(
                lambda: suite_run(folder, gateway, "test_cases.py", CASES)
            )
            xdist, xdist_runs = best_of(
                lambda: suite_run(folder, gateway, "test_cases.py", CASES, "-n", "2")
            )
            mmlu_bare, mmlu_bare_runs = best_of(
                lambda: timed([sys.executable, "bare_mmlu.py", gateway.url], folder, gateway)
            )
            mmlu, mmlu_runs = best_of(lambda: suite_run(folder, gateway, "test_mmlu.py", QUESTIONS))
            mmlu_xdist, mmlu_xdist_runs = best_of(
                lambda: suite_run(folder, gateway, "test_mmlu.py", QUESTIONS, "-n", "2")
            )
            warm_bare_runs, warm_pytest_runs = warm_runs(folder, gateway)
        human_serial = humaneval_run(gateway)
        human_xdist = humaneval_run(gateway, "-n", "2")
    finally:
        gateway.stop()
    warm_bare = min(warm_bare_runs, key=lambda r: r.wall)
    warm_pytest = min(warm_pytest_runs, key=lambda r: r.wall)
    latency = f"{LATENCY * 1000:.0f} ms"
    print(f"latency {latency}, {CONCURRENCY} requests at a time; start: {start_load}")
    print(f"{'run':<48} {'best wall':>9}  {'vs bare':>7}  runs")
    print(f"whole processes, best of 3 (goal: at most {WHOLE_GOAL}x)")
    for line in (
        row(f"bare SDK script, {CASES} requests", bare, bare, bare_runs),
        row(f"pytest, {CASES} cases x 1 sample, serial", serial, bare, serial_runs, WHOLE_GOAL),
        row(f"pytest, {CASES} cases x 1 sample, -n 2", xdist, bare, xdist_runs, WHOLE_GOAL),
        row(f"bare SDK script, {QUESTIONS} MMLU requests", mmlu_bare, mmlu_bare, mmlu_bare_runs),
        row(f"pytest, MMLU {QUESTIONS} cases x 1 sample, serial", mmlu, mmlu_bare, mmlu_runs,
            WHOLE_GOAL),
        row(f"pytest, MMLU {QUESTIONS} cases x 1 sample, -n 2", mmlu_xdist, mmlu_bare,
            mmlu_xdist_runs, WHOLE_GOAL),
    ):  # fmt: skip
        print(line)
    print(f"one warm interpreter, cache off, best of {ROUNDS} (goal: at most {WARM_GOAL}x)")
    print(row(f"bare request phase, {CASES} requests", warm_bare, warm_bare, warm_bare_runs))
    print(
        row(
            f"pytest.main, {CASES} cases x 1 sample",
            warm_pytest,
            warm_bare,
            warm_pytest_runs,
            WARM_GOAL,
        )
    )
    for name, run in (("serial", human_serial), ("-n 2", human_xdist)):
        print(
            f"HumanEval 164 tasks x 5 samples (demo-careful, sandbox), {name}: "
            f"{run.wall:.1f} s, {run.sampling:.0f} samples"
        )
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
