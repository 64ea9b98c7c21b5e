"""The sandbox against hostile code: every attack ends in a non-passing verdict, the host is
untouched, and the pool keeps working afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.errors import SandboxError
from pytest_llmeval.sandbox.host import Limits, Sandbox, SandboxResult

ADD_TESTS = (
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"
)
GOOD = "def add(a, b):\n    return a + b\n"
SECRET = "sk-canary-5f1c0ffee"


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(Limits(timeout_s=3.0, memory_mb=256), size=2) as pool:
        yield pool.start()


def attack(
    box: Sandbox, body: str, *, at_import: str = "", timeout: float | None = None
) -> SandboxResult:
    """Run `body` as the add() function (and `at_import` at module level) against ADD_TESTS."""
    code = (
        textwrap.dedent(at_import)
        + "\ndef add(a, b):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    result = box.run(code, ADD_TESTS, "add", timeout=timeout)
    assert not result.passed, result
    return result


def still_works(box: Sandbox) -> None:
    assert box.run(GOOD, ADD_TESTS, "add").status == "passed"


def host_processes(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(cmdline)
    return found


def test_passes_a_correct_solution_and_fails_a_wrong_one(box: Sandbox) -> None:
    assert box.run(GOOD, ADD_TESTS, "add").status == "passed"
    wrong = box.run("def add(a, b):\n    return a - b\n", ADD_TESTS, "add")
    assert wrong.status == "failed"
    assert "assert candidate(1, 2) == 3" in (wrong.message or "")
    with pytest.raises(AssertionError, match="generated code failed"):
        wrong.check()


def test_syntax_error_is_its_own_status(box: Sandbox) -> None:
    result = box.run("def add(a, b)\n    return a + b\n", ADD_TESTS, "add")
    assert result.status == "syntax_error"
    assert "SyntaxError" in (result.message or "")


def test_plain_data_crosses_with_its_type(box: Sandbox) -> None:
    code = "def f(x):\n    return (x, {1, 2}, {'k': [1.5, None]}, b'\\x00', 2**80, float('inf'))\n"
    tests = (
        "def check(candidate):\n"
        "    got = candidate((1, 'a'))\n"
        "    assert got == ((1, 'a'), {1, 2}, {'k': [1.5, None]}, b'\\x00', 2**80, float('inf'))\n"
        "    assert type(got[0]) is tuple\n"
    )
    assert box.run(code, tests, "f").status == "passed"


def test_candidate_exceptions_keep_their_builtin_type(box: Sandbox) -> None:
    code = "def f(x):\n    raise ValueError('bad ' + x)\n"
    tests = (
        "def check(candidate):\n"
        "    try:\n        candidate('input')\n    except ValueError as e:\n"
        "        assert str(e) == 'bad input'\n    else:\n        assert False\n"
    )
    assert box.run(code, tests, "f").status == "passed"


def test_context_gives_trusted_helpers_to_the_tests(box: Sandbox) -> None:
    context = "def helper(x):\n    return x * 10\n"
    tests = "def check(candidate):\n    assert candidate(2) == helper(2)\n"
    assert box.run("def f(x):\n    return 20\n", tests, "f", context=context).passed
    # MBPP style: the tests call the function by its name.
    assert box.run("def f(x):\n    return x\n", "assert f(3) == 3\n", "f").passed


def test_stdin_stdout_programs(box: Sandbox) -> None:
    program = "a, b = map(int, input().split())\nprint(a + b)\n"
    assert box.run_io(program, [("1 2\n", "3\n"), ("5 5", "10")]).passed
    wrong = box.run_io(program, [("1 2\n", "3\n"), ("2 2\n", "5\n")])
    assert (wrong.status, wrong.cases_passed, wrong.cases) == ("failed", 1, 2)
    assert "expected '5\\n'" in (wrong.message or "")
    assert box.run_io("import sys\nprint(1)\nsys.exit()\n", [("", "1")]).passed
    crash = box.run_io("print(1)\nraise SystemExit(3)\n", [("", "1")])
    assert crash.status == "failed" and "exit code 3" in (crash.message or "")
    assert box.run_io("while True: pass\n", [("", "")], timeout=1).status == "timeout"
    assert box.run_io("print(", [("", "")]).status == "syntax_error"


@pytest.mark.parametrize(
    "body",
    ["while True:\n    pass", "import time\ntime.sleep(60)"],
    ids=["busy loop", "sleep"],
)
def test_endless_code_times_out_from_the_host(box: Sandbox, body: str) -> None:
    start = time.monotonic()
    result = attack(box, body, timeout=1.0)
    assert result.status == "timeout"
    assert time.monotonic() - start < 4
    still_works(box)


def test_loop_that_ignores_signals_times_out(box: Sandbox) -> None:
    at_import = """
        import signal
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGXCPU, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
    """
    assert (
        attack(box, "while True:\n    pass", at_import=at_import, timeout=1.0).status == "timeout"
    )
    still_works(box)


def test_reading_stdin_gets_end_of_file_not_a_hang(box: Sandbox) -> None:
    result = attack(box, "return int(input())")
    assert result.status == "failed" and "EOFError" in (result.message or "")


def test_fork_bomb_is_bounded_and_cleaned_up(box: Sandbox) -> None:
    body = """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    result = attack(box, body, timeout=2.0)
    assert result.status in ("timeout", "failed")
    still_works(box)
    counted = box.run(
        "import os\ndef f():\n    return len([p for p in os.listdir('/proc') if p.isdigit()])\n",
        "def check(candidate):\n    assert candidate() <= 5, candidate()\n",
        "f",
    )
    assert counted.passed, counted.message  # init, supervisor, forker, tests, candidate


