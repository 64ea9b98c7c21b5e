"""Fake gateway driven through the real openai SDK: replies, streaming, faults, concurrency."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessageParam
from processes import default_sigint

from pytest_llmeval.testing import (
    Choice,
    Cycle,
    Drop,
    Echo,
    FakeGateway,
    Fixed,
    HTTPError,
    Malformed,
    RecordedRequest,
    Reply,
    Stall,
    TruncateStream,
)

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "what is two plus two"}]


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    with FakeGateway(seed=7) as gateway:
        yield gateway


@pytest.fixture
def client(gw: FakeGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.base_url, api_key="sk-secret", max_retries=0, timeout=10) as c:
        yield c


def chat(client: openai.OpenAI, model: str = "m", **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=USER, **kwargs)


def test_chat_round_trip_with_usage(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "four is the answer")
    resp = chat(client)
    assert resp.object == "chat.completion"
    assert resp.model == "m"
    assert resp.id.startswith("chatcmpl-")
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "four is the answer"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 4)
    assert resp.usage.total_tokens == 9


def test_completions_round_trip_with_usage(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("legacy", "bar baz")
    resp = client.completions.create(model="legacy", prompt="foo")
    assert resp.object == "text_completion"
    assert resp.model == "legacy"
    assert resp.choices[0].text == "bar baz"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (1, 2)


def test_reply_overrides_tokens_and_finish_reason(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", Reply("cut", finish_reason="length", prompt_tokens=11, completion_tokens=3))
    resp = chat(client)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        11,
        3,
        14,
    )


def test_cycle_round_robin_per_model(gw: FakeGateway, client: openai.OpenAI) -> None:
    cycle = Cycle(["a", "b", "c"])
    gw.add_model("one", cycle)
    gw.add_model("two", cycle)
    first = [chat(client, "one").choices[0].message.content for _ in range(4)]
    second = [chat(client, "two").choices[0].message.content for _ in range(2)]
    assert first == ["a", "b", "c", "a"]
    assert second == ["a", "b"]


def _choice_draws(seed: int, n: int) -> list[str | None]:
    with (
        FakeGateway(seed=seed) as gateway,
        openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as c,
    ):
        gateway.add_model("m", Choice({"PASS": 0.8, "FAIL": 0.2}))
        return [chat(c).choices[0].message.content for _ in range(n)]


def test_choice_is_deterministic_for_a_seed() -> None:
    first, again, other = _choice_draws(1, 40), _choice_draws(1, 40), _choice_draws(2, 40)
    assert first == again
    assert first != other
    assert set(first) <= {"PASS", "FAIL"}


def test_choice_frequency_roughly_matches_weights(gw: FakeGateway) -> None:
    gw.add_model("m", Choice({"PASS": 0.8, "FAIL": 0.2}))

    async def draw() -> Counter[str | None]:
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
            sem = asyncio.Semaphore(32)

            async def one() -> str | None:
                async with sem:
                    resp = await c.chat.completions.create(model="m", messages=USER)
                    return resp.choices[0].message.content

            return Counter(await asyncio.gather(*(one() for _ in range(1000))))

    counts = asyncio.run(draw())
    assert set(counts) == {"PASS", "FAIL"}
    assert 720 <= counts["PASS"] <= 880


def test_echo_returns_last_user_message_or_prompt(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("echo", Echo())
    resp = client.chat.completions.create(
        model="echo",
        messages=[
            {"role": "system", "content": "be terse"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    )
    assert resp.choices[0].message.content == "second question"
    assert client.completions.create(model="echo", prompt="say this").choices[0].text == "say this"


def test_callable_responder_sees_recorded_request(gw: FakeGateway, client: openai.OpenAI) -> None:
    def grade(request: RecordedRequest) -> str:
        return "PASS" if "plus" in request.prompt and request.body["temperature"] == 0 else "FAIL"

    gw.add_model("judge", grade)
    assert chat(client, "judge", temperature=0).choices[0].message.content == "PASS"


def test_responder_error_becomes_500(gw: FakeGateway, client: openai.OpenAI) -> None:
    def broken(request: RecordedRequest) -> str:
        raise KeyError("oops")

    gw.add_model("m", broken)
    with pytest.raises(openai.InternalServerError, match="oops"):
        chat(client)


def test_tool_calls_parse(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model(
        "m",
        Reply(
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": '{"tz": "UTC"}'},
            ]
        ),
    )
    resp = chat(client)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert [c.type for c in calls] == ["function", "function"]
    assert len({c.id for c in calls}) == 2
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert json.loads(calls[1].function.arguments) == {"tz": "UTC"}


def test_streaming_reassembles_text_and_reports_usage(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    gw.add_model("m", "the answer is four")
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert len(texts) >= 4
    assert "".join(t or "" for t in texts) == "the answer is four"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 4)


def test_streaming_without_usage_option(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "hello world")
    chunks = list(chat(client, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_legacy_completion_streaming(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("legacy", "one two three")
    stream = client.completions.create(
        model="legacy", prompt="count", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_streamed_tool_calls(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", Reply(tool_calls=[{"name": "lookup", "arguments": {"q": "a b c", "n": 2}}]))
    chunks = list(chat(client, stream=True))
    assert len([c for c in chunks if c.choices[0].delta.tool_calls]) > 2
    with client.chat.completions.stream(model="m", messages=USER) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"q": "a b c", "n": 2}


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[FakeGateway, openai.OpenAI]]:
    with (
        FakeGateway() as gateway,
        openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as c,
    ):
        yield gateway, c


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40))
def test_stream_and_whole_reply_agree_for_any_text(
    shared: tuple[FakeGateway, openai.OpenAI], text: str
) -> None:
    gateway, c = shared
    gateway.add_model("m", text)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chat(c, stream=True))
    assert streamed == text == chat(c).choices[0].message.content


def test_unknown_model_is_404(gw: FakeGateway, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        chat(client, "nope")
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
    assert info.value.type == "invalid_request_error"


def test_invalid_bodies_are_400(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "x")
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.BadRequestError, match="prompt"):
        client.completions.create(model="m", prompt=["a", "b"])
    with pytest.raises(openai.BadRequestError, match="model"):
        client.post("/chat/completions", body={"messages": USER}, cast_to=object)


def test_models_and_health(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("a", "x")
    gw.add_model("b", "y")
    assert sorted(m.id for m in client.models.list()) == ["a", "b"]
    health = gw.base_url.removesuffix("/v1") + "/health"
    with urllib.request.urlopen(health) as resp:
        assert resp.status == 200
        assert json.load(resp) == {"status": "ok"}


def test_rate_limit_with_retry_after(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(HTTPError(429, retry_after=2, message="slow down"))
    with pytest.raises(openai.RateLimitError, match="slow down") as info:
        chat(client)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded"
    assert chat(client).choices[0].message.content == "ok"


def test_sdk_retries_honour_retry_after(gw: FakeGateway) -> None:
    gw.add_model("m", "ok")
    gw.inject(HTTPError(503, retry_after=0.2), times=2)
    with openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=2) as c:
        start = time.monotonic()
        assert chat(c).choices[0].message.content == "ok"
    assert time.monotonic() - start >= 0.4
    assert gw.request_count("m") == 3


def test_server_error(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(HTTPError(500))
    with pytest.raises(openai.InternalServerError) as info:
        chat(client)
    assert info.value.status_code == 500
    assert "retry-after" not in info.value.response.headers


def test_drop_is_connection_error(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(Drop())
    with pytest.raises(openai.APIConnectionError) as info:
        chat(client)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert chat(client).choices[0].message.content == "ok"


def test_stall_beyond_client_timeout(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(Stall(1.0))
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(client, timeout=0.3)
    assert time.monotonic() - start < 0.9
    assert chat(client).choices[0].message.content == "ok"


def test_stall_within_timeout_answers(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(Stall(0.2))
    start = time.monotonic()
    assert chat(client).choices[0].message.content == "ok"
    assert time.monotonic() - start >= 0.2


def test_malformed_body_raises_raw_json_error(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(Malformed())
    with pytest.raises(json.JSONDecodeError) as info:
        chat(client)
    assert not isinstance(info.value, openai.OpenAIError)
    raw = Malformed("not json")
    gw.inject(raw)
    resp = client.chat.completions.with_raw_response.create(model="m", messages=USER)
    assert resp.status_code == 200
    assert resp.http_response.text == "not json"


def test_truncated_stream_raises_after_partial_chunks(
    gw: FakeGateway, client: openai.OpenAI
) -> None:
    gw.add_model("m", "one two three four five")
    gw.inject(TruncateStream(after_chunks=2))
    received: list[str | None] = []
    stream = chat(client, stream=True, stream_options={"include_usage": True})
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
            assert chunk.choices[0].finish_reason is None
    assert received == ["one ", "two "]
    gw.inject(TruncateStream(after_chunks=2))
    with pytest.raises(openai.APIConnectionError):
        chat(client)


def test_truncated_async_stream(gw: FakeGateway) -> None:
    gw.add_model("m", "one two three")
    gw.inject(TruncateStream(after_chunks=1))

    async def consume() -> list[str | None]:
        received: list[str | None] = []
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
            stream = await c.chat.completions.create(model="m", messages=USER, stream=True)
            with pytest.raises(openai.APIConnectionError):
                async for chunk in stream:
                    received.append(chunk.choices[0].delta.content)
        return received

    assert asyncio.run(consume()) == ["one "]


def test_fault_times_and_model_targeting(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("a", "A")
    gw.add_model("b", "B")
    gw.inject(HTTPError(500), times=2, model="b")
    gw.inject(HTTPError(429))
    with pytest.raises(openai.RateLimitError):
        chat(client, "a")
    assert chat(client, "a").choices[0].message.content == "A"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            chat(client, "b")
    assert chat(client, "b").choices[0].message.content == "B"
    assert (gw.request_count("a"), gw.request_count("b"), gw.request_count()) == (2, 3, 5)


def test_requests_recorded_without_authorization(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    chat(client, temperature=0.5, extra_headers={"X-Trace": "t-1"})
    (req,) = gw.requests
    assert req.path == "/v1/chat/completions"
    assert req.model == "m"
    assert req.body["messages"] == USER
    assert req.body["temperature"] == 0.5
    assert req.headers["x-trace"] == "t-1"
    assert "authorization" not in {k.lower() for k in req.headers}
    assert "sk-secret" not in repr(gw.requests)
    assert abs(req.time - time.time()) < 60


def test_reset_clears_models_faults_and_requests(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    chat(client)
    gw.inject(Drop())
    gw.reset()
    assert gw.requests == [] and gw.request_count() == 0
    with pytest.raises(openai.NotFoundError):
        chat(client)
    gw.add_model("m", Fixed("again"))
    assert chat(client).choices[0].message.content == "again"


def test_per_model_latency_overrides_default(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("fast", "f")
    gw.add_model("slow", "s", latency_s=0.25)
    start = time.monotonic()
    chat(client, "slow")
    assert time.monotonic() - start >= 0.25


def test_concurrency_sanity_async() -> None:
    async def run(gateway: FakeGateway) -> list[str | None]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as c:
            sem = asyncio.Semaphore(64)

            async def one(i: int) -> str | None:
                async with sem:
                    messages: list[ChatCompletionMessageParam] = [
                        {"role": "user", "content": f"request {i}"}
                    ]
                    resp = await c.chat.completions.create(model="m", messages=messages)
                    return resp.choices[0].message.content

            return await asyncio.gather(*(one(i) for i in range(200)))

    with FakeGateway(latency_s=0.1) as gateway:
        gateway.add_model("m", Echo())
        start = time.monotonic()
        replies = asyncio.run(run(gateway))
        elapsed = time.monotonic() - start
        assert replies == [f"request {i}" for i in range(200)]
        assert gateway.request_count("m") == 200
    assert elapsed < 5


def test_in_flight_peak_counts_requests_being_answered(gw: FakeGateway) -> None:
    gw.add_model("m", "ok", latency_s=0.3)

    def five_at_once() -> None:
        with openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
            threads = [threading.Thread(target=chat, args=(c,)) for _ in range(5)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)

    five_at_once()
    assert (gw.in_flight, gw.peak_in_flight) == (0, 5)
    gw.reset()
    assert gw.peak_in_flight == 0
    gw.add_model("m", "ok")
    chat(openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0))
    assert (gw.in_flight, gw.peak_in_flight) == (0, 1)


def test_a_request_still_answered_at_reset_is_not_counted_after_it(gw: FakeGateway) -> None:
    gw.add_model("slow", "ok", latency_s=0.5)
    client = openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0)
    earlier = threading.Thread(target=chat, args=(client, "slow"))
    earlier.start()
    deadline = time.monotonic() + 10
    while gw.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    gw.reset()  # the next test starts while the last one's request is still answered
    gw.add_model("m", "ok")
    chat(client)
    earlier.join(10)
    assert (gw.in_flight, gw.peak_in_flight) == (0, 1)


def test_async_streaming(gw: FakeGateway) -> None:
    gw.add_model("m", "async works fine")

    async def run() -> tuple[str, int | None]:
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
            whole = await c.chat.completions.create(model="m", messages=USER)
            assert whole.choices[0].message.content == "async works fine"
            stream = await c.chat.completions.create(
                model="m", messages=USER, stream=True, stream_options={"include_usage": True}
            )
            text, usage = "", None
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                if chunk.usage:
                    usage = chunk.usage.completion_tokens
            return text, usage

    assert asyncio.run(run()) == ("async works fine", 3)


def test_stop_is_idempotent_and_frees_the_port() -> None:
    gateway = FakeGateway().start()
    gateway.add_model("m", "ok")
    port = int(gateway.base_url.rsplit(":", 1)[1].split("/")[0])
    with openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as c:
        chat(c)
        start = time.monotonic()
        gateway.stop()
        gateway.stop()
        assert time.monotonic() - start < 2
    with pytest.raises(RuntimeError):
        _ = gateway.base_url
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_stop_interrupts_stalled_request(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("m", "ok")
    gw.inject(Stall(30))
    timer = threading.Timer(0.2, gw.stop)
    timer.start()
    start = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        chat(client)
    timer.join()
    assert time.monotonic() - start < 5


def test_cli_serves_fixed_models_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_llmeval.testing.gateway", "--model", "demo=hi there"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    ) as proc:
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0) as c:
                assert chat(c, "demo").choices[0].message.content == "hi there"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert err == ""
