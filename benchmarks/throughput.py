"""Throughput of the plugin against the bare `openai` SDK, and its per-sample CPU overhead.

One fake gateway process (`--model m=PASS --latency 0.1`) serves every timed run:

1. bare SDK: a script sends 1,000 chat completions with `openai.AsyncOpenAI(max_retries=0)`
   under `asyncio.Semaphore(64)`;
2. the plugin: pytest runs ONE test with `samples=1000` at `--llm-concurrency=64`, with a sync
   body (`llm.chat`) and an async one (`await llm.achat`); every sample must pass;
3. the ratio of (2) to (1), each timed as a whole process from spawn to exit (target <= 1.5x),
   next to the sampling phase alone (`wall_s` of the JSON report) and the ideal ceil(1000/64) x
   latency; start-up alone (import openai; pytest on a plain test) and the plugin runs without
   hypothesis's pytest plugin are printed to show where the gap comes from;
4. scale-out: 200 tests x 5 samples, with and without `-n 4` (pytest-xdist);
5. CPU: user+sys of each process / 1000 (getrusage of children), and a profile of the sampling
   phase against a second gateway at latency 0. `python -m cProfile` only sees the main thread,
   and sync samples run on their own threads, so a tiny plugin (`-p`) profiles the call phase of
   every thread with cProfile on thread CPU time; the bare script is profiled the same way.
   SDK = all time spent under the SDK (C and stdlib calls charged to their callers).

Wall times are the best of 3 (all three printed); `bg` is CPU used by processes other than
this benchmark during a run, in cores (load from a background build, say).
Run: python benchmarks/throughput.py
"""

from __future__ import annotations

import functools
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLES = 1000
CONCURRENCY = 64
LATENCY = 0.1
REPEATS = 3
TARGET = 1.5
MANY_TESTS = 200
MANY_SAMPLES = 5
WORKERS = 4

BARE = f"""
import asyncio
import sys

import openai


async def main(base_url):
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    limit = asyncio.Semaphore({CONCURRENCY})

    async def one():
        async with limit:
            reply = await client.chat.completions.create(
                model="m", messages=[{{"role": "user", "content": "Say PASS"}}]
            )
        assert reply.choices[0].message.content == "PASS"

    await asyncio.gather(*(one() for _ in range({SAMPLES})))
    await client.close()


asyncio.run(main(sys.argv[1]))
"""
BARE_RUN = "asyncio.run(main(sys.argv[1]))"
BARE_PROFILED_RUN = """import cProfile, os, time
profile = cProfile.Profile(time.thread_time)
profile.enable()
asyncio.run(main(sys.argv[1]))
profile.disable()
profile.dump_stats(os.environ["LLMEVAL_PROFILE_OUT"])"""

MARK = '@pytest.mark.llmeval(pass_rate=1.0, samples={n}, mode="observed")'
SYNC_TEST = f"""import pytest


{MARK.format(n=SAMPLES)}
def test_sync(llm):
    assert llm.chat("Say PASS").text == "PASS"
"""
ASYNC_TEST = f"""import pytest


{MARK.format(n=SAMPLES)}
async def test_async(llm):
    assert (await llm.achat("Say PASS")).text == "PASS"
"""
MANY_TEST = "import pytest\n" + "".join(
    f"""

{MARK.format(n=MANY_SAMPLES)}
def test_{i:03d}(llm):
    assert llm.chat("Say PASS").text == "PASS"
"""
    for i in range(MANY_TESTS)
)

# Loaded with -p: profiles the call phase of each test on every thread, on thread CPU time.
PROFILER = """
import cProfile
import os
import pstats
import threading
import time

import pytest

_profiles = []
_lock = threading.Lock()
_active = False
_thread_run = threading.Thread.run


def _profiled_run(self):
    if not _active:
        return _thread_run(self)
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()
    try:
        return _thread_run(self)
    finally:
        profile.disable()


threading.Thread.run = _profiled_run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    global _active
    profile = cProfile.Profile(time.thread_time)
    _profiles.append(profile)
    _active = True
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        _active = False


def pytest_unconfigure(config):
    stats = pstats.Stats(_profiles[0])
    for profile in _profiles[1:]:
        stats.add(profile)
    stats.dump_stats(os.environ["LLMEVAL_PROFILE_OUT"])
"""

NO_HYPOTHESIS = ("-p", "no:hypothesispytest")
SDK_PACKAGES = ("openai", "httpx2", "httpcore2", "h11", "anyio", "sniffio", "pydantic", "jiter")