def test_a_setsid_child_does_not_outlive_its_sample(box: Sandbox) -> None:
    marker = f"{os.getpid()}{int(time.time())}"
    body = f"""
        import os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv('/bin/sleep', ['sleep', '{marker}'])
            os._exit(0)
        import time
        time.sleep(0.3)
        return a + b
    """
    box.run("def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    "), ADD_TESTS, "add")
    time.sleep(0.3)
    assert host_processes(f"sleep {marker}") == []


def test_huge_allocation_is_out_of_memory(box: Sandbox) -> None:
    result = attack(box, "x = bytearray(8 << 30)\nreturn len(x)")
    assert result.status == "oom"
    still_works(box)


def test_deep_recursion_fails_without_hurting_the_host(box: Sandbox) -> None:
    assert attack(box, "return add(a, b)").status == "failed"
    crash = attack(box, "import sys\nsys.setrecursionlimit(10**7)\nreturn add(a, b)")
    assert crash.status in ("failed", "oom", "timeout")
    still_works(box)


@pytest.mark.parametrize(
    "how",
    [
        "os.remove(path)",
        "os.unlink(path)",
        "import posix; posix.unlink(path)",
        "io.open(path, 'w').write('pwned')",
        "open(path, 'a').write('pwned')",
        "os.rename(path, path + '.moved')",
    ],
)
def test_host_files_cannot_be_touched(box: Sandbox, tmp_path: Path, how: str) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("original")
    body = f"import io, os\npath = {str(target)!r}\ntry:\n    {how}\nexcept Exception:\n    pass\n"
    attack(box, body + "return 0")
    assert target.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_host_files_cannot_be_read_or_written_in_system_dirs(box: Sandbox, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    stdlib = os.path.dirname(os.__file__)
    body = f"""
        found = []
        paths = {str(secret_file)!r}, '/etc/passwd', '/root/.bashrc', {os.getcwd()!r} + '/x.toml'
        for path in paths:
            try:
                found.append(open(path).read())
            except OSError:
                pass
        for path in ({stdlib!r} + '/llmeval_pwned.py', '/usr/llmeval_pwned'):
            try:
                open(path, 'w').write('x')
            except OSError:
                pass
        print(found)
        return found
    """
    result = attack(box, body)
    assert SECRET not in result.stdout + (result.message or "")
    assert not os.path.exists(os.path.join(stdlib, "llmeval_pwned.py"))
    assert not os.path.exists("/usr/llmeval_pwned")


def test_environment_and_proc_environ_hold_no_secret(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with Sandbox(size=1) as fresh:  # started after the secret was planted
        body = """
            import glob, os
            seen = [repr(dict(os.environ))]
            for path in glob.glob('/proc/*/environ'):
                try:
                    seen.append(open(path, 'rb').read().decode(errors='replace'))
                except OSError:
                    pass
            print(seen)
            return ' '.join(seen)
        """
        code = "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")
        result = fresh.run(code, ADD_TESTS, "add")
    assert not result.passed
    assert SECRET not in result.stdout + result.stderr + (result.message or "")


def test_no_network_even_to_the_host_loopback(box: Sandbox) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    body = f"""
        import socket
        for host in ('127.0.0.1', '10.0.0.1', 'example.com'):
            try:
                socket.create_connection((host, {port}), timeout=0.5)
                return 'connected'
            except OSError:
                pass
        return 'offline'
    """
    attack(box, body)
    thread.join()
    server.close()
    assert accepted == []


def test_stdout_flood_is_capped(box: Sandbox) -> None:
    result = attack(box, "while True:\n    print('x' * 10000)")
    assert result.status in ("failed", "timeout")
    assert len(result.stdout) <= Limits().capture_chars + 100
    still_works(box)


@pytest.mark.parametrize(
    "at_import",
    ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit(0)"],
)
def test_exiting_at_import_is_not_a_pass(box: Sandbox, at_import: str) -> None:
    result = attack(box, "return a + b", at_import=at_import)
    assert result.status == "failed"


@pytest.mark.parametrize(
    "at_import",
    [
        "import os\nos.kill(os.getppid(), 9)",
        "import os\nos.kill(-1, 9)",
        "import os\nfor p in os.listdir('/proc'):\n"
        "    p.isdigit() and int(p) != os.getpid() and os.kill(int(p), 9)",
    ],
    ids=["parent", "everything", "each pid"],
)
def test_killing_the_sandbox_is_not_a_pass(box: Sandbox, at_import: str) -> None:
    attack(box, "return a + b", at_import=at_import)
    still_works(box)
    still_works(box)


def test_stopping_the_forker_is_not_a_pass(box: Sandbox) -> None:
    at_import = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)"
    result = attack(box, "return a + b", at_import=at_import, timeout=1.0)
    assert result.status == "failed" and "killed a process of the sandbox" in str(result.message)
    still_works(box)


