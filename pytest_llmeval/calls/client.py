"""The gateway client: one model behind the official `openai` SDK, every call recorded."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import random
import threading
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import openai

from pytest_llmeval.calls.budget import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    Budget,
    Reservation,
    worst_case_tokens,
)
from pytest_llmeval.calls.cache import ResponseCache, cache_key
from pytest_llmeval.calls.completion import Completion, Embeddings, ToolCall, Usage
from pytest_llmeval.calls.ratelimit import ModelLimiter, Permit
from pytest_llmeval.calls.redaction import Redactor
from pytest_llmeval.calls.retry import RetryPolicy
from pytest_llmeval.calls.streaming import StreamState, parse_arguments, usage_of
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.errors import (
    BadResponseError,
    BudgetExhausted,
    CacheMiss,
    LLMUsageError,
    MissingKeyError,
    call_errors,
    cause,
)
from pytest_llmeval.verdict.records import CallRecord, current_trace
from pytest_llmeval.verdict.transcript import exchange, sent_messages

PLACEHOLDER_KEY = "no-key"


def fingerprint(endpoint: str, model_id: str, payload: Any, params: Mapping[str, Any]) -> str:
    """Stable short hash of a request: same prompt and parameters, same fingerprint."""
    canonical = json.dumps(
        {"endpoint": endpoint, "model": model_id, "input": payload, "params": params},
        sort_keys=True,
        default=repr,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ClientPool:
    """Per-process SDK clients and the models' limits, shared by every test of a worker."""

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        shared: Path | None = None,
        transcripts: bool = True,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.shared = shared
        self.transcripts = transcripts  # False (--llm-record=none): calls keep no exchange
        self._env = env
        self._lock = threading.Lock()
        self._sync: dict[tuple[str | None, str], openai.OpenAI] = {}
        self._async: dict[
            tuple[asyncio.AbstractEventLoop, str | None, str], openai.AsyncOpenAI
        ] = {}
        self._limiters: dict[str, ModelLimiter] = {}
        named = {settings.api_key_env, *(settings.key_env(m) for m in settings.models.values())}
        self.redact = Redactor(env.get(name, "") for name in named)
        self.policy = RetryPolicy(retries=settings.retries)
        self.budget = budget
        self.rng = random.Random()

    def api_key(self, key_env: str, required: bool) -> str:
        """The key from the environment; a missing key is fatal only when configured explicitly."""
        key = self._env.get(key_env)
        if key:
            self.redact.add(key)
            return key
        if required:
            raise MissingKeyError(
                f"environment variable {key_env} is not set "
                f"(api_key_env in {self.settings.source}); export it before running"
            )
        return PLACEHOLDER_KEY

    def sync_client(self, base_url: str | None, key_env: str, key: str) -> openai.OpenAI:
        with self._lock:
            if (base_url, key_env) not in self._sync:
                self._sync[(base_url, key_env)] = openai.OpenAI(**self._options(base_url, key))
            return self._sync[(base_url, key_env)]

    def async_client(self, base_url: str | None, key_env: str, key: str) -> openai.AsyncOpenAI:
        cache_key = (asyncio.get_running_loop(), base_url, key_env)
        with self._lock:
            if cache_key not in self._async:
                self._async[cache_key] = openai.AsyncOpenAI(**self._options(base_url, key))
            return self._async[cache_key]

    def _options(self, base_url: str | None, key: str) -> dict[str, Any]:
        """SDK client settings; its own retries are off because `_Request` retries and counts."""
        return {
            "api_key": key,
            "base_url": base_url,
            "timeout": self.settings.timeout,
            "max_retries": 0,
        }

    def limiter(self, model: ModelSettings) -> ModelLimiter:
        """The model's rpm/tpm/concurrency limits, shared by every sample of this process and,
        given the run's `shared` folder (under xdist), by every worker on the machine."""
        with self._lock:
            limiter = self._limiters.get(model.name)
            if limiter is None:
                state = None
                if self.shared is not None:
                    state = self.shared / f"limits-{urllib.parse.quote(model.name, safe='')}.json"
                limiter = ModelLimiter(
                    max_concurrency=model.max_concurrency,
                    rpm=model.rpm,
                    tpm=model.tpm,
                    shared=state,
                )
                self._limiters[model.name] = limiter
            return limiter

    def close(self) -> None:
        """Close sync clients; async clients die with their event loop."""
        with self._lock:
            clients, self._sync = list(self._sync.values()), {}
            self._async.clear()
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        """Close the async clients bound to the running loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = [k for k in self._async if k[0] is loop]
            clients = [self._async.pop(k) for k in mine]
        for client in clients:
            await client.close()


class LLM:
    """Client for one model: `chat`/`complete`/`stream` and async twins, returning Completions,
    and `embed` for `/v1/embeddings`.

    Every call goes through the model's limiter and the run's budget, is retried on 429, 5xx,
    timeouts and dropped connections (honouring Retry-After), and is recorded for the report
    under `role`: the model under test, the judge, or the embedding model.
    """

    def __init__(
        self,
        model: ModelSettings,
        pool: ClientPool,
        base_url: str | None = None,
        test: str | None = None,
        role: str = "model",
    ) -> None:
        self.model = model
        self.test = test
        self.role = role
        self._pool = pool
        self._base_url = model.base_url or base_url
        self._key_env = pool.settings.key_env(model)
        self._key = pool.api_key(self._key_env, pool.settings.key_required(model))
        self.defaults = {**pool.settings.params, **model.params}  # request parameters from config

    def __repr__(self) -> str:
        return f"LLM({self.model.name!r}, model_id={self.model.model_id!r}, api={self.model.api!r})"

    def redact(self, text: str) -> str:
        """`text` without any API key this process has used."""
        return self._pool.redact(text)

    @property
    def client(self) -> openai.OpenAI:
        """The raw synchronous `openai` client (calls made through it are not recorded)."""
        return self._pool.sync_client(self._base_url, self._key_env, self._key)

    @property
    def aclient(self) -> openai.AsyncOpenAI:
        """The raw asynchronous `openai` client for the running event loop."""
        return self._pool.async_client(self._base_url, self._key_env, self._key)

    def chat(
        self, messages: str | list[dict[str, Any]], *, stream: bool = False, **params: Any
    ) -> Completion:
        """Send a chat completion; a plain string becomes one user message.

        With `stream=True` the answer is streamed and the Completion gets `ttft_s`.
        """
        return self._run(self._request("chat", _messages(messages), params), stream)

    def complete(self, prompt: str, *, stream: bool = False, **params: Any) -> Completion:
        """Send a legacy text completion (for base models, `api = "completion"`)."""
        return self._run(self._request("completion", prompt, params), stream)

    def stream(self, prompt: str | list[dict[str, Any]], **params: Any) -> TextStream:
        """Stream text deltas as they arrive; `.completion` holds the result once exhausted."""
        payload = prompt if self.model.api == "completion" else _messages(prompt)
        return TextStream(self._stream(self._request(self.model.api, payload, params)))

    async def achat(
        self, messages: str | list[dict[str, Any]], *, stream: bool = False, **params: Any
    ) -> Completion:
        """Async twin of `chat`."""
        return await self._arun(self._request("chat", _messages(messages), params), stream)

    async def acomplete(self, prompt: str, *, stream: bool = False, **params: Any) -> Completion:
        """Async twin of `complete`."""
        return await self._arun(self._request("completion", prompt, params), stream)

    def astream(self, prompt: str | list[dict[str, Any]], **params: Any) -> AsyncTextStream:
        """Async twin of `stream`."""
        payload = prompt if self.model.api == "completion" else _messages(prompt)
        return AsyncTextStream(self._astream(self._request(self.model.api, payload, params)))

    def embed(self, texts: str | Sequence[str], **params: Any) -> Embeddings:
        """Embed one text or several through `/v1/embeddings`: one vector per text, in order."""
        request = self._embedding_request(texts, params)
        hit = request.lookup_embeddings()
        if hit is not None:
            return hit
        while True:
            permit = request.begin()
            try:
                response = self.client.embeddings.create(**request.body)
            except BaseException as exc:
                time.sleep(request.failed(permit, exc))
                continue
            return request.embedded(permit, response)

    async def aembed(self, texts: str | Sequence[str], **params: Any) -> Embeddings:
        """Async twin of `embed`."""
        request = self._embedding_request(texts, params)
        hit = request.lookup_embeddings()
        if hit is not None:
            return hit
        while True:
            permit = await request.abegin()
            try:
                response = await self.aclient.embeddings.create(**request.body)
            except BaseException as exc:
                await asyncio.sleep(request.failed(permit, exc))
                continue
            return request.embedded(permit, response)

    def _embedding_request(self, texts: str | Sequence[str], params: Mapping[str, Any]) -> _Request:
        """Only the call's own parameters: the run's `params` are for chat and completions."""
        inputs = [texts] if isinstance(texts, str) else list(texts)
        if not inputs or not all(isinstance(text, str) for text in inputs):
            raise LLMUsageError("embed() takes a string or a non-empty list of strings")
        body = {**params, "input": inputs, "model": self.model.model_id}
        return _Request(self, "embedding", body)

    def _request(self, endpoint: str, payload: Any, params: Mapping[str, Any]) -> _Request:
        if self.model.api == "embedding":
            raise LLMUsageError(
                f"model {self.model.name!r} is configured with api='embedding': it only serves "
                "embeddings, not chat or completions"
            )
        if endpoint != self.model.api:
            use = "llm.chat(messages)" if self.model.api == "chat" else "llm.complete(prompt)"
            raise LLMUsageError(
                f"model {self.model.name!r} is configured with api={self.model.api!r}; use {use}"
            )
        if "stream" in params:
            raise LLMUsageError("pass stream=True as a keyword of chat/complete, or use llm.stream")
        field = "messages" if endpoint == "chat" else "prompt"
        body = {**self.defaults, **params, field: payload, "model": self.model.model_id}
        return _Request(self, endpoint, body)

    def _run(self, request: _Request, stream: bool) -> Completion:
        if stream:
            text_stream = TextStream(self._stream(request))
            for _ in text_stream:
                pass
            assert text_stream.completion is not None
            return text_stream.completion
        hit = request.lookup(stream=False)
        if hit is not None:
            return hit
        send = _create(self.client, request.endpoint)
        while True:
            permit = request.begin()
            try:
                response = send(**request.body)
            except BaseException as exc:
                delay = request.failed(permit, exc)
                time.sleep(delay)
                continue
            return request.succeeded(permit, response)

    async def _arun(self, request: _Request, stream: bool) -> Completion:
        if stream:
            text_stream = AsyncTextStream(self._astream(request))
            async for _ in text_stream:
                pass
            assert text_stream.completion is not None
            return text_stream.completion
        hit = request.lookup(stream=False)
        if hit is not None:
            return hit
        send = _create(self.aclient, request.endpoint)
        while True:
            permit = await request.abegin()
            try:
                response = await send(**request.body)
            except BaseException as exc:
                delay = request.failed(permit, exc)
                await asyncio.sleep(delay)
                continue
            return request.succeeded(permit, response)

    def _stream(self, request: _Request) -> Generator[str | Completion, None, None]:
        hit = request.lookup(stream=True)
        if hit is not None:
            yield from _replay_stream(hit)
            return
        send = _create(self.client, request.endpoint)
        body = request.stream_body()
        while True:
            permit = request.begin()
            state = StreamState(start=time.perf_counter())
            try:
                with send(**body) as response:
                    for chunk in response:
                        text = state.add(chunk, time.perf_counter())
                        if text:
                            yield text
                result = state.finish()
            except GeneratorExit:  # the test stopped reading: not an error of the call
                request.settle()
                permit.release()
                raise
            except BaseException as exc:
                delay = request.failed(permit, exc, started=state.ttft is not None)
                time.sleep(delay)
                continue
            yield request.streamed(permit, state, result)
            return

    async def _astream(self, request: _Request) -> AsyncGenerator[str | Completion, None]:
        hit = request.lookup(stream=True)
        if hit is not None:
            for item in _replay_stream(hit):
                yield item
            return
        send = _create(self.aclient, request.endpoint)
        body = request.stream_body()
        while True:
            permit = await request.abegin()
            state = StreamState(start=time.perf_counter())
            try:
                async with await send(**body) as response:
                    async for chunk in response:
                        text = state.add(chunk, time.perf_counter())
                        if text:
                            yield text
                result = state.finish()
            except GeneratorExit:
                request.settle()
                permit.release()
                raise
            except BaseException as exc:
                delay = request.failed(permit, exc, started=state.ttft is not None)
                await asyncio.sleep(delay)
                continue
            yield request.streamed(permit, state, result)
            return


class _Request:
    """One logical call and its attempts: limits, budget, retries and the record it leaves."""

    def __init__(self, llm: LLM, endpoint: str, body: dict[str, Any]) -> None:
        self.llm = llm
        self.endpoint = endpoint
        self.body = body
        self.pool = llm._pool
        self.limiter = self.pool.limiter(llm.model)
        self.estimate = len(json.dumps(_payload(body), default=str)) // 4
        if endpoint != "embedding":
            self.estimate += int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        self.worst_usd = self._worst_case()
        self.reservation: Reservation | None = None
        self.attempt = 0
        self.causes: list[str] = []
        self.started = 0.0
        self.key: str | None = None

    def _worst_case(self) -> float | None:
        """What the request could cost at most, when a budget must hold it; None: no need."""
        model = self.llm.model
        if self.pool.budget is None:
            return None
        output_limit = model.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        prompt, output = worst_case_tokens(self.body, output_limit)
        usd = model.cost_usd(prompt, 0 if self.endpoint == "embedding" else output)
        return usd or None  # unpriced or free models reserve nothing

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started if self.started else 0.0

    @functools.cached_property
    def prompt_fingerprint(self) -> str:
        """The prompt fingerprint: endpoint, model id, the messages the test wrote and the
        parameters; no sample, and not the model's own earlier turns (assistant and tool
        messages), so a dialogue's prompt does not "change" with the answers."""
        payload = _payload(self.body)
        if self.endpoint != "embedding" and isinstance(payload, list):
            payload = [
                m
                for m in payload
                if not (isinstance(m, Mapping) and m.get("role") in ("assistant", "tool"))
            ]
        params = {k: v for k, v in self.body.items() if k not in (*_PAYLOADS, "model")}
        return fingerprint(self.endpoint, self.llm.model.model_id, payload, params)

    def lookup(self, stream: bool) -> Completion | None:
        """The cached answer when the cache is read (no request, no budget); None on a miss,
        except under replay, where a miss is an error naming the test."""
        entry = self._cached(stream)
        return None if entry is None else self._replayed(entry)

    def lookup_embeddings(self) -> Embeddings | None:
        entry = self._cached(stream=False)
        return None if entry is None else self._replayed_embeddings(entry)

    def _cached(self, stream: bool) -> Mapping[str, Any] | None:
        cache = self.pool.cache
        if cache is None or not (cache.reads or cache.writes):
            return None
        trace = current_trace()
        if trace is None:  # a fixture, or a thread the test started: no sample to key it by
            return None
        model = self.llm.model
        sample = [trace.index, trace.occurrence(f"{self.prompt_fingerprint}:{stream}")]
        self.key = cache_key(self.endpoint, [model.name, model.model_id], self.body, stream, sample)
        entry = cache.get(self.key) if cache.reads else None
        if entry is not None:
            return entry
        if cache.replay:
            exc = CacheMiss(
                f"--llm-cache=replay: no cached answer for {self.llm.test or 'this call'} "
                f"sample {trace.index} (model {model.name!r}, prompt {self.prompt_fingerprint}) "
                f"in {cache.path}; "
                "record it with --llm-cache=readwrite"
            )
            self._record(None, error=exc)
            raise exc
        return None

    def _replayed(self, entry: Mapping[str, Any]) -> Completion:
        usage = Usage(**entry["usage"])
        model = self.llm.model
        saved = model.cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        latency, ttft = float(entry["latency_s"]), entry["ttft_s"]
        calls = tuple(ToolCall(**call) for call in entry["tool_calls"])
        answer = _answered(entry["text"], calls, entry["finish_reason"])
        self._record(usage, latency=latency, ttft=ttft, cached=True, saved=saved, answer=answer)
        raw = entry["raw"]
        if raw is not None:
            raw = _response_type(self.endpoint).model_validate(raw)
        return Completion(
            text=entry["text"],
            model=model.name,
            usage=usage,
            latency_s=latency,
            cost_usd=None if saved is None else 0.0,
            finish_reason=entry["finish_reason"],
            tool_calls=calls,
            ttft_s=ttft,
            usage_estimated=entry["usage_estimated"],
            raw=raw,
            cached=True,
        )

    def _replayed_embeddings(self, entry: Mapping[str, Any]) -> Embeddings:
        usage = Usage(**entry["usage"])
        saved = self.llm.model.cost_usd(usage.prompt_tokens, 0)
        latency = float(entry["latency_s"])
        vectors = tuple(tuple(vector) for vector in entry["vectors"])
        answer = _vectors(len(vectors), len(vectors[0]) if vectors else 0)
        self._record(usage, latency=latency, cached=True, saved=saved, answer=answer)
        cost = None if saved is None else 0.0
        return Embeddings(vectors, self.llm.model.name, usage, latency, cost, cached=True)

    def embedded(self, permit: Permit, response: Any) -> Embeddings:
        """The vectors in input order, charged and recorded like any call."""
        latency = time.perf_counter() - self.started
        raw_usage = getattr(response, "usage", None)
        tokens = int(getattr(raw_usage, "prompt_tokens", 0) or 0)
        usage = Usage(prompt_tokens=tokens)
        cost = self.llm.model.cost_usd(tokens, 0)
        self.settle(cost)
        permit.release(tokens=tokens)
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(self.body["input"]):
            exc = BadResponseError(
                f"asked for {len(self.body['input'])} embeddings, the server sent {len(data)}"
            )
            self._record(usage, latency=latency, cost=cost, error=exc)
            raise exc
        vectors = tuple(tuple(float(x) for x in item.embedding) for item in data)
        answer = _vectors(len(vectors), len(vectors[0]) if vectors else 0)
        self._record(usage, latency=latency, cost=cost, answer=answer)
        self._put({"vectors": vectors, "usage": usage.__dict__, "latency_s": latency})
        return Embeddings(vectors, self.llm.model.name, usage, latency, cost)

    def _store(self, completion: Completion) -> None:
        """Keep a successful answer for later runs; never the request, its headers or key."""
        raw = completion.raw
        entry = {
            "text": completion.text,
            "tool_calls": [call.__dict__ for call in completion.tool_calls],
            "usage": completion.usage.__dict__,
            "finish_reason": completion.finish_reason,
            "latency_s": completion.latency_s,
            "ttft_s": completion.ttft_s,
            "usage_estimated": completion.usage_estimated,
            "raw": None if raw is None else raw.model_dump(mode="json"),
        }
        self._put(entry)

    def _put(self, entry: Mapping[str, Any]) -> None:
        cache = self.pool.cache
        if cache is None or not cache.writes or self.key is None:
            return
        text = self.pool.redact(json.dumps(entry, sort_keys=True, default=str))
        cache.put(self.key, self.llm.model.model_id, self.endpoint, self.prompt_fingerprint, text)

    def stream_body(self) -> dict[str, Any]:
        return {"stream_options": {"include_usage": True}, **self.body, "stream": True}

    def begin(self) -> Permit:
        """Wait for the model's limits, then reserve the worst case against the budget (after
        the permit, so samples queued behind a limit see the latest spend)."""
        permit = self.limiter.acquire(self.estimate)
        try:
            if self.worst_usd is not None and self.pool.budget is not None:
                self.reservation = self.pool.budget.reserve(self.worst_usd)
        except BaseException as exc:
            self._refused(permit, exc)
        return self._started(permit)

    async def abegin(self) -> Permit:
        permit = await self.limiter.aacquire(self.estimate)
        try:
            if self.worst_usd is not None and self.pool.budget is not None:
                self.reservation = await self.pool.budget.areserve(self.worst_usd)
        except BaseException as exc:
            self._refused(permit, exc)
        return self._started(permit)

    def _refused(self, permit: Permit, exc: BaseException) -> NoReturn:
        """No request goes out: free the slot; a budget refusal is the call's recorded error."""
        permit.release()
        if isinstance(exc, BudgetExhausted):
            self._record(None, error=exc)
        raise exc

    def _started(self, permit: Permit) -> Permit:
        self.started = time.perf_counter()
        return permit

    def settle(self, cost: float | None = None) -> None:
        """End the attempt's reservation: charge the real cost, or nothing when it failed."""
        if self.reservation is not None:
            self.reservation.settle(cost or 0.0)
            self.reservation = None

    def failed(self, permit: Permit, exc: BaseException, started: bool = False) -> float:
        """Release the permit; return how long to wait before retrying, or raise for good."""
        label = cause(exc)
        self.settle()
        permit.release(throttled=label == "rate_limit")
        policy = self.pool.policy
        retry = isinstance(exc, Exception) and not started and policy.retryable(exc)
        if retry and self.attempt < policy.retries:
            self.causes.append(label)
            delay = policy.delay(self.attempt, exc, self.pool.rng)
            self.attempt += 1
            return delay
        self._record(None, error=exc)
        _reraise(exc)

    def succeeded(self, permit: Permit, response: Any) -> Completion:
        raw_usage = getattr(response, "usage", None)
        usage = usage_of(raw_usage) if raw_usage is not None else Usage()
        choice = response.choices[0] if response.choices else None
        if self.endpoint == "chat":
            message = choice.message if choice is not None else None
            text = (message.content if message is not None else None) or ""
            calls = _tool_calls(message)
        else:
            text = (choice.text if choice is not None else None) or ""
            calls = ()
        finish = choice.finish_reason if choice is not None else None
        return self._complete(permit, text, calls, usage, finish, None, False, response)

    def streamed(
        self,
        permit: Permit,
        state: StreamState,
        result: tuple[str, tuple[ToolCall, ...], Usage, bool],
    ) -> Completion:
        text, calls, usage, estimated = result
        return self._complete(
            permit, text, calls, usage, state.finish_reason, state.ttft, estimated, None
        )

    def _complete(
        self,
        permit: Permit,
        text: str,
        calls: tuple[ToolCall, ...],
        usage: Usage,
        finish: str | None,
        ttft: float | None,
        estimated: bool,
        raw: Any,
    ) -> Completion:
        latency = time.perf_counter() - self.started
        model = self.llm.model
        cost = model.cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        self.settle(cost)  # before the slot frees, so the next request sees the spend
        permit.release(tokens=usage.total_tokens)
        self._record(
            usage, latency=latency, cost=cost, ttft=ttft, answer=_answered(text, calls, finish)
        )
        completion = Completion(
            text=text,
            model=model.name,
            usage=usage,
            latency_s=latency,
            cost_usd=cost,
            finish_reason=finish,
            tool_calls=calls,
            ttft_s=ttft,
            usage_estimated=estimated,
            attempts=self.attempt + 1,
            raw=raw,
        )
        self._store(completion)
        return completion

    def _record(
        self,
        usage: Usage | None,
        *,
        latency: float | None = None,
        cost: float | None = None,
        ttft: float | None = None,
        error: BaseException | None = None,
        cached: bool = False,
        saved: float | None = None,
        answer: Answered | None = None,
    ) -> None:
        trace = current_trace()
        if trace is None:
            return
        exchanged, cut = None, False
        if self.pool.transcripts:
            text, calls, finish = answer if answer is not None else ("", (), None)
            failure = None if error is None else f"{type(error).__name__}: {error}"
            exchanged, cut = exchange(
                self.llm.role,
                self.endpoint,
                sent_messages(self.endpoint, self.body),
                text,
                self.pool.redact,
                finish_reason=finish,
                tool_calls=calls,
                error=failure,
            )
        trace.add(
            CallRecord(
                endpoint=self.endpoint,
                fingerprint=self.prompt_fingerprint,
                role=self.llm.role,
                latency_s=latency if latency is not None else self._elapsed(),
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                cost_usd=cost,
                error_type=type(error).__name__ if error is not None else None,
                cause=cause(error) if error is not None else None,
                ttft_s=ttft,
                attempts=self.attempt + 1,
                retry_causes=tuple(self.causes),
                cached=cached,
                saved_usd=saved,
                exchange=exchanged,
                cut=cut,
            )
        )


