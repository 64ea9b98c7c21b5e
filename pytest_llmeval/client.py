"""The gateway client: one model behind the official `openai` SDK, every call recorded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import openai

from .completion import Completion, ToolCall, Usage
from .config import ModelSettings, Settings
from .records import CallRecord, current_trace

PLACEHOLDER_KEY = "no-key"
MIN_SECRET_LENGTH = (
    8  # shorter "keys" are placeholders ("EMPTY", "ollama"); redacting them garbles text
)


class LLMError(Exception):
    """A model call could not be made; a sample raising it is an error, not a failure."""


class MissingKeyError(LLMError):
    """The configured API key variable is not set."""


class LLMUsageError(TypeError):
    """The test called the client the wrong way; the test fails, no sample is counted."""


class BadResponseError(LLMError):
    """The SDK failed on what the server sent (e.g. a body that is not JSON)."""


CALL_ERRORS: tuple[type[BaseException], ...] = (openai.OpenAIError, LLMError)


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
    """Per-process SDK clients and concurrency limits, shared by every test of a worker."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self.settings = settings
        self._env = env
        self._lock = threading.Lock()
        self._sync: dict[tuple[str | None, str], openai.OpenAI] = {}
        self._async: dict[
            tuple[asyncio.AbstractEventLoop, str | None, str], openai.AsyncOpenAI
        ] = {}
        self._limits: dict[str, threading.BoundedSemaphore] = {}
        self._alimits: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Semaphore] = {}
        self._secrets: set[str] = set()

    def api_key(self, key_env: str, required: bool) -> str:
        """The key from the environment; a missing key is fatal only when configured explicitly."""
        key = self._env.get(key_env)
        if key:
            if len(key) >= MIN_SECRET_LENGTH:
                with self._lock:
                    self._secrets.add(key)
            return key
        if required:
            raise MissingKeyError(
                f"environment variable {key_env} is not set "
                f"(api_key_env in {self.settings.source}); export it before running"
            )
        return PLACEHOLDER_KEY

    def redact(self, text: str) -> str:
        """Remove every API key this process has used from `text`."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def sync_client(self, base_url: str | None, key_env: str, key: str) -> openai.OpenAI:
        with self._lock:
            client = self._sync.get((base_url, key_env))
            if client is None:
                client = openai.OpenAI(
                    api_key=key,
                    base_url=base_url,
                    timeout=self.settings.timeout,
                    max_retries=self.settings.retries,
                )
                self._sync[(base_url, key_env)] = client
            return client

    def async_client(self, base_url: str | None, key_env: str, key: str) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get((loop, base_url, key_env))
            if client is None:
                client = openai.AsyncOpenAI(
                    api_key=key,
                    base_url=base_url,
                    timeout=self.settings.timeout,
                    max_retries=self.settings.retries,
                )
                self._async[(loop, base_url, key_env)] = client
            return client

    def limit(self, model: ModelSettings) -> threading.BoundedSemaphore | None:
        if model.max_concurrency is None:
            return None
        with self._lock:
            return self._limits.setdefault(
                model.name, threading.BoundedSemaphore(model.max_concurrency)
            )

    def alimit(self, model: ModelSettings) -> asyncio.Semaphore | None:
        if model.max_concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._alimits.setdefault(
                (loop, model.name), asyncio.Semaphore(model.max_concurrency)
            )

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
    """Client for one model: `chat`/`complete` and async twins, each returning a Completion."""

    def __init__(self, model: ModelSettings, pool: ClientPool, base_url: str | None = None) -> None:
        self.model = model
        self._pool = pool
        self._base_url = model.base_url or base_url
        self._key_env = pool.settings.key_env(model)
        required = pool.settings.api_key_env_explicit or model.api_key_env is not None
        self._key = pool.api_key(self._key_env, required)
        self._defaults = {**pool.settings.params, **model.params}

    def __repr__(self) -> str:
        return f"LLM({self.model.name!r}, model_id={self.model.model_id!r}, api={self.model.api!r})"

    @property
    def client(self) -> openai.OpenAI:
        """The raw synchronous `openai` client (calls made through it are not recorded)."""
        return self._pool.sync_client(self._base_url, self._key_env, self._key)

    @property
    def aclient(self) -> openai.AsyncOpenAI:
        """The raw asynchronous `openai` client for the running event loop."""
        return self._pool.async_client(self._base_url, self._key_env, self._key)

    def chat(self, messages: str | list[dict[str, Any]], **params: Any) -> Completion:
        """Send a chat completion; a plain string becomes one user message."""
        request = self._request("chat", "messages", _messages(messages), params)
        limit = self._pool.limit(self.model)
        return self._sync_call(
            "chat", request, lambda: self.client.chat.completions.create(**request), limit
        )

    def complete(self, prompt: str, **params: Any) -> Completion:
        """Send a legacy text completion (for base models, `api = "completion"`)."""
        request = self._request("completion", "prompt", prompt, params)
        limit = self._pool.limit(self.model)
        return self._sync_call(
            "completion", request, lambda: self.client.completions.create(**request), limit
        )

    async def achat(self, messages: str | list[dict[str, Any]], **params: Any) -> Completion:
        """Async twin of `chat`."""
        request = self._request("chat", "messages", _messages(messages), params)
        return await self._async_call(
            "chat", request, lambda: self.aclient.chat.completions.create(**request)
        )

    async def acomplete(self, prompt: str, **params: Any) -> Completion:
        """Async twin of `complete`."""
        request = self._request("completion", "prompt", prompt, params)
        return await self._async_call(
            "completion", request, lambda: self.aclient.completions.create(**request)
        )

    def _request(
        self, endpoint: str, field: str, payload: Any, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        if endpoint != self.model.api:
            use = "llm.chat(messages)" if self.model.api == "chat" else "llm.complete(prompt)"
            raise LLMUsageError(
                f"model {self.model.name!r} is configured with api={self.model.api!r}; use {use}"
            )
        if "stream" in params:
            raise LLMUsageError(
                "streaming is not supported by llm.chat/llm.complete yet; use llm.client"
            )
        return {**self._defaults, **params, field: payload, "model": self.model.model_id}

    def _sync_call(
        self,
        endpoint: str,
        request: dict[str, Any],
        send: Callable[[], Any],
        limit: threading.BoundedSemaphore | None,
    ) -> Completion:
        if limit is not None:
            limit.acquire()
        start = time.perf_counter()
        try:
            response = send()
        except BaseException as exc:
            self._record_failure(endpoint, request, time.perf_counter() - start, exc)
            _reraise(exc)
        finally:
            if limit is not None:
                limit.release()
        return self._finish(endpoint, request, response, time.perf_counter() - start)

    async def _async_call(
        self, endpoint: str, request: dict[str, Any], send: Callable[[], Awaitable[Any]]
    ) -> Completion:
        limit = self._pool.alimit(self.model)
        if limit is not None:
            await limit.acquire()
        start = time.perf_counter()
        try:
            response = await send()
        except BaseException as exc:
            self._record_failure(endpoint, request, time.perf_counter() - start, exc)
            _reraise(exc)
        finally:
            if limit is not None:
                limit.release()
        return self._finish(endpoint, request, response, time.perf_counter() - start)

    def _fingerprint(self, endpoint: str, request: dict[str, Any]) -> str:
        payload = request.get("messages", request.get("prompt"))
        params = {k: v for k, v in request.items() if k not in ("messages", "prompt", "model")}
        return fingerprint(endpoint, self.model.model_id, payload, params)

    def _record_failure(
        self, endpoint: str, request: dict[str, Any], latency: float, exc: BaseException
    ) -> None:
        trace = current_trace()
        if trace is not None:
            trace.add(
                CallRecord(
                    endpoint,
                    self._fingerprint(endpoint, request),
                    latency,
                    error_type=type(exc).__name__,
                )
            )

    def _finish(
        self, endpoint: str, request: dict[str, Any], response: Any, latency: float
    ) -> Completion:
        usage = _usage(response)
        cost = self.model.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        trace = current_trace()
        if trace is not None:
            trace.add(
                CallRecord(
                    endpoint,
                    self._fingerprint(endpoint, request),
                    latency,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    cost,
                )
            )
        choice = response.choices[0] if response.choices else None
        if endpoint == "chat":
            message = choice.message if choice is not None else None
            text = (message.content if message is not None else None) or ""
            calls = _tool_calls(message)
        else:
            text = (choice.text if choice is not None else None) or ""
            calls = ()
        return Completion(
            text=text,
            model=self.model.name,
            usage=usage,
            latency_s=latency,
            cost_usd=cost,
            finish_reason=choice.finish_reason if choice is not None else None,
            tool_calls=calls,
            raw=response,
        )


def _reraise(exc: BaseException) -> NoReturn:
    """Keep SDK errors; anything else the SDK raised is a bad response, not a model failure."""
    if isinstance(exc, openai.OpenAIError) or not isinstance(exc, Exception):
        raise exc
    raise BadResponseError(f"{type(exc).__name__}: {exc}") from exc


def _messages(messages: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else messages


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    return Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)


def _tool_calls(message: Any) -> tuple[ToolCall, ...]:
    calls = getattr(message, "tool_calls", None) or ()
    parsed = []
    for call in calls:
        try:
            arguments = json.loads(call.function.arguments)
        except (TypeError, ValueError):
            arguments = call.function.arguments
        parsed.append(ToolCall(call.id, call.function.name, arguments))
    return tuple(parsed)