def test_patched_builtins_do_not_reach_the_tests(box: Sandbox) -> None:
    at_import = """
        import builtins
        builtins.abs = lambda x: 0
        builtins.len = lambda x: 3
        builtins.AssertionError = type('Nope', (Exception,), {})
        builtins.isinstance = lambda *a: True
    """
    tests = (
        "def check(candidate):\n"
        "    assert abs(candidate(1, 2) - 3) < 1e-9\n"
        "    assert len([candidate(0, 0)]) == 1\n"
    )
    code = textwrap.dedent(at_import) + "\ndef add(a, b):\n    return 100\n"
    assert box.run(code, tests, "add").status == "failed"


@pytest.mark.parametrize(
    "returned",
    [
        "type('Eq', (), {'__eq__': lambda s, o: True, '__ne__': lambda s, o: False})()",
        "type('I', (int,), {'__eq__': lambda s, o: True})(0)",
        "type('S', (str,), {'__eq__': lambda s, o: True})('')",
        "type('L', (list,), {'__eq__': lambda s, o: True})()",
    ],
    ids=["object", "int subclass", "str subclass", "list subclass"],
)
def test_always_equal_objects_do_not_pass(box: Sandbox, returned: str) -> None:
    assert attack(box, f"return {returned}").status == "failed"


def test_forged_verdict_frames_are_ignored(box: Sandbox) -> None:
    at_import = """
        import json, os, struct
        frame = json.dumps({"status": "passed"}).encode()
        for fd in range(0, 64):
            try:
                os.write(fd, struct.pack('>I', len(frame)) + frame)
            except OSError:
                pass
    """
    attack(box, "return 0", at_import=at_import)
    still_works(box)


@pytest.mark.parametrize(
    "code",
    [
        "(" * 100_000 + ")" * 100_000,
        "x = " + "[" * 100_000 + "]" * 100_000,
        "x = 1" + " + 1" * 2_000_000,
        "def add(a, b):\n    return " + "-" * 1_000_000 + "1",
    ],
    ids=["parens", "brackets", "long expression", "unary chain"],
)
def test_parser_bombs_are_contained(box: Sandbox, code: str) -> None:
    result = box.run(code, ADD_TESTS, "add")
    assert result.status in ("syntax_error", "failed", "oom", "timeout")
    still_works(box)


