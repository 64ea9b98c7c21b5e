"""The plugin's share of pytest's start-up, in a project with no LLM test.

164 trivial tests (HumanEval's count), run as whole pytest processes with the plugin and with
`-p no:llmeval`, alternating, side by side in one run, with bytecode caching on; the medians
and their difference are the plugin's cost. A second measure names what loading the plugin
imports (`sys.modules` after `import pytest_llmeval.plugin`): none of the heavy parts.
Run: python benchmarks/startup.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = 164
# Bytecode caching on, as in a user's environment (this machine's shell turns it off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
HEAVY = (
    "asyncio",
    "jsonschema",
    "openai",
    "pytest_llmeval.sandbox.host",
    "pytest_llmeval.local.server",
)
SUITE = f"""
import pytest

@pytest.mark.parametrize("i", range({TESTS}))
def test_trivial(i):
    assert i >= 0
"""
IMPORTS = f"""
import sys
before = set(sys.modules)
import pytest_llmeval.plugin
heavy = sorted(m for m in set(sys.modules) - before if m.startswith({HEAVY!r}))
print(",".join(heavy))
"""


def timed(folder: Path, *args: str) -> float:
    """Wall seconds of one pytest process in `folder`; it must pass."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    heavy = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True, env=ENV
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_trivial.py").write_text(SUITE)
        timed(folder)  # warm the disk cache and the bytecode
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(rounds):
            with_plugin.append(timed(folder))
            without.append(timed(folder, "-p", "no:llmeval"))
    on, off = statistics.median(with_plugin), statistics.median(without)
    print(f"{TESTS} trivial tests, {rounds} alternating rounds, medians of whole processes:")
    print(f"  pytest -p no:llmeval  {off * 1000:7.1f} ms")
    print(f"  pytest (plugin)       {on * 1000:7.1f} ms")
    print(f"  plugin's share        {(on - off) * 1000:7.1f} ms ({on / off:.3f}x)")
    print(f"heavy modules imported by loading the plugin: {heavy or 'none'}")


if __name__ == "__main__":
    main()
