"""Gateway behaviour through the plugin: retries, faults, streaming, budget, passthrough."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_llmeval.testing import (
    Drop,
    FakeGateway,
    HTTPError,
    Malformed,
    Reply,
    Stall,
    TruncateStream,
)

SUITE = """
import pytest

@pytest.mark.llmeval(samples={samples}, mode="observed", pass_rate=1.0)
def test_answer(llm):
    assert llm.chat("Say PASS"{extra}).text == "PASS"
"""


def run(
    suite: pytest.Pytester,
    gateway: FakeGateway,
    *args: str,
    samples: int = 6,
    extra: str = "",
    model: str = "",
) -> dict[str, Any]:
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\n[models.m]\ninput_cost_per_mtok = 1000.0\n'
        f"output_cost_per_mtok = 1000.0\n{model}",
    )
    suite.makepyfile(test_suite=SUITE.format(samples=samples, extra=extra))
    suite.runpytest("--llm-models=m", "--llm-report=r.json", "--llm-concurrency=1", *args)
    report = json.loads((suite.path / "r.json").read_text())
    row: dict[str, Any] = report["tests"][0]
    assert row["passed"] + row["failed"] + row["errors"] == row["run"]  # every sample accounted
    return report


FAULTS = [
    pytest.param(HTTPError(429, retry_after=0.05), "rate_limit", id="429-retry-after"),
    pytest.param(HTTPError(500), "server_error", id="500"),
    pytest.param(HTTPError(503), "server_error", id="503"),
    pytest.param(Drop(), "connection", id="dropped-connection"),
    pytest.param(Stall(3), "timeout", id="stall-past-timeout"),
    pytest.param(Malformed(), "bad_response", id="malformed-json"),
]


@pytest.mark.parametrize(("fault", "label"), FAULTS)
def test_a_transient_fault_is_retried_and_the_sample_passes(
    suite: pytest.Pytester, gateway: FakeGateway, fault: Any, label: str
) -> None:
    gateway.add_model("m", "PASS")
    gateway.inject(fault, times=2)
    report = run(suite, gateway, "--llm-retries=2", "--llm-timeout=0.5")
    row = report["tests"][0]
    if label == "bad_response":  # not retryable: a server that sends garbage is an error sample
        assert row["errors"] == 2 and row["metrics"]["errors_by_cause"] == {"bad_response": 2}
        return
    assert (row["passed"], row["errors"], row["run"]) == (6, 0, 6)
    assert row["samples"][0]["retries"] == 2
    assert row["samples"][0]["calls"][0]["retry_causes"] == [label, label]
    assert gateway.request_count() == 8


@pytest.mark.parametrize(("fault", "label"), FAULTS)
def test_a_persistent_fault_is_an_error_sample_with_its_cause(
    suite: pytest.Pytester, gateway: FakeGateway, fault: Any, label: str
) -> None:
    gateway.add_model("m", "PASS")
    gateway.inject(fault, times=100)
    report = run(suite, gateway, "--llm-retries=1", "--llm-timeout=0.5", samples=3)
    row = report["tests"][0]
    assert (row["errors"], row["failed"], row["verdict"]) == (2, 0, "error")  # 2 of 3: no verdict
    assert row["metrics"]["errors_by_cause"] == {label: 2}
    assert report["totals"]["m"]["errors_by_cause"] == {label: 2}


def test_429_storm_with_retry_after_is_ridden_out(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    gateway.inject(HTTPError(429, retry_after=0.01), times=20)
    report = run(suite, gateway, "--llm-retries=20", "--llm-concurrency=4", samples=10)
    row = report["tests"][0]
    assert (row["passed"], row["errors"]) == (10, 0)
    assert row["metrics"]["retries"] == 20


def test_truncated_stream_is_an_error_not_a_short_answer(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS and more words here")
    gateway.inject(TruncateStream(after_chunks=1), times=100)
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n')
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=2)
def test_stream(llm):
    assert llm.chat("x", stream=True).text.startswith("PASS")
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", "--llm-retries=3")
    result.assert_outcomes(errors=1)
    row = json.loads((suite.path / "r.json").read_text())["tests"][0]
    assert row["errors"] == 2 and row["passed"] == 0
    assert set(row["metrics"]["errors_by_cause"]) == {"connection"}
    assert all(s["calls"][0]["attempts"] == 1 for s in row["samples"])  # no retry once text came


def test_streaming_measures_ttft_and_tokens_per_second(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "one two three four five", latency_s=0.05)
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n')
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=3)
def test_chat_stream(llm):
    completion = llm.chat("count", stream=True)
    assert completion.text == "one two three four five"
    assert completion.ttft_s >= 0.05 and completion.usage.completion_tokens == 5
    assert not completion.usage_estimated

@pytest.mark.llmeval(samples=2)
def test_text_stream(llm):
    stream = llm.stream("count")
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == stream.completion.text

@pytest.mark.llmeval(samples=2)
async def test_async_stream(llm):
    stream = llm.astream("count")
    pieces = [piece async for piece in stream]
    assert "".join(pieces) == "one two three four five" and stream.completion.ttft_s > 0
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json", *plugin_args)
    result.assert_outcomes(passed=3)
    rows = {r["test"]: r for r in json.loads((suite.path / "r.json").read_text())["tests"]}
    metrics = rows["test_suite.py::test_chat_stream"]["metrics"]
    assert metrics["ttft_p50_s"] >= 0.05 and metrics["tokens_per_s"] > 0
    bodies = [r.body for r in gateway.requests]
    assert all(b["stream"] and b["stream_options"] == {"include_usage": True} for b in bodies)


# The suite's request as sent: its JSON bounds the prompt tokens, max_tokens the output ones.
BODY = {"max_tokens": 5, "messages": [{"role": "user", "content": "Say PASS"}], "model": "m"}
WORST_USD = (len(json.dumps(BODY)) + 5) * 1000.0 / 1e6  # at $1000 per 1M tokens
CAPPED = "params = { max_tokens = 5 }\n"


def test_budget_stops_new_requests_and_the_rest_error(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS")  # 2 prompt + 1 completion tokens at $1000/M = $0.003 a call
    budget = f"--llm-budget={WORST_USD + 0.0099!r}"
    report = run(suite, gateway, budget, *plugin_args, samples=10, model=CAPPED)
    assert gateway.requests[0].body == BODY
    # a request is sent while its worst case fits: the 4th at $0.009 spent, not the 5th
    assert gateway.request_count() == 4
    row = report["tests"][0]
    assert (row["passed"], row["errors"]) == (4, 6)
    assert row["metrics"]["errors_by_cause"] == {"budget": 6}
    assert report["budget"]["limit_usd"] == WORST_USD + 0.0099
    assert report["budget"]["spent_usd"] == pytest.approx(0.012)


def test_budget_error_message_is_clear(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("m", "PASS")
    run(suite, gateway, "--llm-budget=0.000001", samples=3, model=CAPPED)
    result = suite.runpytest("--llm-models=m", "--llm-budget=0.000001", "--llm-concurrency=1")
    result.stdout.fnmatch_lines(
        [
            "*first error: pytest_llmeval.errors.BudgetExhausted: budget exhausted: $0.0000 spent "
            f"of --llm-budget=$1e-06; this request could cost up to ${WORST_USD:.4g} (its prompt "
            "and max_tokens at the model's prices), more than the $1e-06 left, so it is not sent",
            "budget: $0.0000 spent of $1e-06",
        ]
    )
    assert gateway.request_count() == 0


def test_the_budget_is_a_cap_for_all_workers_and_requests_in_flight(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    # $0.102 a call (2 + 100 tokens at $1000/M), with up to 16 samples at a time
    gateway.add_model("m", Reply("PASS", completion_tokens=100), latency_s=0.1)
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n[models.m]\n'
        "input_cost_per_mtok = 1000.0\noutput_cost_per_mtok = 1000.0\n"
        "params = { max_tokens = 100 }\n",
    )
    suite.makepyfile(test_suite=TWO_TESTS.format(samples=20))
    suite.runpytest(
        "--llm-models=m", "--llm-report=r.json", "--llm-concurrency=8", "--llm-budget=0.5",
        *plugin_args,
    )  # fmt: skip
    report = json.loads((suite.path / "r.json").read_text())
    spent = report["budget"]["spent_usd"]
    worst = max(len(json.dumps(r.body)) + 100 for r in gateway.requests) * 1000.0 / 1e6
    assert 0.5 - worst < spent <= 0.5  # never over, and stopped only when the next could be
    calls = [c for row in report["tests"] for s in row["samples"] for c in s["calls"]]
    costs = [c["cost_usd"] for c in calls if c["cause"] is None]
    assert sum(costs) == pytest.approx(spent) and len(costs) == gateway.request_count()
    assert {c["cause"] for c in calls} == {None, "budget"}
    for row in report["tests"]:
        assert row["metrics"]["errors_by_cause"] == {"budget": row["errors"]} and row["errors"]


def test_without_max_tokens_a_request_reserves_the_models_output_limit(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS")
    worst = (len(json.dumps(BODY)) - len('"max_tokens": 5, ') + 1000) * 1000.0 / 1e6
    for limit, sent in ((f"{worst - 0.001!r}", 0), (f"{worst + 0.001!r}", 1)):
        gateway.reset()
        gateway.add_model("m", "PASS")
        model = "max_output_tokens = 1000\n"
        run(suite, gateway, f"--llm-budget={limit}", samples=1, model=model)
        assert gateway.request_count() == sent


def test_vision_tools_and_response_format_pass_through(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model(
        "m", Reply(tool_calls=[{"name": "refund", "arguments": {"order_id": "A-17"}}])
    )
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n')
    suite.makepyfile(
        test_suite="""
