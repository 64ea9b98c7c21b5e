"""Pay for what you use: a run with no LLM test loads none of the heavy parts."""

from __future__ import annotations

import pytest

HEAVY = (
    "jsonschema",
    "openai",
    "pytest_llmeval.calls.client",
    "pytest_llmeval.local.server",
    "pytest_llmeval.report.build",
    "pytest_llmeval.report.render",
    "pytest_llmeval.sandbox.host",
    "pytest_llmeval.verdict.sampling",
)
CONFTEST = f"""
import sys

def pytest_unconfigure(config):  # after every plugin's end of session (in every process)
    loaded = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))
    with open("loaded.txt", "a") as out:
        out.write(",".join(loaded) + "\\n")
"""


def test_a_run_without_llm_tests_imports_no_sdk_schema_sandbox_or_server(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "loaded.txt").read_text() == "\n"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_models_named_but_no_llm_test_selected_still_import_no_sdk(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    args = ("--llm-models=m", "--llm-base-url=http://127.0.0.1:9/v1", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*args, *workers)
    result.assert_outcomes(passed=1)
    lines = (pytester.path / "loaded.txt").read_text().splitlines()
    assert len(lines) == (3 if workers else 1)  # the controller and each worker
    assert not any("openai" in line or "client" in line for line in lines), lines


def test_the_public_helpers_still_load_on_first_use() -> None:
    import pytest_llmeval

    assert pytest_llmeval.check_json('{"a": 1}', {"type": "object"}) == {"a": 1}
    assert pytest_llmeval.pass_at_k(10, 5, 1) == 0.5
    assert pytest_llmeval.Sandbox.__module__ == "pytest_llmeval.sandbox.host"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pytest_llmeval.nope  # type: ignore[attr-defined]