@dataclass
class Run:
    wall: float
    cpu: float
    background: float
    sampling: float | None = None


def _busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (0 without /proc)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Gateway:
    """The fake gateway as a process: model `m` replies PASS; `models` adds NAME=TEXT ones."""

    def __init__(self, latency: float, *models: str) -> None:
        command = [sys.executable, "-m", "pytest_llmeval.testing.gateway", "--model", "m=PASS"]
        for spec in models:
            command += ["--model", spec]
        self.proc = subprocess.Popen(
            [*command, "--latency", str(latency)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            self.stop()
            raise SystemExit("the fake gateway did not print its URL")

    def cpu_s(self) -> float:
        return _process_cpu_s(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def timed(
    command: list[str], cwd: Path, gateway: Gateway, env: dict[str, str] | None = None
) -> Run:
    """Wall time from spawn to exit, CPU of the process tree, CPU of everything else."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, mine, served = _busy_s(), time.process_time(), gateway.cpu_s()
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{command} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    ours = cpu + time.process_time() - mine + gateway.cpu_s() - served
    return Run(wall, cpu, max(0.0, _busy_s() - busy - ours) / wall)


def pytest_command(url: str, *args: str, model: str = "m") -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--llm-models={model}",
        f"--llm-base-url={url}",
        f"--llm-concurrency={CONCURRENCY}",
        "--llm-report=report.json",
        *args,
    ]


def run_plugin(folder: Path, gateway: Gateway, tests: int, samples: int, *args: str) -> Run:
    report = folder / "report.json"
    report.unlink(missing_ok=True)
    run = timed(pytest_command(gateway.url, *args), folder, gateway)
    rows = json.loads(report.read_text())["tests"]
    assert len(rows) == tests, f"{len(rows)} tests in the report, expected {tests}"
    for row in rows:
        assert row["passed"] == samples, f"{row['nodeid']}: {row['passed']}/{samples} passed"
    run.sampling = max(row["wall_s"] for row in rows)
    return run


def best_of(measure: Callable[[], Run]) -> tuple[Run, list[Run]]:
    runs = [measure() for _ in range(REPEATS)]
    return min(runs, key=lambda r: r.wall), runs


def walls(runs: list[Run]) -> str:
    return " / ".join(f"{r.wall:.2f}" for r in runs)


def bgs(runs: list[Run]) -> str:
    return " / ".join(f"{r.background:.1f}" for r in runs)


def load() -> str:
    return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- profile analysis -------------------------------------------------------------------


# Cumulative time of the pieces of the sampling engine suspected of being expensive.
ENGINE_ITEMS = {
    "Thread.start": ("threading.py", ("start",)),
    "copy_context": ("~", ("<built-in method _contextvars.copy_context>",)),
    "Tally.add+settled": ("sampling.py", ("add",)),
    "tracing": ("records.py", ("__enter__", "__exit__", "tracing", "current_trace", "add")),
    "fingerprint": ("client.py", ("fingerprint", "_fingerprint")),
    "report to_dict": ("records.py", ("to_dict",)),
}
STDLIB = Path(sysconfig.get_paths()["stdlib"])
GROUPS = {"concurrent": "threads", "threading": "threads", "contextvars": "threads"}


def _category(filename: str) -> str:
    path = Path(filename)
    if "pytest_llmeval" in path.parts:
        return "plugin"
    if "site-packages" in path.parts:
        package = path.parts[path.parts.index("site-packages") + 1].split(".")[0].strip("_")
        if package in SDK_PACKAGES:
            return "sdk"
        return "pytest" if package in ("pytest", "pluggy", "xdist", "execnet") else package
    if path.is_relative_to(STDLIB):
        module = path.relative_to(STDLIB).parts[0].removesuffix(".py")
        return GROUPS.get(module, module)
    return "test body" if filename.endswith(".py") else "?"


def attribute(stats: dict[Any, Any]) -> dict[str, float]:
    """Self time per category, with everything running under the SDK charged to "sdk".

    C functions are charged to their callers. Python functions outside the SDK packages are
    charged to "sdk" in proportion to the share of their time that the SDK called them for
    (json, ssl, socket, ... called by httpx2 or openai).
    """
    under = {key: float(_category(key[0]) == "sdk") for key in stats}
    for _ in range(30):  # propagate down the call graph until it stops changing
        for key, (_cc, _nc, _tt, _ct, callers) in stats.items():
            if _category(key[0]) in ("sdk", "plugin") or not callers:
                continue
            weights = {c: v[3] or v[0] for c, v in callers.items()}
            whole = sum(weights.values()) or 1
            under[key] = sum(under.get(c, 0.0) * w for c, w in weights.items()) / whole
    totals: dict[str, float] = defaultdict(float)
    for key, (_cc, _nc, tt, _ct, callers) in stats.items():
        owners = [(key, 1.0)]
        if key[0] == "~" and callers:
            weights = {c: v[2] or v[0] for c, v in callers.items()}
            whole = sum(weights.values()) or 1
            owners = [(c, w / whole) for c, w in weights.items()]
        for owner, share in owners:
            sdk_part = under.get(owner, 0.0)
            totals["sdk"] += tt * share * sdk_part
            totals[_category(owner[0])] += tt * share * (1 - sdk_part)
    return totals


def analyse(path: Path, samples: int, top: int) -> tuple[str, list[str]]:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    create = sum(
        v[3]
        for (filename, _line, name), v in stats.items()
        if name == "create" and "openai" in Path(filename).parts and "completions" in filename
    )
    parts = attribute(stats)
    sdk, plugin = parts.pop("sdk", 0.0), parts.pop("plugin", 0.0)
    rest = total - sdk - plugin
    ms = 1000 / samples
    largest = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
    line = (
        f"{total * ms:6.3f}  {sdk * ms:6.3f} {sdk / total:4.0%} ({create * ms:.3f})  "
        f"{plugin * ms:6.3f} {plugin / total:4.0%}  {rest * ms:6.3f} {rest / total:4.0%}  "
        + ", ".join(f"{k} {v * ms:.3f}" for k, v in largest)
    )
    mine = [
        (v[3], v[1], filename, lineno, name)
        for (filename, lineno, name), v in stats.items()
        if _category(filename) == "plugin"
    ]
    items = []
    for label, (suffix, names) in ENGINE_ITEMS.items():
        ct = sum(v[3] for (f, _l, name), v in stats.items() if f.endswith(suffix) and name in names)
        items.append(f"{label} {ct * ms:.3f}")
    rows = ["  engine pieces, cumulative ms/sample: " + ", ".join(items)]
    rows += [
        f"  {ct * ms:7.3f}  {ct:6.2f}  {nc:6d}  {Path(f).name}:{line_no}({name})"
        for ct, nc, f, line_no, name in sorted(mine, reverse=True)[:top]
    ]
    return line, rows


def profile(folder: Path, gateway: Gateway) -> dict[str, list[str]]:
    (folder / "llmeval_profile.py").write_text(PROFILER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
    }
    out: dict[str, list[str]] = {}
    prof = folder / "prof-bare.out"
    (folder / "bare_profiled.py").write_text(BARE.replace(BARE_RUN, BARE_PROFILED_RUN))
    env["LLMEVAL_PROFILE_OUT"] = str(prof)
    timed([sys.executable, "bare_profiled.py", gateway.url], folder, gateway, env)
    out["bare SDK"] = [analyse(prof, SAMPLES, 0)[0]]
    for kind in ("sync", "async"):
        prof = folder / f"prof-{kind}.out"
        env["LLMEVAL_PROFILE_OUT"] = str(prof)
        command = pytest_command(gateway.url, "-p", "llmeval_profile", f"test_{kind}.py")
        timed(command, folder, gateway, env)
        line, rows = analyse(prof, SAMPLES, 10 if kind == "sync" else 5)
        out[kind] = [line, *rows]
    return out


# ---- main ---------------------------------------------------------------------------------


def main() -> None:
    print(f"start: {load()} on {os.cpu_count()} cores")
    ideal = math.ceil(SAMPLES / CONCURRENCY) * LATENCY
    gateway = Gateway(LATENCY)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "pytest.ini").write_text("[pytest]\n")
            (folder / "bare.py").write_text(BARE)
            (folder / "test_sync.py").write_text(SYNC_TEST)
            (folder / "test_async.py").write_text(ASYNC_TEST)
            (folder / "test_many.py").write_text(MANY_TEST)

            (folder / "test_plain.py").write_text("def test_plain():\n    pass\n")
            imports = [sys.executable, "-c", "import openai.types.chat, asyncio"]
            start_bare, start_bare_runs = best_of(lambda: timed(imports, folder, gateway))
            start_pytest, start_pytest_runs = best_of(
                lambda: timed(pytest_command(gateway.url, "test_plain.py"), folder, gateway)
            )
            start_lean, start_lean_runs = best_of(
                lambda: timed(
                    pytest_command(gateway.url, *NO_HYPOTHESIS, "test_plain.py"), folder, gateway
                )
            )
            bare_cmd = [sys.executable, "bare.py", gateway.url]
            bare, bare_runs = best_of(lambda: timed(bare_cmd, folder, gateway))
            # The same runs without hypothesis's pytest plugin (installed by the dev extra),
            # whose import is a large part of pytest's start-up here.
            plugin: dict[str, tuple[Run, list[Run]]] = {}
            for kind, args in (
                ("sync", ()),
                ("async", ()),
                ("sync, no hypothesis", NO_HYPOTHESIS),
                ("async, no hypothesis", NO_HYPOTHESIS),
            ):
                test = f"test_{kind.split(',')[0]}.py"
                plugin[kind] = best_of(
                    functools.partial(run_plugin, folder, gateway, 1, SAMPLES, *args, test)
                )

            print(
                f"\n{SAMPLES} samples, concurrency {CONCURRENCY}, latency {LATENCY * 1000:.0f} ms;"
                f" ideal ceil({SAMPLES}/{CONCURRENCY}) x {LATENCY} = {ideal:.2f} s;"
                f" best of {REPEATS}"
            )
            print(
                f"{'run':<28}{'whole s':>8}{'ratio':>7}{'sampling s':>11}"
                f"{'cpu ms/sample':>14}   all wall s           bg cores"
            )
            print(
                f"{'bare SDK':<28}{bare.wall:>8.2f}{'1.00':>7}{'-':>11}"
                f"{min(r.cpu for r in bare_runs) / SAMPLES * 1000:>14.2f}   "
                f"{walls(bare_runs):<20} {bgs(bare_runs)}"
            )
            for kind, (best, runs) in plugin.items():
                ratio = best.wall / bare.wall
                flag = "ok" if ratio <= TARGET else f"> {TARGET}x"
                print(
                    f"{'plugin ' + kind:<28}{best.wall:>8.2f}{ratio:>7.2f}{best.sampling:>11.2f}"
                    f"{min(r.cpu for r in runs) / SAMPLES * 1000:>14.2f}   "
                    f"{walls(runs):<20} {bgs(runs)}  {flag}"
                )
            for label, (best, runs) in (
                ("import openai", (start_bare, start_bare_runs)),
                ("pytest, 1 plain test", (start_pytest, start_pytest_runs)),
                ("pytest, no hypothesis", (start_lean, start_lean_runs)),
            ):
                print(
                    f"{'start-up: ' + label:<36}{best.wall:>6.2f} s  cpu "
                    f"{min(r.cpu for r in runs):.2f} s   {walls(runs):<20} {bgs(runs)}"
                )
            print(load())

            print(
                f"\nscale-out: {MANY_TESTS} tests x {MANY_SAMPLES} samples, latency "
                f"{LATENCY * 1000:.0f} ms, best of {REPEATS}"
            )
            print(f"{'run':<14}{'whole s':>8}{'ideal s':>8}   all wall s           bg cores")
            for label, args, workers in (
                ("serial", (), 1),
                (f"-n {WORKERS}", ("-n", str(WORKERS)), WORKERS),
            ):
                best, runs = best_of(
                    functools.partial(
                        run_plugin, folder, gateway, MANY_TESTS, MANY_SAMPLES, *args, "test_many.py"
                    )
                )
                ideal_many = (
                    math.ceil(MANY_TESTS / workers)
                    * math.ceil(MANY_SAMPLES / min(CONCURRENCY, MANY_SAMPLES))
                    * LATENCY
                )
                print(
                    f"{label:<14}{best.wall:>8.2f}{ideal_many:>8.2f}   "
                    f"{walls(runs):<20} {bgs(runs)}"
                )
            print(load())

            gateway.stop()
            gateway = Gateway(0.0)
            rows = profile(folder, gateway)
            print(
                f"\nprofile: {SAMPLES} samples at latency 0, call phase only, all threads, "
                "cProfile on thread CPU time (inflated by the profiler; compare shares)"
            )
            print(
                "ms CPU/sample  total     SDK (create incl.)   pytest_llmeval   rest"
                "        largest parts of rest"
            )
            for kind in ("bare SDK", "sync", "async"):
                print(f"{kind:<13}{rows[kind][0]}")
            for kind in ("sync", "async"):
                print(f"{kind} body:")
                print(rows[kind][1])
                print("  top pytest_llmeval functions by cumulative time")
                print("  ms/smpl  cum s   calls  function")
                print("\n".join(rows[kind][2:]))
            print(load())
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
