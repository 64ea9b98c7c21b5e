"""The fake gateway's /v1/embeddings through the real openai SDK: formats, similarity, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import openai
import pytest
from processes import default_sigint

from pytest_llmeval.testing import (
    Drop,
    FakeGateway,
    HTTPError,
    Malformed,
    Stall,
    TruncateStream,
    hashed_embedding,
)

CAT = "The cat sat on the mat."
CAT_AGAIN = "the cat sat on the mat"
CAT_LONGER = "The cat sat on the red mat today."
REVENUE = "Quarterly revenue grew by five percent."


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    with FakeGateway(seed=7) as gateway:
        gateway.add_embedding_model("emb")
        yield gateway


@pytest.fixture
def client(gw: FakeGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gw.base_url, api_key="sk-secret", max_retries=0, timeout=10) as c:
        yield c


def embed(client: openai.OpenAI, text: str, model: str = "emb") -> list[float]:
    return client.embeddings.create(model=model, input=text).data[0].embedding


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_float_embeddings_of_a_list(gw: FakeGateway, client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="emb", input=[CAT, REVENUE], encoding_format="float")
    assert resp.object == "list"
    assert resp.model == "emb"
    assert [(d.object, d.index) for d in resp.data] == [("embedding", 0), ("embedding", 1)]
    for item in resp.data:
        assert len(item.embedding) == 256
        assert math.isclose(math.fsum(x * x for x in item.embedding), 1.0, rel_tol=1e-5)
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (12, 12)
    assert gw.requests[-1].body["encoding_format"] == "float"


def test_sdk_default_asks_base64_and_decodes_it(gw: FakeGateway, client: openai.OpenAI) -> None:
    decoded = embed(client, CAT)
    assert gw.requests[-1].body["encoding_format"] == "base64"
    as_floats = client.embeddings.create(model="emb", input=CAT, encoding_format="float")
    assert decoded == as_floats.data[0].embedding


def test_explicit_base64_is_little_endian_float32(client: openai.OpenAI) -> None:
    raw = client.embeddings.create(model="emb", input=CAT, encoding_format="base64")
    text = raw.data[0].embedding
    assert isinstance(text, str)
    packed = base64.b64decode(text)
    assert len(packed) == 256 * 4
    assert list(struct.unpack("<256f", packed)) == embed(client, CAT)


def test_cosine_orders_identical_similar_and_unrelated_texts(client: openai.OpenAI) -> None:
    cat, again, longer, revenue = (embed(client, t) for t in (CAT, CAT_AGAIN, CAT_LONGER, REVENUE))
    assert cosine(cat, again) == pytest.approx(1.0, abs=1e-6)  # case and punctuation ignored
    assert cosine(cat, longer) > 0.8
    assert cosine(cat, revenue) < 0.3
    assert cosine(cat, longer) > cosine(longer, revenue)


def test_vectors_do_not_depend_on_the_gateway_or_process(client: openai.OpenAI) -> None:
    with (
        FakeGateway(seed=99) as other,
        openai.OpenAI(base_url=other.base_url, api_key="x", max_retries=0) as c,
    ):
        other.add_embedding_model("emb")
        assert embed(c, CAT) == embed(client, CAT)
    code = "import json,sys; from pytest_llmeval.testing import hashed_embedding as h;"
    code += f"print(json.dumps(h({CAT!r})))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == hashed_embedding(CAT)
    assert embed(client, CAT) == pytest.approx(hashed_embedding(CAT), abs=1e-7)


def test_dimensions_shorten_the_vectors(gw: FakeGateway, client: openai.OpenAI) -> None:
    short = client.embeddings.create(model="emb", input=CAT, dimensions=64).data[0].embedding
    assert len(short) == 64
    assert math.isclose(math.fsum(x * x for x in short), 1.0, rel_tol=1e-5)
    with pytest.raises(openai.BadRequestError, match="256 dimensions"):
        client.embeddings.create(model="emb", input=CAT, dimensions=300)
    gw.add_embedding_model("small", dimensions=32)
    assert len(embed(client, CAT, "small")) == 32


def test_custom_embedder(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_embedding_model("toy", lambda text: [3.0, 4.0, float(len(text))])
    assert embed(client, "ab", "toy") == [3.0, 4.0, 2.0]
    shortened = client.embeddings.create(model="toy", input="ab", dimensions=2)
    assert shortened.data[0].embedding == pytest.approx([0.6, 0.8])
    gw.add_embedding_model("liar", lambda text: [1.0, 0.0], dimensions=3)
    with pytest.raises(openai.InternalServerError, match="returned 2 numbers, not 3"):
        embed(client, "ab", "liar")


def test_unknown_and_wrong_kind_models_are_404(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("chat", "hi")
    with pytest.raises(openai.NotFoundError) as info:
        embed(client, CAT, "nope")
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError, match="chat model"):
        embed(client, CAT, "chat")
    with pytest.raises(openai.NotFoundError, match="embedding model"):
        client.chat.completions.create(model="emb", messages=[{"role": "user", "content": "hi"}])


def test_invalid_bodies_are_400(client: openai.OpenAI) -> None:
    bodies: list[dict[str, object]] = [
        {"model": "emb"},
        {"model": "emb", "input": []},
        {"model": "emb", "input": ["ok", ""]},
        {"model": "emb", "input": [[1, 2, 3]]},
    ]
    for body in bodies:
        with pytest.raises(openai.BadRequestError, match="'input'"):
            client.post("/embeddings", body=body, cast_to=object)
    with pytest.raises(openai.BadRequestError, match="encoding_format"):
        client.post(
            "/embeddings",
            body={"model": "emb", "input": "x", "encoding_format": "int8"},
            cast_to=object,
        )
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="emb", input="x", dimensions=0)
    with pytest.raises(openai.BadRequestError, match="model"):
        client.post("/embeddings", body={"input": "x"}, cast_to=object)


def test_injected_faults_apply_to_embeddings(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("chat", "hi")
    gw.inject(HTTPError(429, retry_after=1), model="emb")
    assert (
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        .choices[0]
        .message.content
        == "hi"
    )
    with pytest.raises(openai.RateLimitError) as info:
        embed(client, CAT)
    assert info.value.response.headers["retry-after"] == "1"
    for fault in (Drop(), TruncateStream(after_chunks=1)):
        gw.inject(fault)
        with pytest.raises(openai.APIConnectionError):
            embed(client, CAT)
    gw.inject(Malformed())
    with pytest.raises(json.JSONDecodeError):
        embed(client, CAT)
    gw.inject(Stall(1.0))
    with pytest.raises(openai.APITimeoutError):
        client.embeddings.create(model="emb", input=CAT, timeout=0.3)
    assert len(embed(client, CAT)) == 256


def test_latency_recording_and_in_flight(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_embedding_model("slow", latency_s=0.2)
    start = time.monotonic()
    client.embeddings.create(model="slow", input=["first text", "second"])
    assert time.monotonic() - start >= 0.2
    (request,) = gw.requests
    assert (request.path, request.model) == ("/v1/embeddings", "slow")
    assert request.inputs == ["first text", "second"]
    assert request.prompt == "first text\nsecond"
    assert "sk-secret" not in repr(request)
    assert (gw.request_count("slow"), gw.request_count("emb")) == (1, 0)
    assert (gw.in_flight, gw.peak_in_flight) == (0, 1)


def test_models_list_and_reset(gw: FakeGateway, client: openai.OpenAI) -> None:
    gw.add_model("chat", "hi")
    assert sorted(m.id for m in client.models.list()) == ["chat", "emb"]
    gw.reset()
    with pytest.raises(openai.NotFoundError):
        embed(client, CAT)


def test_async_client(gw: FakeGateway) -> None:
    async def run() -> list[list[float]]:
        async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as c:
            replies = await asyncio.gather(
                *(c.embeddings.create(model="emb", input=t) for t in (CAT, REVENUE))
            )
            return [r.data[0].embedding for r in replies]

    cat, revenue = asyncio.run(run())
    assert cat == pytest.approx(hashed_embedding(CAT), abs=1e-7)
    assert revenue == pytest.approx(hashed_embedding(REVENUE), abs=1e-7)


def test_cli_serves_embedding_models() -> None:
    command = [sys.executable, "-m", "pytest_llmeval.testing.gateway"]
    bad = subprocess.run([*command, "--embedding-model", "e=0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "NAME=DIMENSIONS" in bad.stderr
    with subprocess.Popen(
        [*command, "--embedding-model", "e=16", "--embedding-model", "big"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    ) as proc:
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0) as c:
                assert len(embed(c, CAT, "e")) == 16
                assert len(embed(c, CAT, "big")) == 256
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0
    assert err == ""
