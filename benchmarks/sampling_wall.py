"""Wall time of one test with samples=200 against the fake gateway at 100 ms latency.

Side by side in one run, against one gateway process: the plugin at concurrency 8 and 64, and
the ideal time ceil(200 / c) x latency. The sampling wall time comes from the JSON report
(`wall_s`, the call phase of the test); the whole pytest process is timed too, next to plain
pytest running a trivial test (start-up cost). Run: python benchmarks/sampling_wall.py
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = 200
LATENCY = 0.1
REPEATS = 3
TEST = f"""
import pytest

@pytest.mark.llmeval(pass_rate=1.0, samples={SAMPLES}, mode="observed")
def test_answer(llm):
    assert llm.chat("Say PASS").text == "PASS"
"""


def run_pytest(folder: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    return time.perf_counter() - start


def main() -> None:
    command = [sys.executable, "-m", "pytest_llmeval.testing.gateway", "--model", "m=PASS"]
    gateway = subprocess.Popen(
        [*command, "--latency", str(LATENCY)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert gateway.stdout is not None
        base_url = gateway.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "test_llm.py").write_text(TEST)
            (folder / "test_plain.py").write_text("def test_plain():\n    pass\n")
            plain = min(run_pytest(folder, "test_plain.py") for _ in range(REPEATS))
            print(f"samples={SAMPLES}, latency {LATENCY * 1000:.0f} ms, best of {REPEATS}")
            print(f"plain pytest, one trivial test: {plain:.2f} s")
            print("concurrency  ideal s  sampling s  ratio  whole pytest s")
            for concurrency in (8, 64):
                best = (math.inf, math.inf)
                for _ in range(REPEATS):
                    wall = run_pytest(
                        folder,
                        "test_llm.py",
                        "--llm-models=m",
                        f"--llm-base-url={base_url}",
                        f"--llm-concurrency={concurrency}",
                        "--llm-report=report.json",
                    )
                    row = json.loads((folder / "report.json").read_text())["tests"][0]
                    assert row["passed"] == SAMPLES
                    best = min(best, (row["wall_s"], wall))
                ideal = math.ceil(SAMPLES / concurrency) * LATENCY
                sampling, whole = best
                print(
                    f"{concurrency:>11}  {ideal:>7.2f}  {sampling:>10.2f}  "
                    f"{sampling / ideal:>5.2f}  {whole:>14.2f}"
                )
    finally:
        gateway.terminate()
        gateway.wait()


if __name__ == "__main__":
    main()
