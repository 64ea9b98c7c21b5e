"""The program that runs inside the sandbox: a supervisor that judges, and a clean forker.

Standard library only: it runs as `python -I -S sandbox_worker.py` with no site-packages.

* The supervisor reads jobs from the host (length-prefixed JSON on fds 0/1), holds the hidden
  tests and expected outputs, and decides every verdict. It never runs candidate code.
* The forker is forked from the supervisor before any job arrives, so the candidate processes it
  forks never had hidden tests or earlier candidates in their memory. A candidate receives only
  its own code and input over a socket of its own.
* Function tests run in a separate test process that calls the candidate over a socket; values
  cross as plain data (JSON with tags for tuples, sets, bytes), so a candidate cannot patch the
  tests' builtins, return an always-equal object, or write a verdict.
* After each job every other process in the sandbox is killed, so nothing outlives its sample.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import json
import linecache
import os
import platform
import resource
import select
import shutil
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20
CANDIDATE_MODULE = "solution"
PR_SET_DUMPABLE = 4
OOM_EXIT = 75
IPC_RMID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219}
# Exceptions that steer the tests' control flow (all(map(candidate, ...)) stops quietly on
# StopIteration): never re-raised as themselves from the candidate.
FLOW_CONTROL = (AssertionError, StopIteration, StopAsyncIteration)
PRELOAD = (
    "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "hashlib", "heapq", "itertools", "math", "operator", "random", "re",
    "statistics", "string", "typing",
)  # fmt: skip
SETUP_EXIT = 70
START_S = 10.0


# ---- framing -------------------------------------------------------------------------------


def write_frame(fd: int, obj: Any, deadline: float | None = None) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], left)[1]:
                raise TimeoutError
        view = view[os.write(fd, view[: 1 << 16]) :]


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None) -> Any:
    head = read_exact(fd, HEADER.size, deadline)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes")
    body = read_exact(fd, size, deadline)
    return None if body is None else json.loads(body)


# ---- plain data across the process border ---------------------------------------------------


def encode(value: Any, depth: int = 0) -> Any:
    """Plain data to JSON; exact types only, so subclasses with a custom __eq__ are refused."""
    if depth > 200:
        raise TypeError("value nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, str, float):
        return value
    if kind is list:
        return [encode(v, depth + 1) for v in value]
    if kind is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}
    if kind is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind in (set, frozenset):
        return {"s" if kind is set else "fs": [encode(v, depth + 1) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    raise TypeError(f"a value of type {kind.__name__} is not plain data")


def decode(value: Any, depth: int = 0) -> Any:
    if depth > 200:
        raise ValueError("value nested too deeply")
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    ((tag, body),) = value.items()
    items = [decode(v, depth + 1) for v in body] if tag != "b" else []
    if tag == "t":
        return tuple(items)
    if tag == "d":
        return {k: v for k, v in items}
    if tag == "s":
        return set(items)
    if tag == "fs":
        return frozenset(items)
    if tag == "b":
        return bytes.fromhex(body)
    if tag == "c":
        return complex(*items)
    raise ValueError(f"unknown tag {tag!r}")


# ---- helpers -------------------------------------------------------------------------------


def nondumpable() -> None:
    """Keep same-uid processes (the candidate) out of this process's memory and fds."""
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def limit(limits: dict[str, int]) -> None:
    for res, value in (
        (resource.RLIMIT_AS, limits["memory_mb"] << 20),
        (resource.RLIMIT_CPU, limits["cpu_s"]),
        (resource.RLIMIT_FSIZE, limits["output_kb"] << 10),
        (resource.RLIMIT_NOFILE, limits["files"]),
        (resource.RLIMIT_NPROC, limits["processes"]),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))


def keep_only(*fds: int) -> None:
    """Close every inherited fd but `fds` (and 0-2, which are reopened by the caller)."""
    keep = sorted(set(fds) | {0, 1, 2})
    low = 3
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 16)


