"""Run settings: the gateway and its models, from TOML, environment and command line."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.local.models import BUNDLED

if TYPE_CHECKING:
    from pytest_llmeval.report.schema import ModelInfo

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
APIS = ("chat", "completion", "embedding")
JUDGE_FORMATS = ("json_schema", "json_object", "text")
DESIGNS = ("sequential", "fixed")  # how not_worse and proven verdicts stop
DEFAULT_CALIBRATION = "llmeval-calibration.json"

_TOP_KEYS = {
    "base_url",
    "api_key_env",
    "models",
    "default_models",
    "samples",
    "design",
    "concurrency",
    "timeout",
    "retries",
    "params",
    "ahead_fixtures",
    "judge",
    "judge_format",
    "embedding",
    "calibration",
    "history",
}
_MODEL_KEYS = {
    "model",
    "api",
    "base_url",
    "api_key_env",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cached_input_cost_per_mtok",
    "rpm",
    "tpm",
    "max_concurrency",
    "max_output_tokens",
    "params",
    "local",
    "parallel",
    "threads",
    "context",
}
_LOCAL_ONLY = ("parallel", "threads", "context")
# USD per 1M tokens: input, output, cached input (None: cached input is billed as input).
PRICE_PRESETS: Mapping[str, tuple[float, float, float | None]] = {
    "deepseek-v4-flash": (0.14, 0.28, None),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "claude-sonnet-4": (3.00, 15.00, 0.30),
}


@dataclass(frozen=True)
class ModelSettings:
    """One model as the run sees it: the alias used in test ids and how to reach it."""

    name: str
    model_id: str
    api: str = "chat"
    base_url: str | None = None
    api_key_env: str | None = None
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    cached_input_cost_per_mtok: float | None = None
    price_source: str | None = None
    max_concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    max_output_tokens: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    local: str | None = None
    parallel: int = 4
    threads: int | None = None
    context: int = 2048

    def cost_usd(
        self, input_tokens: int, output_tokens: int, cached_tokens: int = 0
    ) -> float | None:
        """Price of one call, or None when the model has no prices (configured or preset)."""
        if self.input_cost_per_mtok is None and self.output_cost_per_mtok is None:
            return None
        input_price = self.input_cost_per_mtok or 0.0
        cached_price = self.cached_input_cost_per_mtok
        cached = min(cached_tokens, input_tokens) if cached_price is not None else 0
        return (
            (input_tokens - cached) * input_price
            + cached * (cached_price or 0.0)
            + output_tokens * (self.output_cost_per_mtok or 0.0)
        ) / 1e6

    def priced(self) -> ModelSettings:
        """Fill in prices when none are configured: $0 for local models, else a known preset."""
        if self.input_cost_per_mtok is not None or self.output_cost_per_mtok is not None:
            return replace(self, price_source=self.price_source or "config")
        if self.local is not None:
            return replace(
                self, input_cost_per_mtok=0.0, output_cost_per_mtok=0.0, price_source="local"
            )
        preset = PRICE_PRESETS.get(self.model_id) or PRICE_PRESETS.get(self.name)
        if preset is None:
            return self
        return replace(
            self,
            input_cost_per_mtok=preset[0],
            output_cost_per_mtok=preset[1],
            cached_input_cost_per_mtok=self.cached_input_cost_per_mtok or preset[2],
            price_source="preset",
        )

    def to_dict(self) -> ModelInfo:
        """Plain, secret-free description for reports."""
        return {
            "name": self.name,
            "model_id": self.model_id,
            "api": self.api,
            "input_cost_per_mtok": self.input_cost_per_mtok,
            "output_cost_per_mtok": self.output_cost_per_mtok,
            "cached_input_cost_per_mtok": self.cached_input_cost_per_mtok,
            "price_source": self.price_source,
        }


@dataclass(frozen=True)
class Settings:
    """Everything the plugin needs to talk to models, already merged from all sources."""

    source: str = "defaults"
    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    api_key_env_explicit: bool = False
    models: Mapping[str, ModelSettings] = field(default_factory=dict)
    selected: tuple[str, ...] = ()
    samples: int = 10
    design: str = "sequential"  # the markers' default: "fixed" for fixed-N with curtailment
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 2
    params: Mapping[str, Any] = field(default_factory=dict)
    # Fixtures, used but not taken as arguments, that cannot change what a case run ahead does.
    ahead_fixtures: frozenset[str] = frozenset()
    judge: str | None = None  # the model that grades outputs, apart from the models under test
    judge_format: str = "json_schema"  # how the judge is asked for JSON (response_format)
    embedding: str | None = None  # the model behind `similar`
    calibration: str = DEFAULT_CALIBRATION  # judge calibrations, relative to the rootdir
    history: str | None = None  # the --llm-history database, relative to the rootdir

    def local_models(self) -> list[ModelSettings]:
        """Models served by a managed local server: the selected ones and, in a run that has
        models, the judge and the embedding model."""
        names = list(self.selected)
        if names:
            names += [n for n in (self.judge, self.embedding) if n and n not in names]
        return [m for m in map(self.model, names) if m.local is not None]

    def with_urls(self, urls: Mapping[str, str]) -> Settings:
        """The same settings with managed servers' URLs filled in."""
        models = {n: replace(m, base_url=urls.get(n, m.base_url)) for n, m in self.models.items()}
        return replace(self, models=models)

    def model(self, name: str) -> ModelSettings:
        """Settings for a model name; undeclared names are raw ids at the default gateway."""
        found = self.models.get(name)
        return found if found is not None else ModelSettings(name=name, model_id=name).priced()

    def key_env(self, model: ModelSettings) -> str:
        """Name of the environment variable holding this model's API key."""
        return model.api_key_env or self.api_key_env

    def key_required(self, model: ModelSettings) -> bool:
        """A key named in the config must be set; a managed local server needs none."""
        explicit = self.api_key_env_explicit or model.api_key_env is not None
        return explicit and model.local is None

    def missing_keys(self, env: Mapping[str, str]) -> str | None:
        """One message for every selected model whose configured key variable is unset."""
        missing: dict[tuple[str, str], list[str]] = {}
        for model in map(self.model, self.selected):
            name = self.key_env(model)
            if self.key_required(model) and not env.get(name):
                where = f"[models.{model.name}] api_key_env" if model.api_key_env else "api_key_env"
                missing.setdefault((name, where), []).append(model.name)
        if not missing:
            return None
        lines = [
            f"environment variable {name} is not set ({where} in {self.source}; needed by "
            f"{', '.join(models)}); export it before running"
            for (name, where), models in missing.items()
        ]
        return "\n".join(lines)