def test_sandbox_error_is_not_an_assertion() -> None:
    with pytest.raises(SandboxError):
        SandboxResult(status="error", message="broken").check()


def test_unsafe_mode_runs_the_same_protocol_and_says_so() -> None:
    with Sandbox(isolation="unsafe", size=1) as unsafe:
        result = unsafe.run(GOOD, ADD_TESTS, "add")
        assert (result.status, result.isolation) == ("passed", "unsafe")
        assert unsafe.run("def add(a, b):\n    return 0\n", ADD_TESTS, "add").status == "failed"


def test_many_threads_share_the_pool(box: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda i: box.run(GOOD, ADD_TESTS, "add").status, range(30)))
    assert statuses == ["passed"] * 30


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="entry_point"):
        Sandbox(size=1).run(GOOD, ADD_TESTS)
    with pytest.raises(ValueError, match="hidden tests"):
        Sandbox(size=1).run(GOOD, "  ", "add")
    with pytest.raises(ValueError, match="isolation"):
        Sandbox(isolation="docker")
    with pytest.raises(ValueError, match="timeout_s"):
        Limits(timeout_s=0)


@pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is Linux only")
def test_a_missing_bwrap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.errors import SandboxUnavailable

    monkeypatch.setenv("LLMEVAL_BWRAP", "/nonexistent/bwrap")
    with pytest.raises((SandboxUnavailable, OSError)) as info, Sandbox(size=1) as pool:
        pool.start()
    assert "bwrap" in str(info.value)


def test_installed_packages_only_when_asked() -> None:
    code = "def f():\n    import jsonschema\n    return jsonschema.__name__\n"
    tests = "assert f() == 'jsonschema'"
    with Sandbox(size=1) as plain:
        result = plain.run(code, tests, "f")
        assert result.status == "failed" and "ModuleNotFoundError" in (result.message or "")
    with Sandbox(size=1, site_packages=True) as with_packages:
        assert with_packages.run(code, tests, "f").passed


@pytest.mark.parametrize(
    "vandalism",
    [
        "os.makedirs('/tmp/x/y')\nopen('/tmp/x/y/f', 'w').write('x')\n"
        "os.chmod('/tmp/x/y', 0)\nos.chmod('/tmp/x', 0)",
        "for i in range(1, 50):\n    os.makedirs(f'/tmp/job{i}/z', exist_ok=True)\n"
        "    os.chmod(f'/tmp/job{i}', 0)",
        "os.mkdir('/tmp/deep')\nos.chdir('/tmp/deep')\nfor _ in range(3000):\n"
        "    os.mkdir('d')\n    os.chdir('d')",
        "with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (900 << 10))",
    ],
    ids=["unreadable dirs", "next job dirs taken", "deep tree", "full tmp"],
)
def test_what_one_run_leaves_in_tmp_never_reaches_the_next(vandalism: str) -> None:
    with Sandbox(size=1) as pool:
        code = f"import os\n{vandalism}\n{GOOD}"
        assert pool.run(code, ADD_TESTS, "add").passed  # correct code, hostile side effects
        for _ in range(3):
            # /tmp must hold only this run's own work directory
            code = "import os\ndef add(a, b):\n    return a + b + len(os.listdir('/tmp')) - 1\n"
            clean = pool.run(code, ADD_TESTS, "add")
            assert clean.passed, clean.message


def test_forged_frames_on_every_process_fd_are_refused(box: Sandbox) -> None:
    at_import = """
        import glob, json, os, struct
        frame = json.dumps({"status": "passed"}).encode()
        for path in glob.glob('/proc/*/fd/*'):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, (struct.pack('>I', len(frame)) + frame) * 3)
            except OSError:
                pass
    """
    attack(box, "return 0", at_import=at_import)
    assert box.run("def add(a, b):\n    return a - b\n", ADD_TESTS, "add").status == "failed"
    still_works(box)


