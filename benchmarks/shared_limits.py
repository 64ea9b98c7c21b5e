"""Per-model limits and the budget under `pytest -n 2`, seen from the gateway.

Against one in-process fake gateway that counts requests in flight, whole pytest processes run
two LLM tests (one per xdist worker) with `--llm-concurrency=8`:

* concurrency: `max_concurrency = 3`, 200 ms latency, 2 x 24 samples: the gateway's peak of
  requests in flight, and the wall time of the run (serial and `-n 2`);
* rpm: `rpm = 120` (a burst of 120, then 2 a second), 2 x 65 samples at no latency: requests
  that arrived within the first second, and how long the 130 took;
* budget: `--llm-budget=0.5` on a model priced $1000 per 1M tokens whose answers use 100
  output tokens (`max_tokens = 100`, about $0.10 a call), 2 x 40 samples at 100 ms latency:
  the spend the report shows, and how many requests were sent.

Run: python benchmarks/shared_limits.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_llmeval.testing import FakeGateway, Reply

SUITE = """
import pytest

@pytest.mark.parametrize("case", range(2))
@pytest.mark.llmeval(samples={samples}, mode="observed", pass_rate=1.0)
def test_case(llm, case):
    assert llm.chat("Say PASS").text == "PASS"
"""


def run(folder: Path, config: str, samples: int, *args: str) -> tuple[dict[str, object], float]:
    (folder / "llmeval.toml").write_text(config)
    (folder / "test_suite.py").write_text(SUITE.format(samples=samples))
    options = ["--llm-models=m", "--llm-concurrency=8", "--llm-report=r.json", "--llm-retries=0"]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stdout + proc.stderr)
    return json.loads((folder / "r.json").read_text()), wall


def main() -> None:
    with FakeGateway() as gateway, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        head = f'base_url = "{gateway.base_url}"\n[models.m]\n'
        print("concurrency: max_concurrency = 3, 200 ms latency, 2 x 24 samples")
        for args in ([], ["-n", "2"]):
            gateway.reset()
            gateway.add_model("m", "PASS", latency_s=0.2)
            _, wall = run(folder, head + "max_concurrency = 3\n", 24, *args)
            label = " ".join(args) or "serial"
            print(f"  {label:>6}: gateway peak in flight {gateway.peak_in_flight}, {wall:.2f} s")
        print("rpm: rpm = 120, no latency, 2 x 65 samples")
        gateway.reset()
        gateway.add_model("m", "PASS")
        _, wall = run(folder, head + "rpm = 120\n", 65, "-n", "2")
        times = sorted(r.time for r in gateway.requests)
        first = sum(1 for t in times if t - times[0] <= 1.0)
        print(
            f"    -n 2: {first} requests in the first second, {len(times)} in "
            f"{times[-1] - times[0]:.2f} s (the limit allows 122 and needs 5 s)"
        )
        print("budget: --llm-budget=0.5, ~$0.10 a call, 100 ms latency, 2 x 40 samples")
        for args in ([], ["-n", "2"]):
            gateway.reset()
            gateway.add_model("m", Reply("PASS", completion_tokens=100), latency_s=0.1)
            priced = "input_cost_per_mtok = 1000.0\noutput_cost_per_mtok = 1000.0\n"
            config = head + priced + "params = { max_tokens = 100 }\n"
            report, _ = run(folder, config, 40, "--llm-budget=0.5", *args)
            budget = report["budget"]
            assert isinstance(budget, dict)
            label = " ".join(args) or "serial"
            print(
                f"  {label:>6}: spent ${budget['spent_usd']:.3f} of ${budget['limit_usd']}, "
                f"{gateway.request_count()} requests sent"
            )


if __name__ == "__main__":
    main()