def redirect(stdin: str, stdout: str, stderr: str) -> None:
    for fd, path, flags in (
        (0, stdin, os.O_RDONLY),
        (1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        if path == os.devnull:  # never create or truncate a file in its place
            flags &= ~(os.O_CREAT | os.O_TRUNC)
        new = os.open(path, flags, 0o600)
        os.dup2(new, fd)
        os.close(new)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"killed by {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def tail(path: str, cap: int) -> str:
    """The first `cap` characters of a regular file the code wrote; never a FIFO, device or
    symlink it may have put in its place."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        data = os.read(fd, cap + 1)
    except OSError:
        return ""
    finally:
        os.close(fd)
    text = data[:cap].decode("utf-8", "replace")
    return text + ("\n[output truncated]" if len(data) > cap else "")


# ---- candidate side (runs untrusted code) ---------------------------------------------------


def candidate(sock: socket.socket) -> None:
    """Receive one job, compile, report, then run the code; never returns."""
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 2)
        job = read_frame(sock.fileno())
        keep_only(sock.fileno(), *fds)
        redirect(job["stdin"], job["stdout"], job["stderr"])
        os.chdir(job["workdir"])
        limit(job["limits"])
        sys.setrecursionlimit(job["recursion"])
        try:
            code = compile(job["code"], "solution.py", "exec")
            report: dict[str, Any] = {"compiled": True}
        except (SyntaxError, ValueError, OverflowError) as exc:
            report = {"syntax_error": f"{type(exc).__name__}: {exc}"}
        except (MemoryError, RecursionError) as exc:
            report = {"syntax_error": f"{type(exc).__name__} while parsing"}
        write_frame(sock.fileno(), report)
        sock.close()
        if "syntax_error" in report:
            os._exit(0)
    except BaseException:
        os._exit(SETUP_EXIT)
    # From here on the candidate's code runs; nothing it says is trusted.
    namespace: dict[str, Any] = {"__name__": job["module_name"], "__builtins__": builtins}
    try:
        exec(code, namespace)
        if job["adapter"]:
            exec(compile(job["adapter"], "adapter.py", "exec"), namespace)
    except MemoryError:
        os._exit(OOM_EXIT)
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
    if fds:
        serve(fds[0], namespace)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def serve(fd: int, namespace: dict[str, Any]) -> None:
    """Answer calls from the test process until it hangs up."""
    while True:
        request = read_frame(fd)
        if request is None:
            return
        name, args, kwargs = request["name"], decode(request["args"]), decode(request["kwargs"])
        try:
            function = namespace[name]
            result = function(*args, **kwargs)
            reply = {"ok": encode(result)}
        except MemoryError:
            reply = {"raise": "MemoryError", "message": "out of memory"}
        except BaseException as exc:
            reply = {"raise": type(exc).__name__, "message": str(exc)[:2000]}
            if not isinstance(exc, Exception):
                write_frame(fd, reply)
                return
        write_frame(fd, reply)


# ---- test side (trusted hidden tests) -------------------------------------------------------


class CandidateError(Exception):
    """The candidate raised, crashed or returned something that is not plain data."""


class Stub:
    """Stands for a candidate function in the test process; each call is a round trip."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd, self.__name__ = fd, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            payload = {"name": self.__name__, "args": encode(list(args)), "kwargs": encode(kwargs)}
        except TypeError as exc:
            raise ProtocolError(f"{self.__name__}() was called with {exc}") from None
        try:
            write_frame(self._fd, payload)
            reply = read_frame(self._fd)
        except ValueError as exc:
            raise CandidateError(f"{self.__name__}() sent a malformed reply: {exc}") from None
        except OSError:
            reply = None
        if reply is None:
            raise CandidateCrashed(f"the candidate process ended during {self.__name__}()")
        if "ok" in reply:
            try:
                return decode(reply["ok"])
            except (TypeError, ValueError, AttributeError, RecursionError) as exc:
                raise CandidateError(f"{self.__name__}() sent a malformed value: {exc}") from None
        kind, message = str(reply.get("raise")), str(reply.get("message"))
        if kind == "MemoryError":
            raise CandidateOOM(message)
        error = getattr(builtins, kind, None)
        if (
            isinstance(error, type)
            and issubclass(error, Exception)
            and not issubclass(error, FLOW_CONTROL)
        ):
            raise error(message)
        raise CandidateError(f"{self.__name__}() raised {kind}: {message}")


class ProtocolError(Exception):
    """The hidden tests passed a value that cannot cross to the candidate."""


class CandidateCrashed(CandidateError):
    pass


class CandidateOOM(CandidateError):
    pass


def assertion_message(exc: BaseException, filename: str) -> str:
    """The exception and where in the tests it happened: the line's source when the assert
    has no message of its own."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not frames:
        return text
    where = f"line {frames[-1].lineno}" + ("" if str(exc) else f": {frames[-1].line}")
    return f"{text} ({where})"


def run_tests(job: dict[str, Any], rpc: int, verdict: int) -> None:
    """Run each hidden test case against stubs of the candidate's functions; write the verdict."""
    keep_only(rpc, verdict)
    redirect("/dev/null", "/dev/null", "/dev/null")  # nothing in the work dir, which the code owns
    limit(job["limits"])
    cases: list[str] = job["tests"]
    namespace: dict[str, Any] = {"__name__": "__tests__"}
    passed, failures = 0, []
    try:
        if job.get("context"):
            exec(compile(job["context"], "context.py", "exec"), namespace)
        stubs = {name: Stub(rpc, name) for name in job["names"]}
        namespace.update(stubs)
        if job.get("entry_point"):
            namespace["candidate"] = stubs[job["entry_point"]]
        for number, source in enumerate(cases, 1):
            filename = "hidden_tests.py" if len(cases) == 1 else f"hidden_test_{number}.py"
            try:
                run_case(source, filename, dict(namespace), job.get("entry_point"))
                passed += 1
            except (ProtocolError, CandidateOOM, MemoryError):
                raise
            except BaseException as exc:
                where = "" if len(cases) == 1 else f"case {number} of {len(cases)}: "
                failures.append(where + assertion_message(exc, filename))
        result: dict[str, Any] = {"status": "failed" if failures else "passed"}
        if failures:
            result["message"] = failures[0]
    except ProtocolError as exc:
        result = {"status": "error", "message": str(exc)}
    except CandidateOOM as exc:
        result = {"status": "oom", "message": f"the candidate ran out of memory: {exc}"}
    except MemoryError:
        result = {"status": "oom", "message": "the hidden tests ran out of memory"}
    except BaseException as exc:
        result = {"status": "failed", "message": assertion_message(exc, "context.py")}
    if len(cases) > 1:
        result.update(cases_passed=passed, cases=len(cases))
    write_frame(verdict, result)
    os._exit(0)


def run_case(source: str, filename: str, namespace: dict[str, Any], entry: str | None) -> None:
    linecache.cache[filename] = (0, None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    check = namespace.get("check")
    if entry and callable(check):
        check(namespace["candidate"])


# ---- the forker (clean parent of every candidate) -------------------------------------------


def forker(sock: socket.socket) -> None:
    """Fork a fresh candidate per request; report its pid, then its exit status."""
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, 1)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        pid = os.fork()
        if pid == 0:
            sock.close()
            candidate(socket.socket(fileno=fds[0]))
        os.close(fds[0])
        sock.send(struct.pack(">ii", pid, -1))
        _, status = os.waitpid(pid, 0)
        sock.send(struct.pack(">ii", pid, status))


# ---- the supervisor -------------------------------------------------------------------------


class Unclean(Exception):
    """An earlier job left files or processes that cleanup could not remove."""


class ForkerGone(Exception):
    """The forker died (killed by earlier candidate code); this sandbox must be replaced."""


class Supervisor:
    def __init__(self, host_in: int, host_out: int, contained: bool) -> None:
        self.host_in, self.host_out, self.contained = host_in, host_out, contained
        self.root = os.getcwd()
        self.serial = 0
        self.children: list[int] = []
        self.clean = True
        self.forker_gone = False
        self.candidates: set[int] = set()
        self.forker_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.forker_pid = os.fork()
        if self.forker_pid == 0:
            self.forker_sock.close()
            keep_only(child_sock.fileno())
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            forker(child_sock)
        child_sock.close()

    def serve(self) -> None:
        write_frame(self.host_out, {"ready": True, "python": sys.version.split()[0]})
        while True:
            job = read_frame(self.host_in)
            if job is None:
                return
            self.serial += 1
            workdir = os.path.join(self.root, f"job{self.serial}")
            try:
                if not self.clean:
                    raise Unclean
                os.mkdir(workdir, 0o700)
                run = self.run_io if job["kind"] == "io" else self.run_function
                result = run(job, workdir)
            except (Unclean, ForkerGone, FileExistsError):
                # An earlier job's code left this sandbox unfit: this job never started here.
                write_frame(self.host_out, {"status": "error", "retry": True, "broken": True})
                return
            except Exception as exc:
                result = {"status": "error", "message": f"sandbox: {type(exc).__name__}: {exc}"}
            # Did the code kill the forker?
            result["broken"] = self.forker_dead()
            if result["broken"] and result["status"] == "passed":
                result["status"] = "failed"
                result["message"] = "the code killed a process of the sandbox"
            write_frame(self.host_out, result)
            if result["broken"]:
                return
            try:
                self.cleanup()
            except Exception:  # e.g. a tree too deep to walk: the next job goes elsewhere
                self.clean = False

    def launch(
        self, job: dict[str, Any], workdir: str, stdin: str, extra_fd: int | None
    ) -> tuple[int, socket.socket]:
        """Fork a clean candidate and hand it its job; it compiles while the caller goes on."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            socket.send_fds(self.forker_sock, [b"fork"], [theirs.fileno()])
            pid = self.forker_message(None, time.monotonic() + START_S)
        except (OSError, struct.error) as exc:
            raise ForkerGone from exc
        finally:
            theirs.close()
        self.candidates.add(pid)
        spec = {
            "code": job["code"],
            "module_name": "__main__" if job["kind"] == "io" else CANDIDATE_MODULE,
            "limits": job["limits"],
            "workdir": workdir,
            "stdin": stdin,
            "stdout": os.path.join(workdir, "stdout"),
            "stderr": os.path.join(workdir, "stderr"),
            "recursion": job["recursion"],
            "adapter": job.get("adapter"),
        }
        socket.send_fds(mine, [b"J"], [] if extra_fd is None else [extra_fd])
        write_frame(mine.fileno(), spec)
        return pid, mine

    def compiled(self, pid: int, mine: socket.socket, timeout: float) -> dict[str, Any] | None:
        """None once the candidate compiled; else the result (syntax error, crash, timeout)."""
        try:
            report = read_frame(mine.fileno(), time.monotonic() + timeout) or {}
        except TimeoutError:
            report = {"timeout": True}
        except (ValueError, OSError):
            report = {}
        mine.close()
        if report.get("compiled"):
            return None
        self.kill_all()
        note = self.candidate_exit(pid, time.monotonic() + 1.0)
        if "syntax_error" in report:
            return {"status": "syntax_error", "message": report["syntax_error"]}
        if report.get("timeout"):
            return {"status": "timeout", "message": f"still compiling after {timeout:g} s"}
        if note == f"exit code {SETUP_EXIT}":
            return {"status": "error", "message": "the candidate process could not be set up"}
        return {"status": "failed", "message": f"the code crashed the compiler ({note})"}

    def forker_message(self, pid: int | None, deadline: float) -> int:
        """The next forked pid (pid None) or that pid's exit status; stale messages skipped."""
        while True:
            self.forker_sock.settimeout(max(0.01, deadline - time.monotonic()))
            got, status = struct.unpack(">ii", self.forker_sock.recv(8))
            if pid is None and status == -1:
                return int(got)
            if got == pid and status != -1:
                return int(status)

    def candidate_exit(self, pid: int, deadline: float) -> str | None:
        try:
            status = self.forker_message(pid, deadline)
        except (TimeoutError, OSError, struct.error):
            return None
        self.candidates.discard(pid)
        return describe_exit(status)

    def output(self, workdir: str, job: dict[str, Any]) -> dict[str, str]:
        cap = job["capture_chars"]
        return {
            "stdout": tail(os.path.join(workdir, "stdout"), cap),
            "stderr": tail(os.path.join(workdir, "stderr"), cap),
        }

    def run_function(self, job: dict[str, Any], workdir: str) -> dict[str, Any]:
        timeout = job["limits"]["timeout_s"]
        deadline = time.monotonic() + timeout
        rpc_candidate, rpc_tests = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        started, report = self.launch(job, workdir, "/dev/null", rpc_candidate.fileno())
        rpc_candidate.close()
        verdict_r, verdict_w = os.pipe()
        tests_pid = os.fork()
        if tests_pid == 0:
            report.close()
            os.close(verdict_r)
            run_tests(job, rpc_tests.fileno(), verdict_w)
        os.close(verdict_w)
        rpc_tests.close()
        failed_start = self.compiled(started, report, timeout)
        try:
            result = failed_start or read_frame(verdict_r, deadline)
        except TimeoutError:
            result = {"status": "timeout", "message": f"no verdict within {timeout:g} s"}
        except ValueError:
            result = None
        os.close(verdict_r)
        if failed_start:
            self.children.append(tests_pid)
            return failed_start
        if result is None:
            result = {"status": "failed", "message": "the test process was killed"}
        self.children.append(tests_pid)
        if result["status"] == "failed" and "candidate process ended" in result["message"]:
            self.kill_all()
            exit_note = self.candidate_exit(started, time.monotonic() + 1.0)
            result["message"] += f" ({exit_note})"
            if exit_note == f"exit code {OOM_EXIT}":
                result["status"] = "oom"
        else:  # the verdict is in: stop both now, sweep the rest after replying
            for pid in (started, tests_pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            # A pass counts only if the forker reports the candidate's end: code that killed or
            # stopped it may have done so just before the verdict, before waitpid can tell.
            # (A forker that is alive answers at once; only a stopped one makes us wait.)
            if result["status"] == "passed":
                answered = self.candidate_exit(started, max(deadline, time.monotonic() + 1.0))
                self.forker_gone = self.forker_gone or answered is None
        return {**result, **self.output(workdir, job)}

    def run_io(self, job: dict[str, Any], workdir: str) -> dict[str, Any]:
        timeout = job["limits"]["timeout_s"]
        deadline = time.monotonic() + timeout
        cases = job["cases"]
        for number, (given, expected) in enumerate(cases, 1):
            done = {"cases_passed": number - 1, "cases": len(cases)}
            stdin = os.path.join(workdir, f"stdin{number}")
            with open(stdin, "w") as f:
                f.write(given)
            started, report = self.launch(job, workdir, stdin, None)
            failed_start = self.compiled(started, report, timeout)
            if failed_start:
                return {**failed_start, **done}
            note = self.candidate_exit(started, deadline)
            self.kill_all()
            if note is None:
                self.candidate_exit(started, time.monotonic() + 1.0)
                message = f"case {number}: no exit within {timeout:g} s"
                out = self.output(workdir, job)
                return {"status": "timeout", "message": message, **out, **done}
            out = self.output(workdir, job)
            whole = tail(os.path.join(workdir, "stdout"), job["limits"]["output_kb"] << 10)
            if note != "exit code 0" or normalize(whole) != normalize(expected):
                oom = note == f"exit code {OOM_EXIT}" or "MemoryError" in out["stderr"]
                message = (
                    f"case {number}: {note}; input {given[:200]!r}, expected {expected[:200]!r}, "
                    f"got {out['stdout'][:200]!r}"
                )
                return {"status": "oom" if oom else "failed", "message": message, **out, **done}
            empty(workdir)
        return {"status": "passed", "cases_passed": len(cases), "cases": len(cases)}

    def kill_all(self) -> bool:
        """Kill every process of this sandbox but the supervisor, the forker and init; False if
        some would not go."""
        keep = {1, os.getpid(), self.forker_pid}
        for _ in range(1000):
            pids = [p for p in self.living() if p not in keep]
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.0002)
        return False

    def living(self) -> list[int]:
        """Pids of this sandbox with a thread that is not a zombie (a process whose main thread
        exited shows as a zombie while its other threads run). Outside a pid namespace: only our
        own children and the forker's, best effort."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                states = []
                for task in os.listdir(f"/proc/{name}/task"):
                    with open(f"/proc/{name}/task/{task}/stat") as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue
            ours = self.contained or parent in (self.forker_pid, os.getpid())
            if ours and any(state != "Z" for state in states):
                found.append(int(name))
        return found

    def forker_dead(self) -> bool:
        if self.forker_gone:
            return True
        try:
            self.forker_gone = os.waitpid(self.forker_pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            self.forker_gone = True
        return self.forker_gone

    def reap(self, block: Sequence[int] = ()) -> None:
        """Collect our dead children: the test processes (waiting for those in `block`) and,
        as pid 1 of the sandbox, every orphan the code left."""
        for pid in block:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.forker_pid:
                self.forker_gone = True

    def cleanup(self) -> None:
        """Leave no process, file or IPC object behind (done after the verdict is sent)."""
        for pid in [*self.children, *self.candidates]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(self.candidates):
            self.candidate_exit(pid, time.monotonic() + 1.0)
        self.reap(self.children)
        self.children.clear()
        keep = {"1", str(os.getpid()), str(self.forker_pid)}
        if not self.contained or any(p.isdigit() and p not in keep for p in os.listdir("/proc")):
            self.clean = self.kill_all()  # something outlived its job: hunt it down
            self.reap()
        scratch = [self.root, "/dev/shm"] if self.contained else [self.root]
        for folder in scratch:
            empty(folder)
        if self.contained:
            remove_ipc_objects()
        # A tree the code made undeletable (or a process that would not die) retires the box.
        self.clean = self.clean and not any(os.listdir(folder) for folder in scratch)


def remove_ipc_objects() -> None:
    """Remove the System V shared memory, queues and semaphores left in this IPC namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, remove in (("shm", libc.shmctl), ("msg", libc.msgctl), ("sem", libc.semctl)):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            ident = int(row.split()[1])
            if kind == "sem":
                remove(ident, 0, IPC_RMID)
            else:
                remove(ident, IPC_RMID, None)


def leave_session_keyring() -> None:
    """Join a fresh anonymous session keyring, so keys of the process that started the
    sandbox (kept in its session keyring) are out of reach."""
    number = KEYCTL_SYSCALL.get(platform.machine())
    if number is None:
        raise OSError(f"no keyctl syscall number known for {platform.machine()}")
    if ctypes.CDLL(None, use_errno=True).syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        raise OSError(ctypes.get_errno(), "keyctl(KEYCTL_JOIN_SESSION_KEYRING) failed")


def normalize(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def empty(folder: str) -> None:
    """Remove everything in `folder` (which stays)."""
    for name in os.listdir(folder):
        remove_tree(os.path.join(folder, name))


def remove_tree(path: str) -> None:
    """Remove a file or tree the code may have made hostile (no symlinks followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
        for root, dirs, _ in os.walk(path):  # directories the code made unreadable
            for name in dirs:
                sub = os.path.join(root, name)
                if not os.path.islink(sub):
                    os.chmod(sub, 0o700)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.unlink(path)


def main() -> None:
    host_in, host_out = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    contained = "--contained" in sys.argv
    if contained:
        leave_session_keyring()
    for arg in sys.argv[2:]:
        if arg.startswith("--path="):
            sys.path.extend(arg.removeprefix("--path=").split(os.pathsep))
    os.chdir(sys.argv[1])
    for name in PRELOAD:  # once here instead of in every forked candidate and test process
        __import__(name)
    nondumpable()
    Supervisor(host_in, host_out, contained).serve()


if __name__ == "__main__":
    main()