def find_config_file(rootdir: Path) -> Path | None:
    """`llmeval.toml` wins over `pyproject.toml` with a [tool.llmeval] table."""
    candidate = rootdir / "llmeval.toml"
    if candidate.is_file():
        return candidate
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file() and "llmeval" in _read_toml(pyproject).get("tool", {}):
        return pyproject
    return None


def load_settings(
    path: Path | None,
    env: Mapping[str, str],
    *,
    models: str | None = None,
    base_url: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    judge: str | None = None,
    embedding: str | None = None,
) -> Settings:
    """Merge file < environment < command line into Settings; raise ConfigError on bad input."""
    settings = Settings() if path is None else parse_table(*_config_table(path))
    if env.get("OPENAI_BASE_URL"):
        settings = replace(settings, base_url=env["OPENAI_BASE_URL"])
    overrides: dict[str, Any] = {
        "base_url": base_url,
        "concurrency": concurrency,
        "timeout": timeout,
        "retries": retries,
        "judge": judge,
        "embedding": embedding,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    if models is not None:
        settings = replace(settings, selected=parse_model_list(models, "--llm-models"))
    check_known(settings, settings.selected, "--llm-models")
    for key, given in (("judge", judge), ("embedding", embedding)):
        name = getattr(settings, key)
        if name is not None:
            check_known(settings, (name,), f"--llm-{key}" if given else f"{settings.source} {key}")
    return settings


def parse_model_list(text: str, where: str) -> tuple[str, ...]:
    """Split `a,b` into names, rejecting empty entries and duplicates."""
    names = tuple(part.strip() for part in text.split(","))
    if not text.strip():
        return ()
    if any(not name for name in names):
        raise ConfigError(f"{where}: empty model name in {text!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: a model is named twice in {text!r}")
    return names


def check_known(settings: Settings, names: tuple[str, ...], where: str) -> None:
    """Once models are declared, every name must be one of them (catches typos)."""
    if not settings.models:
        return
    for name in names:
        if name not in settings.models:
            known = ", ".join(sorted(settings.models))
            raise ConfigError(
                f"{where}: unknown model {name!r}; declare it in [models.{name}] "
                f"of {settings.source} or pick one of: {known}"
            )


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only where there is a file to read

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _config_table(path: Path) -> tuple[Mapping[str, Any], str]:
    data = _read_toml(path)
    tool = data.get("tool", {})
    if isinstance(tool, dict) and "llmeval" in tool:
        return tool["llmeval"], f"{path} [tool.llmeval]"
    if path.name == "pyproject.toml":
        raise ConfigError(f"{path}: no [tool.llmeval] table")
    return data, str(path)


def parse_table(table: Mapping[str, Any], source: str) -> Settings:
    """Validate one config table; every error names the source and key."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: expected a table")
    _check_keys(table, _TOP_KEYS, source)
    raw_models = table.get("models", {})
    declared: dict[str, ModelSettings] = {}
    selected: tuple[str, ...] = ()
    if isinstance(raw_models, list):
        selected = tuple(_name_list(raw_models, source, "models"))
    elif isinstance(raw_models, Mapping):
        for name, entry in raw_models.items():
            declared[name] = _parse_model(name, entry, f"{source} models.{name}")
    else:
        raise ConfigError(f"{source}: 'models' must be a list of names or a table of models")
    if "default_models" in table:
        if selected:
            raise ConfigError(
                f"{source}: give either a 'models' list or 'default_models', not both"
            )
        selected = tuple(_name_list(table["default_models"], source, "default_models"))
    settings = Settings(
        source=source,
        base_url=_opt_str(table, "base_url", source),
        api_key_env=_opt_str(table, "api_key_env", source) or DEFAULT_API_KEY_ENV,
        api_key_env_explicit="api_key_env" in table,
        models=declared,
        selected=selected,
        samples=_int(table, "samples", source, 10, minimum=1),
        design=_choice(table, "design", source, DESIGNS),
        concurrency=_int(table, "concurrency", source, 8, minimum=1),
        timeout=_float(table, "timeout", source, 60.0, positive=True) or 60.0,
        retries=_int(table, "retries", source, 2, minimum=0),
        params=_params(table, source),
        ahead_fixtures=frozenset(_fixture_names(table.get("ahead_fixtures", []), source)),
        judge=_opt_str(table, "judge", source) or None,
        judge_format=_choice(table, "judge_format", source, JUDGE_FORMATS),
        embedding=_opt_str(table, "embedding", source) or None,
        calibration=_opt_str(table, "calibration", source) or DEFAULT_CALIBRATION,
        history=_opt_str(table, "history", source) or None,
    )
    check_known(settings, selected, f"{source} default_models")
    return settings


def _parse_model(name: str, entry: Any, where: str) -> ModelSettings:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(entry, _MODEL_KEYS, where)
    local = _opt_str(entry, "local", where)
    if local == "":
        raise ConfigError(f"{where}: 'local' must name a bundled model or a .gguf path")
    if local is None:
        for key in _LOCAL_ONLY:
            if key in entry:
                raise ConfigError(f"{where}: {key!r} only applies to a model with 'local'")
    elif "base_url" in entry:
        raise ConfigError(f"{where}: a 'local' model gets its base_url from the managed server")
    bundled = BUNDLED.get(local or "")
    api = _opt_str(entry, "api", where) or (bundled.api if bundled else "chat")
    if api not in APIS:
        raise ConfigError(f"{where}: api = {api!r} must be one of {', '.join(APIS)}")
    limit = entry.get("max_concurrency")
    output = entry.get("max_output_tokens")
    return ModelSettings(
        name=name,
        model_id=_opt_str(entry, "model", where) or name,
        api=api,
        base_url=_opt_str(entry, "base_url", where),
        api_key_env=_opt_str(entry, "api_key_env", where),
        input_cost_per_mtok=_float(entry, "input_cost_per_mtok", where, None),
        output_cost_per_mtok=_float(entry, "output_cost_per_mtok", where, None),
        cached_input_cost_per_mtok=_float(entry, "cached_input_cost_per_mtok", where, None),
        rpm=_float(entry, "rpm", where, None, positive=True),
        tpm=_float(entry, "tpm", where, None, positive=True),
        max_concurrency=None
        if limit is None
        else _int(entry, "max_concurrency", where, 1, minimum=1),
        max_output_tokens=None
        if output is None
        else _int(entry, "max_output_tokens", where, 1, minimum=1),
        params=_params(entry, where),
        local=local,
        parallel=_int(entry, "parallel", where, 4, minimum=1),
        threads=None if "threads" not in entry else _int(entry, "threads", where, 1, minimum=1),
        context=_int(entry, "context", where, 2048, minimum=64),
    ).priced()


def _check_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")


def _name_list(value: Any, source: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: {key!r} must be a list of model names")
    return value


def _fixture_names(value: Any, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{source}: 'ahead_fixtures' must be a list of fixture names")
    return value


def _opt_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string, got {value!r}")
    return value


def _choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"{where}: {key!r} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _int(table: Mapping[str, Any], key: str, where: str, default: int, *, minimum: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _float(
    table: Mapping[str, Any], key: str, where: str, default: float | None, *, positive: bool = False
) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    bad = isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    if bad or value < 0 or (positive and value == 0):
        kind = "a positive number" if positive else "a number >= 0"
        raise ConfigError(f"{where}: {key!r} must be {kind}, got {value!r}")
    return float(value)


def _params(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = table.get("params", {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: 'params' must be a table of request parameters")
    return dict(value)
