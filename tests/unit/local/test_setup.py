"""setup-local's build flags, its own wheel cache key, and how it reads what a build runs on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pytest_llmeval.errors import LocalServerCrash, LocalServerError
from pytest_llmeval.local.setup import (
    Smoke,
    cmake_args,
    cpu_features,
    rebuild_reason,
    unportable,
    wheel_dir,
)

# The line a native build printed at -lv 4 on this project's 2-core x86-64 machine, before it
# died with SIGILL on an AMX instruction (tilezero) while warming up.
NATIVE_LOG = (
    "0.00.011.477 I cmn  common_param: system_info: n_threads = 1 (n_threads_batch = 1) / 2 | "
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
    "BMI2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | "
    "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | \n"
)
PORTABLE_LOG = (
    "0.00.005.520 I cmn  common_param: system_info: n_threads = 2 (n_threads_batch = 2) / 2 | "
    "CPU : SSE3 = 1 | SSSE3 = 1 | "
    "AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
    "REPACK = 1 |\n"
)


def test_x86_64_builds_for_avx2_and_turns_everything_newer_off() -> None:
    args = cmake_args(native=False, arch="x86_64")
    assert "-DGGML_NATIVE=OFF" in args
    for on in ("AVX", "AVX2", "FMA", "F16C"):
        assert f"-DGGML_{on}=ON" in args
    for off in ("AVX512", "AVX512_VNNI", "AVX_VNNI", "AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{off}=OFF" in args
    assert not any("march=native" in arg for arg in args)


def test_aarch64_keeps_llama_cpp_portable_default_and_native_is_one_flag() -> None:
    assert [a for a in cmake_args(False, "aarch64") if "GGML" in a] == ["-DGGML_NATIVE=OFF"]
    assert [a for a in cmake_args(True, "x86_64") if "GGML" in a] == ["-DGGML_NATIVE=ON"]
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in cmake_args(True, "x86_64")


def test_the_wheel_cache_is_keyed_by_flags_and_machine(tmp_path: Path) -> None:
    portable = wheel_dir(tmp_path, cmake_args(False, "x86_64"), "x86_64")
    native = wheel_dir(tmp_path, cmake_args(True, "x86_64"), "x86_64")
    arm = wheel_dir(tmp_path, cmake_args(False, "aarch64"), "aarch64")
    assert len({portable, native, arm}) == 3
    assert portable == wheel_dir(tmp_path, cmake_args(False, "x86_64"), "x86_64")
    assert re.fullmatch(r"11434\.0\.0-x86_64-[0-9a-f]{16}", portable.name)
    assert portable.parent == tmp_path / "llama-server"


def test_system_info_tells_a_native_build_from_a_portable_one() -> None:
    native = cpu_features(NATIVE_LOG)
    assert native["AVX2"] and native["AMX_INT8"] and native["AVX512"]
    assert unportable(native, "x86_64") == [
        "AMX_INT8", "AVX512", "AVX512_BF16", "AVX512_VBMI", "AVX512_VNNI", "AVX_VNNI",
    ]  # fmt: skip
    assert unportable(cpu_features(PORTABLE_LOG), "x86_64") == []
    assert unportable(native, "aarch64") == []
    assert cpu_features("no such line") == {}
    assert "n_threads" not in native


def test_a_crash_or_a_native_wheel_is_rebuilt_other_failures_are_not() -> None:
    crash = LocalServerCrash("llama-server was killed by SIGILL", 4)
    assert "crashed" in rebuild_reason(crash, None, False, "x86_64")
    native_build = Smoke(cpu_features(NATIVE_LOG), "Hello", 1.0)
    portable_build = Smoke(cpu_features(PORTABLE_LOG), "Hello", 1.0)
    assert rebuild_reason(None, native_build, False, "x86_64") == (
        "the installed llama-server is not the portable build (it uses AMX_INT8, AVX512, "
        "AVX512_BF16, AVX512_VBMI, AVX512_VNNI, AVX_VNNI)"
    )
    assert rebuild_reason(None, native_build, True, "x86_64") == ""
    assert rebuild_reason(None, portable_build, False, "x86_64") == ""
    assert rebuild_reason(LocalServerError("no such model file"), None, False, "x86_64") == ""


def test_setup_local_help_documents_native_and_rebuild() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_llmeval", "setup-local", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "--native" in out and "--rebuild" in out
