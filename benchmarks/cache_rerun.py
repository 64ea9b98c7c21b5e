"""Live run vs fully cached rerun of one suite against the fake gateway at 100 ms latency.

Side by side in one run, against one in-process gateway that counts requests: 10 tests x 20
samples with `--llm-cache=readwrite` on an empty cache, then the same command with
`--llm-cache=replay` (a miss would be an error); best of 3, each round with a new cache. Whole
pytest processes are timed, next to plain pytest on a trivial test (start-up), and the sampling
phase too (sum of `wall_s` in the JSON report). Run: python benchmarks/cache_rerun.py
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from sampling_wall import run_pytest  # the sibling benchmark: one timed pytest process

from pytest_llmeval.testing import FakeGateway

LATENCY = 0.1
REPEATS = 3
TESTS = 10
SAMPLES = 20
SUITE = f"""
import pytest

@pytest.mark.parametrize("case", range({TESTS}))
@pytest.mark.llmeval(pass_rate=1.0, samples={SAMPLES}, mode="observed")
def test_case(llm, case):
    assert "PASS" in llm.chat(f"Say PASS ({{case}})").text
"""


def run(folder: Path, *args: str) -> tuple[float, float]:
    """Whole-process wall time and the sampling time of every test, in seconds."""
    wall = run_pytest(folder, *args)
    report = folder / "report.json"
    tests = json.loads(report.read_text())["tests"] if report.exists() else []
    return wall, sum(row["wall_s"] for row in tests)


def main() -> None:
    with FakeGateway(latency_s=LATENCY) as gateway, tempfile.TemporaryDirectory() as tmp:
        gateway.add_model("m", "PASS")
        folder = Path(tmp)
        (folder / "test_suite.py").write_text(SUITE)
        (folder / "test_plain.py").write_text("def test_plain():\n    pass\n")
        plain = min(run(folder, "test_plain.py")[0] for _ in range(REPEATS))
        best = {"readwrite": (math.inf, math.inf, 0), "replay": (math.inf, math.inf, 0)}
        for round_ in range(REPEATS):
            for mode in best:
                before = gateway.request_count()
                wall, sampling = run(
                    folder,
                    "test_suite.py",
                    "--llm-models=m",
                    f"--llm-base-url={gateway.base_url}",
                    f"--llm-cache={mode}",
                    f"--llm-cache-dir=cache{round_}",
                    "--llm-report=report.json",
                )
                best[mode] = min(best[mode], (wall, sampling, gateway.request_count() - before))
        print(f"{TESTS} tests x {SAMPLES} samples, fake gateway latency {LATENCY * 1000:.0f} ms")
        print(f"best of {REPEATS}; plain pytest on one trivial test: {plain:.2f} s")
        print("run               wall s  sampling s  requests")
        for label, mode in (("live (readwrite)", "readwrite"), ("cached (replay)", "replay")):
            wall, sampling, sent = best[mode]
            print(f"{label:<16}  {wall:>6.2f}  {sampling:>10.2f}  {sent:>8}")


if __name__ == "__main__":
    main()
