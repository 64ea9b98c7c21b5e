"""Many cases with few samples (the shape of a benchmark suite) against the bare `openai` SDK.

Side by side in one run, against one fake gateway process at 100 ms latency:

1. bare SDK: a script sends 200 chat completions, 64 at a time (`AsyncOpenAI`, a semaphore);
2. pytest: the same 200 requests as ONE parametrized test of 200 cases, one sample each
   (`@pytest.mark.parametrize("i", range(200))`, `samples=1, mode="observed"`),
   `--llm-concurrency=64`, serially and with `-n 2`;
3. HumanEval: `examples/test_humaneval.py`, 164 tasks x 5 samples on the demo model
   `demo-careful` (served by the examples' in-process fake gateway, code run in the sandbox),
   serially and with `-n 2`, whole processes.

Wall times are whole processes, best of 3 (HumanEval: one run each); the ratio is to (1).
Run: python benchmarks/cases.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from throughput import CONCURRENCY, Gateway, Run, best_of, load, pytest_command, timed, walls

CASES = 200
LATENCY = 0.1
ROOT = Path(__file__).resolve().parents[1]
BARE = f"""
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


asyncio.run(main(sys.argv[1]))
"""
SUITE = f"""
import pytest


@pytest.mark.parametrize("i", range({CASES}))
@pytest.mark.llmeval(pass_rate=1.0, samples=1, mode="observed")
def test_q(llm, i):
    assert "PASS" in llm.chat(f"Say PASS {{i}}").text
"""


def suite_run(folder: Path, gateway: Gateway, *args: str) -> Run:
    """One pytest process over the 200 cases; every case must have passed its sample."""
    report = folder / "report.json"
    report.unlink(missing_ok=True)
    run = timed(pytest_command(gateway.url, "test_cases.py", *args), folder, gateway)
    rows = json.loads(report.read_text())["tests"]
    assert len(rows) == CASES and all(row["passed"] == 1 for row in rows), "a case did not pass"
    return run


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


def main() -> None:
    gateway = Gateway(LATENCY)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "bare.py").write_text(BARE)
            (folder / "test_cases.py").write_text(SUITE)
            bare, bare_runs = best_of(
                lambda: timed([sys.executable, "bare.py", gateway.url], folder, gateway)
            )
            serial, serial_runs = best_of(lambda: suite_run(folder, gateway))
            xdist, xdist_runs = best_of(lambda: suite_run(folder, gateway, "-n", "2"))
        human_serial = humaneval_run(gateway)
        human_xdist = humaneval_run(gateway, "-n", "2")
    finally:
        gateway.stop()
    latency = f"{LATENCY * 1000:.0f} ms"
    print(f"{CASES} requests at {latency} latency, {CONCURRENCY} at a time ({load()})")
    print(f"{'run':<44} {'best wall':>9}  {'vs bare':>7}  runs")
    for name, best, runs in (
        ("bare SDK script", bare, bare_runs),
        (f"pytest, {CASES} cases x 1 sample, serial", serial, serial_runs),
        (f"pytest, {CASES} cases x 1 sample, -n 2", xdist, xdist_runs),
    ):
        print(f"{name:<44} {best.wall:8.2f}s  {best.wall / bare.wall:6.1f}x  {walls(runs)}")
    for name, run in (("serial", human_serial), ("-n 2", human_xdist)):
        print(
            f"HumanEval 164 tasks x 5 samples (demo-careful, sandbox), {name}: "
            f"{run.wall:.1f} s, {run.sampling:.0f} samples"
        )


if __name__ == "__main__":
    main()
