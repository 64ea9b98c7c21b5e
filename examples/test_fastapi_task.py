"""The seed's FastAPI task: an endpoint that scores texts through an external sentiment API,
with input validation and error handling, judged by hidden tests.

The app runs in the sandbox with read-only site-packages (FastAPI, httpx) and no network. An
adapter, run in the candidate's process after its code, swaps the external API for a fake and
turns HTTP calls into plain data; the hidden tests, in their own process, only see status codes
and JSON bodies, so the verdict stays out of the candidate's reach.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_llmeval import Sandbox, extract_code

TASK = """Write a FastAPI app named `app` with an endpoint POST /analyze.
- The JSON body is {"texts": [...]}: a list of 1 to 100 strings; anything else is rejected with 422.
- Define `class UpstreamError(Exception)` and `async def get_scorer()`, a FastAPI dependency that returns an async function `score(text) -> float` calling the external API https://sentiment-api.example.com/score with httpx (raise UpstreamError on a non-200 answer).
- For each text call the scorer and return a JSON list of {"text": text, "score": score}.
- If the scorer raises UpstreamError, answer 502 with {"detail": "Upstream error"}.
Answer with the code in one ```python block."""  # noqa: E501

ADAPTER = """
from fastapi.testclient import TestClient

async def _fake_score(text):
    if text == "boom":
        raise UpstreamError("the sentiment API is down")
    return round(len(text) / 10, 2)

app.dependency_overrides[get_scorer] = lambda: _fake_score
_client = TestClient(app)

def request(method, path, body=None):
    response = _client.request(method, path, json=body)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text
"""

HIDDEN = [
    """
status, body = request("POST", "/analyze", {"texts": ["good", "bad day"]})
assert status == 200, (status, body)
assert body == [{"text": "good", "score": 0.4}, {"text": "bad day", "score": 0.7}], body
""",
    'assert request("POST", "/analyze", {"texts": []})[0] == 422',
    'assert request("POST", "/analyze", {"texts": ["x"] * 101})[0] == 422',
    'assert request("POST", "/analyze", {"text": ["wrong field"]})[0] == 422',
    'assert request("POST", "/analyze", {"texts": [1, 2]})[0] == 422',
    'assert request("POST", "/analyze", {"texts": ["ok", "boom"]}) == (502, {"detail": "Upstream error"})',  # noqa: E501
    'assert request("POST", "/analyze", {"texts": ["x"] * 100})[0] == 200',
    'assert request("GET", "/analyze")[0] == 405',
]


@pytest.fixture(scope="module")
def web_sandbox(request: pytest.FixtureRequest, sandbox_limits) -> Iterator[Sandbox]:
    """A sandbox pool that can import the installed packages (read-only)."""
    isolation = request.config.getoption("llm_sandbox")
    with Sandbox(sandbox_limits, isolation, site_packages=True) as pool:
        yield pool


@pytest.mark.llmeval(pass_rate=0.6, samples=10)
def test_fastapi_endpoint_passes_hidden_tests(llm, web_sandbox) -> None:
    code = extract_code(llm.chat(TASK, temperature=0.2).text)
    web_sandbox.run(code, HIDDEN, names=["request"], adapter=ADAPTER).check()