Answered: TypeAlias = tuple[str, Sequence[tuple[str, object]], str | None]


def _answered(text: str, calls: Sequence[ToolCall], finish: str | None) -> Answered:
    """An answer as a transcript keeps it: text, (name, arguments) of each tool call, finish."""
    return text, [(call.name, call.arguments) for call in calls], finish


def _vectors(count: int, dimensions: int) -> Answered:
    return f"[{count} embedding(s) of {dimensions} dimensions]", (), None


class TextStream:
    """Iterates over text deltas; after the last one, `completion` is the full Completion."""

    def __init__(self, source: Generator[str | Completion, None, None]) -> None:
        self._source = source
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for item in self._source:
                if isinstance(item, Completion):
                    self.completion = item
                else:
                    yield item
        finally:  # a test that stops reading frees the request's slot at once
            self._source.close()


class AsyncTextStream:
    """Async twin of TextStream."""

    def __init__(self, source: AsyncGenerator[str | Completion, None]) -> None:
        self._source = source
        self.completion: Completion | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for item in self._source:
                if isinstance(item, Completion):
                    self.completion = item
                else:
                    yield item
        finally:
            await self._source.aclose()


def _reraise(exc: BaseException) -> NoReturn:
    """Keep SDK errors; anything else the SDK raised is a bad response, not a model failure."""
    if isinstance(exc, call_errors()) or not isinstance(exc, Exception):
        raise exc
    raise BadResponseError(f"{type(exc).__name__}: {exc}") from exc


def _response_type(endpoint: str) -> Any:
    """The SDK response model for an endpoint, to rebuild `raw` from a cached answer."""
    return openai.types.chat.ChatCompletion if endpoint == "chat" else openai.types.Completion


def _replay_stream(completion: Completion) -> Iterator[str | Completion]:
    """A cached answer to a streamed call: its text as one delta, then the Completion."""
    if completion.text:
        yield completion.text
    yield completion


def _create(client: Any, endpoint: str) -> Any:
    """The SDK method for an endpoint: chat completions or legacy completions."""
    return client.chat.completions.create if endpoint == "chat" else client.completions.create


_PAYLOADS = ("messages", "prompt", "input")


def _payload(body: Mapping[str, Any]) -> Any:
    """What the request asks about: chat messages, a completion prompt or texts to embed."""
    return next((body[key] for key in _PAYLOADS if key in body), None)


def _messages(messages: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else messages


def _tool_calls(message: Any) -> tuple[ToolCall, ...]:
    calls = getattr(message, "tool_calls", None) or ()
    return tuple(
        ToolCall(call.id, call.function.name, parse_arguments(call.function.arguments))
        for call in calls
    )