TOOLS = [{"type": "function", "function": {"name": "refund", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]
IMAGE = [{"type": "text", "text": "What is on this receipt?"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
FORMAT = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}

def test_tools(llm):
    completion = llm.chat([{"role": "user", "content": IMAGE}], tools=TOOLS,
                          tool_choice="required", response_format=FORMAT)
    assert completion.tool_calls[0].name == "refund"
    assert completion.tool_calls[0].arguments == {"order_id": "A-17"}
"""
    )
    suite.runpytest("--llm-models=m").assert_outcomes(passed=1)
    body = gateway.requests[0].body
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png")
    assert body["tools"][0]["function"]["name"] == "refund"
    assert body["tool_choice"] == "required" and body["response_format"]["type"] == "json_schema"


def test_price_presets_price_the_seed_models(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("gpt-4o", Reply("PASS", prompt_tokens=1_000_000, completion_tokens=100_000))
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n')
    suite.makepyfile(test_suite="def test_x(llm):\n    assert llm.chat('x').cost_usd == 3.5\n")
    suite.runpytest("--llm-models=gpt-4o", "--llm-report=r.json").assert_outcomes(passed=1)
    report = json.loads((suite.path / "r.json").read_text())
    assert report["models"]["gpt-4o"]["price_source"] == "preset"
    assert report["totals"]["gpt-4o"]["cost_usd"] == pytest.approx(3.5)


def test_the_key_never_reaches_reports_or_messages(
    suite: pytest.Pytester, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-proj-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    gateway.add_model("m", "PASS")
    gateway.inject(HTTPError(500, message=f"upstream rejected key {secret}"), times=100)
    report = run(suite, gateway, "--llm-retries=1", samples=2)
    out = json.dumps(report)
    assert secret not in out and "upstream rejected key ***" in out
    assert not any(secret in str(r.headers) for r in gateway.requests)


def test_leaving_a_stream_early_is_not_an_error(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "one two three four five")
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n')
    suite.makepyfile(
        test_suite="""
import pytest

@pytest.mark.llmeval(samples=3)
def test_first_word(llm):
    for piece in llm.stream("count"):
        assert piece.strip() == "one"
        break
"""
    )
    result = suite.runpytest("--llm-models=m", "--llm-report=r.json")
    result.assert_outcomes(passed=1)
    row = json.loads((suite.path / "r.json").read_text())["tests"][0]
    assert (row["passed"], row["errors"]) == (3, 0)


def test_max_concurrency_caps_requests_in_flight_per_model(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.3)
    suite.makefile(
        ".toml", llmeval=f'base_url = "{gateway.base_url}"\n[models.m]\nmax_concurrency = 2\n'
    )
    suite.makepyfile(test_suite=SUITE.format(samples=8, extra=""))
    suite.runpytest("--llm-models=m", "--llm-concurrency=8").assert_outcomes(passed=1)
    arrivals = sorted(r.time for r in gateway.requests)
    assert len(arrivals) == 8
    # each answer takes 0.3 s, so with 2 in flight no 3 requests can arrive within 0.2 s
    assert all(later - first > 0.2 for first, later in zip(arrivals, arrivals[2:], strict=False))


# Limits hold for the whole run on the machine: xdist workers share them.

TOGETHER = """
import os, pathlib, time
import pytest

@pytest.fixture(scope="session", autouse=True)
def together(request):
    # every worker starts sampling at the same moment, so that they compete for the model
    # (the worker count of this run, not of an outer xdist run whose environment it inherits)
    workers = getattr(request.config, "workerinput", {{}}).get("workercount", 1)
    folder = pathlib.Path({folder!r})
    folder.mkdir(exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(folder.iterdir())) < workers and time.monotonic() < deadline:
        time.sleep(0.005)
"""

TWO_TESTS = """
import os
import pytest

@pytest.mark.parametrize("case", range(2))
@pytest.mark.llmeval(samples={samples}, mode="observed", pass_rate=1.0)
def test_case(llm, case):
    assert llm.chat(f"Say PASS from {{os.getpid()}}").text == "PASS"
"""


def run_two_tests(
    suite: pytest.Pytester, gateway: FakeGateway, limits: str, samples: int, *args: str
) -> dict[str, Any]:
    """Two LLM tests (one per worker under -n 2), 8 samples at a time each, on model `m`."""
    suite.makefile(".toml", llmeval=f'base_url = "{gateway.base_url}"\n[models.m]\n{limits}\n')
    suite.makeconftest(TOGETHER.format(folder=str(suite.path / "arrived")))
    suite.makepyfile(test_suite=TWO_TESTS.format(samples=samples))
    result = suite.runpytest(
        "--llm-models=m", "--llm-report=r.json", "--llm-concurrency=8", "--llm-retries=2", *args
    )
    result.assert_outcomes(passed=2)
    return dict(json.loads((suite.path / "r.json").read_text()))


def sender(request: Any) -> str:
    """The pid of the worker that sent the request (the suite puts it in the prompt)."""
    return str(request.prompt.rsplit(" ", 1)[-1])


@pytest.mark.slow
def test_max_concurrency_holds_across_workers(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("m", "PASS", latency_s=0.2)
    run_two_tests(suite, gateway, "max_concurrency = 3", 12, *plugin_args)
    assert gateway.request_count() == 24
    assert gateway.peak_in_flight == 3  # never more, and reached: not one request at a time
    if plugin_args == ["-n", "2"]:
        spans: dict[str, list[float]] = {}
        for request in gateway.requests:
            spans.setdefault(sender(request), []).append(request.time)
        first, second = spans.values()  # two workers, sending at the same time
        assert min(first) < max(second) and min(second) < max(first)


def test_rpm_holds_across_workers(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    gateway.add_model("m", "PASS")
    run_two_tests(suite, gateway, "rpm = 120", 62, "-n", "2")
    arrivals = sorted(r.time for r in gateway.requests)
    assert len(arrivals) == 124 and len({sender(r) for r in gateway.requests}) == 2
    # a burst of 120, then one request per 0.5 s for the run, not for each worker
    for extra in range(4):
        assert arrivals[120 + extra] - arrivals[0] >= (extra + 1) * 0.5 - 0.1


@pytest.mark.slow
def test_a_429_seen_by_one_worker_halves_the_limit_of_both(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    answered: list[tuple[float, int, str]] = []  # arrival, requests in flight then, sender

    def answer(request: Any) -> str:
        answered.append((request.time, gateway.in_flight, sender(request)))
        return "PASS"

    latency = 1.0
    gateway.add_model("m", answer, latency_s=latency)
    gateway.inject(HTTPError(429, retry_after=0), times=1)
    report = run_two_tests(suite, gateway, "max_concurrency = 4", 6, "-n", "2")
    assert report["totals"]["m"]["retries"] == 1
    assert gateway.peak_in_flight <= 4
    # The 429 cut the run's limit to at most 2 (in flight // 2). It grows by one per `limit`
    # successes: the first round brings back at most 3 (3 answers after the 429), the next
    # only once its answers come, a latency later. In between, both workers have samples
    # waiting, and without the shared cut they would put 4 requests in flight again.
    start = min(t for t, _, _ in answered)
    second_round = [
        (n, who) for t, n, who in answered if start + latency < t < start + 2 * latency - 0.1
    ]
    assert second_round and max(n for n, _ in second_round) <= 3
    # Both workers still had samples to send after the first round (which of them takes the
    # few slots of the second round is chance).
    assert len({who for t, _, who in answered if t > start + latency}) == 2
