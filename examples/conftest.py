"""With no gateway configured, serve the demo models from the fake gateway (an offline demo)."""

from __future__ import annotations

import demo_models
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--humaneval-tasks",
        type=int,
        default=None,
        metavar="N",
        help="run only the first N HumanEval tasks (examples/test_humaneval.py)",
    )


@pytest.fixture(scope="session")
def llm_gateway_url(llm_gateway_url: str | None, request: pytest.FixtureRequest) -> str | None:
    """The configured gateway if there is one, else the fake gateway with the demo models."""
    if llm_gateway_url:
        return llm_gateway_url
    gateway = request.getfixturevalue("llm_fake_gateway")
    demo_models.install(gateway)
    return str(gateway.base_url)