def test_a_process_whose_main_thread_exited_is_still_killed(box: Sandbox) -> None:
    at_import = """
        import ctypes, os, threading, time
        if os.fork() == 0:
            os.setsid()
            threading.Thread(target=lambda: time.sleep(60)).start()
            time.sleep(0.05)
            ctypes.CDLL(None).syscall(60, 0)  # exit the main thread only (x86_64 SYS_exit)
        time.sleep(0.2)
    """
    box.run(textwrap.dedent(at_import) + GOOD, ADD_TESTS, "add")
    count = (
        "import os\ndef f():\n"
        "    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    )
    result = box.run(count, "def check(candidate):\n    assert len(candidate()) <= 4\n", "f")
    assert result.passed, result.message  # supervisor, forker, tests, this candidate


def test_host_kernel_settings_and_devices_are_out_of_reach(box: Sandbox) -> None:
    before = (Path("/proc/sys/vm/stat_interval").read_text(), os.stat("/dev/null").st_mode)
    body = """
        import os
        done = []
        for path in ('/proc/sys/vm/stat_interval', '/proc/sysrq-trigger', '/x', '/dev/x'):
            try:
                with open(path, 'w') as f:
                    f.write('1')
                done.append(path)
            except OSError:
                pass
        for call in (lambda: os.chmod('/dev/null', 0o600), lambda: os.setuid(0)):
            try:
                call()
                done.append('call')
            except OSError:
                pass
        return len(done)
    """
    code = "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    result = box.run(code, "def check(candidate):\n    assert candidate(1, 2) == 0\n", "add")
    assert result.passed, result.message  # every write and call was refused
    after = (Path("/proc/sys/vm/stat_interval").read_text(), os.stat("/dev/null").st_mode)
    assert after == before


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="keyctl numbers below are x86_64's")
def test_keys_of_the_host_session_keyring_are_out_of_reach() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    key = b"sk-canary-keyring"
    # add_key("user", "llmeval-canary", key, len, KEY_SPEC_SESSION_KEYRING) in this process's
    # session keyring, which a sandbox started from here would inherit.
    if libc.syscall(248, b"user", b"llmeval-canary", key, len(key), -3) < 0:
        pytest.skip(f"cannot add a key here (errno {ctypes.get_errno()})")
    body = """
        import ctypes
        libc = ctypes.CDLL(None)
        serial = libc.syscall(250, 10, -3, b'user', b'llmeval-canary', 0)  # KEYCTL_SEARCH
        buffer = ctypes.create_string_buffer(64)
        libc.syscall(250, 11, serial, buffer, 64)  # KEYCTL_READ
        return buffer.value.decode()
    """
    code = "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    with Sandbox(size=1) as fresh:
        result = fresh.run(code, "def check(candidate):\n    assert candidate(1, 2) == ''\n", "add")
    assert result.passed, result.message


def test_shared_memory_and_dev_files_do_not_carry_over(box: Sandbox) -> None:
    at_import = """
        import ctypes, os
        for path in ('/dev/shm/x', '/x', '/dev/x'):
            try:
                open(path, 'w').write('left behind')
            except OSError:
                pass
        ctypes.CDLL(None).shmget(0x1234, 1 << 20, 0o1666)  # IPC_CREAT | 0666
    """
    box.run(textwrap.dedent(at_import) + GOOD, ADD_TESTS, "add")
    probe = """
        import ctypes, os
        def f():
            return os.listdir('/dev/shm'), ctypes.CDLL(None).shmget(0x1234, 0, 0) >= 0
    """
    tests = "def check(candidate):\n    assert candidate() == ([], False)\n"
    result = box.run(textwrap.dedent(probe), tests, "f")
    assert result.passed, result.message


def test_stop_iteration_from_the_candidate_cannot_end_the_tests_early(box: Sandbox) -> None:
    tests = (
        "def check(candidate):\n"
        "    assert all(map(candidate, [2, 4, 6]))\n"
        "    assert not any(map(candidate, [1, 3]))\n"
    )
    result = box.run("def is_even(n):\n    raise StopIteration\n", tests, "is_even")
    assert result.status == "failed"


def test_long_program_output_is_compared_in_full(box: Sandbox) -> None:
    expected = "".join(f"{i}\n" for i in range(5000))  # 23,890 characters
    assert len(expected) > Limits().capture_chars
    assert box.run_io("for i in range(5000):\n    print(i)\n", [("", expected)]).passed


def test_a_stuck_sandbox_cannot_block_the_host_on_write() -> None:
    from pytest_llmeval.sandbox.worker import write_frame

    read_end, write_end = os.pipe()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        write_frame(write_end, {"data": "x" * (1 << 20)}, time.monotonic() + 0.3)
    assert time.monotonic() - start < 2
    os.close(read_end)
    os.close(write_end)
