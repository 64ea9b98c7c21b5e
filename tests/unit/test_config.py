from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.config import find_config_file, load_settings
from pytest_llmeval.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_pyproject_table_is_read(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        """
[tool.llmeval]
base_url = "https://gw.example/v1"
api_key_env = "GATEWAY_API_KEY"
default_models = ["gpt-4o"]

[tool.llmeval.models."gpt-4o"]
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10
max_concurrency = 16
max_output_tokens = 16384

[tool.llmeval.models.local]
base_url = "http://127.0.0.1:8080/v1"
model = "SmolLM2-135M-Instruct"
api = "completion"
params = { temperature = 0.2 }
""",
    )
    path = find_config_file(tmp_path)
    assert path == tmp_path / "pyproject.toml"
    settings = load_settings(path, {})
    assert settings.base_url == "https://gw.example/v1"
    assert settings.api_key_env == "GATEWAY_API_KEY" and settings.api_key_env_explicit
    assert settings.selected == ("gpt-4o",)
    gpt = settings.model("gpt-4o")
    assert gpt.model_id == "gpt-4o" and gpt.max_concurrency == 16
    assert gpt.max_output_tokens == 16384 and settings.model("local").max_output_tokens is None
    assert gpt.cost_usd(1_000_000, 100_000) == pytest.approx(2.5 + 1.0)
    local = settings.model("local")
    assert (local.model_id, local.api, local.params) == (
        "SmolLM2-135M-Instruct",
        "completion",
        {"temperature": 0.2},
    )
    assert local.base_url == "http://127.0.0.1:8080/v1"


def test_llmeval_toml_wins_and_models_list_selects(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.llmeval]\nbase_url = "a"\n')
    write(tmp_path / "llmeval.toml", 'base_url = "b"\nmodels = ["x", "y"]\n')
    settings = load_settings(find_config_file(tmp_path), {})
    assert settings.base_url == "b"
    assert settings.selected == ("x", "y")
    assert settings.model("x").model_id == "x" and settings.model("x").cost_usd(10, 10) is None


def test_no_config_anywhere(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    assert find_config_file(tmp_path) is None
    settings = load_settings(None, {})
    assert settings.selected == () and settings.base_url is None


def test_env_overrides_file_and_cli_overrides_env(tmp_path: Path) -> None:
    path = write(tmp_path / "llmeval.toml", 'base_url = "file"\nconcurrency = 4\n')
    assert load_settings(path, {"OPENAI_BASE_URL": "env"}).base_url == "env"
    settings = load_settings(
        path, {"OPENAI_BASE_URL": "env"}, base_url="cli", concurrency=32, models="a,b"
    )
    assert (settings.base_url, settings.concurrency, settings.selected) == ("cli", 32, ("a", "b"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bse_url = 'x'\n", "unknown key 'bse_url'"),
        ("concurrency = 0\n", "'concurrency' must be an integer >= 1"),
        ("timeout = -1\n", "'timeout' must be a positive number"),
        ("models = 'gpt-4o'\n", "'models' must be a list of names or a table"),
        (
            "[models.m]\napi = 'embeddings'\n",
            "models.m: api = 'embeddings' must be one of chat, completion, embedding",
        ),
        ("[models.m]\nprice = 1\n", "models.m: unknown key 'price'"),
        (
            "[models.m]\ninput_cost_per_mtok = 'cheap'\n",
            "'input_cost_per_mtok' must be a number >= 0",
        ),
        ("[models.m]\n\n[x]\n", "unknown key 'x'"),
        ("[models.m]\nmax_output_tokens = 0\n", "'max_output_tokens' must be an integer >= 1"),
        ("default_models = ['nope']\n[models.m]\n", "unknown model 'nope'"),
        ("models = [\n", "invalid TOML"),
        ("ahead_fixtures = 'vcr'\n", "'ahead_fixtures' must be a list of fixture names"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "llmeval.toml", text)
    with pytest.raises(ConfigError, match=r"llmeval\.toml") as info:
        load_settings(path, {})
    assert expected in str(info.value)


def test_unknown_cli_model_once_models_are_declared(tmp_path: Path) -> None:
    path = write(tmp_path / "llmeval.toml", "[models.gpt-4o]\n[models.deepseek-v4-flash]\n")
    with pytest.raises(
        ConfigError, match=r"--llm-models: unknown model 'gpt4o'.*deepseek-v4-flash, gpt-4o"
    ):
        load_settings(path, {}, models="gpt4o")
    assert load_settings(path, {}, models="gpt-4o").selected == ("gpt-4o",)


@pytest.mark.parametrize(
    ("text", "expected"), [("a,,b", "empty model name"), ("a,a", "named twice")]
)
def test_bad_model_list(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(None, {}, models=text)


def test_pyproject_without_table_given_explicitly(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"no \[tool.llmeval\] table"):
        load_settings(path, {})


def test_local_models_and_their_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path / "llmeval.toml",
        """
[models.smol]
local = "smollm2-135m-instruct"
parallel = 2

[models.gemma]
local = "gemma-3-270m"
threads = 1

[models.minilm]
local = "all-minilm-l6-v2"

[models.remote]
""",
    )
    settings = load_settings(path, {}, models="smol,gemma,remote")
    smol, gemma = settings.model("smol"), settings.model("gemma")
    assert (smol.api, smol.parallel, smol.context, smol.threads) == ("chat", 2, 2048, None)
    assert (gemma.api, gemma.threads) == ("completion", 1)
    assert settings.model("minilm").api == "embedding"
    assert [m.name for m in settings.local_models()] == ["smol", "gemma"]
    served = settings.with_urls({"smol": "http://127.0.0.1:1/v1"})
    assert served.model("smol").base_url == "http://127.0.0.1:1/v1"
    assert served.model("remote").base_url is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[models.m]\nparallel = 2\n", "'parallel' only applies to a model with 'local'"),
        ("[models.m]\nlocal = 'x'\nbase_url = 'http://h'\n", "gets its base_url from the managed"),
    ],
)
def test_bad_local_model_config(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path / "llmeval.toml", text), {})


def test_ahead_fixtures_are_read(tmp_path: Path) -> None:
    path = write(tmp_path / "llmeval.toml", "ahead_fixtures = ['vcr', 'block_network']\n")
    assert load_settings(path, {}).ahead_fixtures == {"vcr", "block_network"}
