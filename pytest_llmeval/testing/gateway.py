"""OpenAI-compatible fake gateway: a real local HTTP server with scripted replies and faults.

Serves chat and legacy completions and embeddings (``/v1/embeddings``, hashed text features by
default, so similar texts get similar vectors with no model download).

Drive it with the real ``openai`` client (``base_url=gw.base_url``) to test eval suites offline.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import math
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias
from urllib.parse import urlsplit

__all__ = [
    "BadRequest",
    "Choice",
    "Cycle",
    "Drop",
    "Echo",
    "Embedder",
    "FakeGateway",
    "Fault",
    "Fixed",
    "HTTPError",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Stall",
    "TruncateStream",
    "hashed_embedding",
]

_CHAT = "/v1/chat/completions"
_COMPLETIONS = "/v1/completions"
_EMBEDDINGS = "/v1/embeddings"
_DEFAULT_DIMENSIONS = 256
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; header names are lower-cased and credentials are never kept."""

    path: str
    model: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    time: float

    @property
    def prompt(self) -> str:
        """Last user message text for chat requests, the prompt for legacy completions, the
        input texts joined by newlines for embeddings."""
        if self.path == _EMBEDDINGS:
            return "\n".join(self.inputs)
        if self.path != _CHAT:
            prompt = self.body.get("prompt")
            return prompt if isinstance(prompt, str) else ""
        users = [m for m in _messages(self.body) if m.get("role") == "user"]
        return _content_text(users[-1].get("content")) if users else ""

    @property
    def inputs(self) -> list[str]:
        """The texts to embed of an embeddings request (a single string as a list of one)."""
        if self.path != _EMBEDDINGS:
            return []
        given = self.body.get("input")
        if isinstance(given, str):
            return [given]
        if isinstance(given, list):
            return [text for text in given if isinstance(text, str)]
        return []


@dataclass(frozen=True)
class Reply:
    """A full reply (also usable as a responder); tool calls are ``{"name", "arguments"}`` dicts.

    ``arguments`` may be a dict or a JSON string; finish_reason becomes "tool_calls" when present.
    """

    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def __post_init__(self) -> None:
        for call in self.tool_calls or []:
            if not isinstance(call.get("name"), str):
                raise ValueError(f"tool call needs a string 'name': {call!r}")

    def __call__(self, request: RecordedRequest) -> Reply:
        return self


Responder: TypeAlias = Callable[[RecordedRequest], Reply | str]
Embedder: TypeAlias = Callable[[str], Sequence[float]]


class BadRequest(Exception):
    """Raise from a responder for a request it cannot answer: the client gets a 400 with the
    message (a 500 would be retried by the SDK)."""


@dataclass(frozen=True)
class Fixed:
    """Always reply with the same text."""

    text: str

    def __call__(self, request: RecordedRequest) -> str:
        return self.text


@dataclass
class Cycle:
    """Reply with the texts in round-robin order (each model gets its own position)."""

    texts: Sequence[str]
    _next: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError("Cycle needs at least one text")

    def __call__(self, request: RecordedRequest) -> str:
        text = self.texts[self._next % len(self.texts)]
        self._next += 1
        return text

    def bind(self, rng: random.Random) -> Cycle:
        """Fresh copy for one model, starting at the first text."""
        return Cycle(self.texts)


@dataclass(frozen=True)
class Echo:
    """Reply with the last user message (chat) or the prompt (completions)."""

    def __call__(self, request: RecordedRequest) -> str:
        return request.prompt


@dataclass
class Choice:
    """Reply with a text drawn at random by weight; the gateway binds it to its seeded RNG."""

    weights: Mapping[str, float]
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.weights or any(w < 0 for w in self.weights.values()):
            raise ValueError("Choice needs at least one text and non-negative weights")
        if sum(self.weights.values()) <= 0:
            raise ValueError("Choice weights must not all be zero")

    def __call__(self, request: RecordedRequest) -> str:
        return self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]

    def bind(self, rng: random.Random) -> Choice:
        """Copy drawing from ``rng`` (the model's seeded generator)."""
        return Choice(self.weights, rng)


@dataclass(frozen=True)
class HTTPError:
    """Answer with this status and an OpenAI error body, plus ``Retry-After`` when given."""

    status: int
    retry_after: float | None = None
    message: str = "Injected fault from the fake gateway."


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending a response."""


@dataclass(frozen=True)
class Stall:
    """Wait ``seconds`` before answering normally (to trigger client timeouts)."""

    seconds: float


@dataclass(frozen=True)
class Malformed:
    """Answer 200 with ``Content-Type: application/json`` but a body that is not JSON."""

    body: str = "<html><body>502 Bad Gateway</body></html>"


@dataclass(frozen=True)
class TruncateStream:
    """Send ``after_chunks`` delta chunks of a stream then close without ``[DONE]``.

    Non-stream requests are dropped instead.
    """

    after_chunks: int


Fault: TypeAlias = HTTPError | Drop | Stall | Malformed | TruncateStream


@dataclass
class _Model:
    responder: Responder
    latency_s: float | None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _EmbeddingModel:
    embedder: Embedder | None  # None: hashed_embedding
    dimensions: int | None  # the vectors' length; None: 256, or what a custom embedder returns
    latency_s: float | None
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeGateway:
    """OpenAI-compatible HTTP server on 127.0.0.1 with per-model responders and injected faults.

    Latency applies to normal answers (including stalled and truncated ones), not to error faults.
    ``in_flight`` counts POST requests being answered, ``peak_in_flight`` its highest value;
    both start again from zero at ``reset()`` (a request still answered then is not counted).
    """

    def __init__(self, *, latency_s: float = 0.0, seed: int = 0, port: int = 0) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.latency_s = latency_s
        self.seed = seed
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._generation = 0
        self._port = port
        self._lock = threading.Lock()
        self._models: dict[str, _Model | _EmbeddingModel] = {}
        self._faults: list[tuple[Fault, str | None]] = []
        self._seq = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> FakeGateway:
        """Bind 127.0.0.1 (a free port by default) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeGateway is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"FakeGateway:{server.server_address[1]}",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and free the port; safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()

    def serve(self) -> None:
        """Start, print the base URL and serve until Ctrl-C (the command lines)."""
        with self, contextlib.suppress(KeyboardInterrupt):
            print(self.base_url, flush=True)
            threading.Event().wait()

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, for ``openai.OpenAI(base_url=...)``."""
        if self._server is None:
            raise RuntimeError("FakeGateway is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def add_model(
        self, name: str, responder: Responder | str, *, latency_s: float | None = None
    ) -> None:
        """Serve ``name`` with ``responder`` (a str means ``Fixed(text)``), replacing any."""
        if isinstance(responder, str):
            responder = Fixed(responder)
        elif isinstance(responder, Cycle | Choice):
            responder = responder.bind(random.Random(self.seed))
        with self._lock:
            self._models[name] = _Model(responder, latency_s)

    def add_embedding_model(
        self,
        name: str,
        embedder: Embedder | None = None,
        *,
        dimensions: int | None = None,
        latency_s: float | None = None,
    ) -> None:
        """Serve ``name`` on ``/v1/embeddings``, replacing any model of that name.

        The default embedder is :func:`hashed_embedding` with ``dimensions`` (256 when None);
        with a custom ``embedder``, ``dimensions`` (if given) is the length every vector must
        have.
        """
        if dimensions is not None and dimensions < 1:
            raise ValueError("dimensions must be >= 1")
        with self._lock:
            self._models[name] = _EmbeddingModel(embedder, dimensions, latency_s)

    def inject(self, fault: Fault, *, times: int = 1, model: str | None = None) -> None:
        """Queue ``fault`` for the next ``times`` POST requests, completions or embeddings (to
        ``model`` if given)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.extend([(fault, model)] * times)

    def request_count(self, model: str | None = None) -> int:
        """Number of requests received, optionally only those naming ``model``."""
        with self._lock:
            return sum(1 for r in self.requests if model is None or r.model == model)

    def reset(self) -> None:
        """Forget models, pending faults, recorded requests and the requests in flight."""
        with self._lock:
            self._models.clear()
            self._faults.clear()
            self.requests.clear()
            self._generation += 1
            self.in_flight = self.peak_in_flight = 0

    def _enter(self) -> int:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return self._generation

    def _leave(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.in_flight -= 1

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            return next(self._seq)

    def _take_fault(self, model: str | None) -> Fault | None:
        with self._lock:
            for i, (fault, target) in enumerate(self._faults):
                if target is None or target == model:
                    del self._faults[i]
                    return fault
        return None

    def _model(self, name: str) -> _Model | _EmbeddingModel | None:
        with self._lock:
            return self._models.get(name)

    def _model_names(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def _pause(self, seconds: float) -> bool:
        """Sleep unless the gateway stops first; True when it is still running."""
        return seconds <= 0 or not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], gateway: FakeGateway) -> None:
        self.gateway = gateway
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server
    _generation: int | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; requests are recorded on the gateway instead."""

    def do_GET(self) -> None:
        gateway = self.server.gateway
        path = self._record({}, None)[0].path
        if path == "/health":
            self._send_json(200, {"status": "ok"})
        elif path == "/v1/models":
            models = [
                {"id": name, "object": "model", "created": 0, "owned_by": "fake-gateway"}
                for name in gateway._model_names()
            ]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._send_error(404, f"Unknown path {path}.")

    def do_POST(self) -> None:
        """A request is in flight from its arrival until its answer's last write starts (so a
        client that has its answer never sees it still counted)."""
        self._generation = self.server.gateway._enter()
        try:
            self._post()
        finally:
            self._answered()

    def _answered(self) -> None:
        if self._generation is not None:
            self.server.gateway._leave(self._generation)
            self._generation = None

    def _post(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        parsed = body if isinstance(body, dict) else {}
        model = parsed.get("model")
        request, seq = self._record(parsed, model if isinstance(model, str) else None)
        if request.path not in (_CHAT, _COMPLETIONS, _EMBEDDINGS):
            self._send_error(404, f"Unknown path {request.path}.")
            return
        gateway = self.server.gateway
        fault = gateway._take_fault(request.model)
        stream = parsed.get("stream") is True and request.path != _EMBEDDINGS
        truncate: int | None = None
        if isinstance(fault, HTTPError):
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            code = "rate_limit_exceeded" if fault.status == 429 else None
            self._send_error(fault.status, fault.message, code=code, headers=retry)
            return
        if isinstance(fault, Drop) or (isinstance(fault, TruncateStream) and not stream):
            self.close_connection = True
            return
        if isinstance(fault, Malformed):
            self._send(200, fault.body.encode(), "application/json")
            return
        if isinstance(fault, Stall) and not gateway._pause(fault.seconds):
            self.close_connection = True
            return
        if isinstance(fault, TruncateStream):
            truncate = fault.after_chunks
        problem = _validate(request.path, body)
        if problem:
            self._send_error(400, problem)
            return
        assert request.model is not None
        entry = gateway._model(request.model)
        if entry is None:
            message = f"The model `{request.model}` does not exist or you do not have access to it."
            self._send_error(404, message, code="model_not_found")
            return
        if isinstance(entry, _EmbeddingModel) != (request.path == _EMBEDDINGS):
            kind = "an embedding" if isinstance(entry, _EmbeddingModel) else "a chat"
            message = (
                f"The model `{request.model}` is {kind} model; it does not serve {request.path}."
            )
            self._send_error(404, message)
            return
        if isinstance(entry, _EmbeddingModel):
            self._embed(request, entry)
            return
        try:
            with entry.lock:
                reply = _as_reply(entry.responder(request))
        except BadRequest as exc:
            self._send_error(400, str(exc))
            return
        except Exception as exc:
            self._send_error(500, f"Responder failed: {exc!r}")
            return
        latency = gateway.latency_s if entry.latency_s is None else entry.latency_s
        chat = request.path == _CHAT
        response = _Response(request, reply, seq, chat)
        if not stream:
            if gateway._pause(latency):
                self._send_json(200, response.full())
            else:
                self.close_connection = True
            return
        self._send_stream(response, latency, truncate)

    def _embed(self, request: RecordedRequest, entry: _EmbeddingModel) -> None:
        body = request.body
        asked = body.get("dimensions")
        try:
            with entry.lock:
                vectors = [_embedding(entry, text, asked) for text in request.inputs]
        except BadRequest as exc:
            self._send_error(400, str(exc))
            return
        except Exception as exc:
            self._send_error(500, f"Embedder failed: {exc!r}")
            return
        encode = body.get("encoding_format") == "base64"
        data = []
        for i, vector in enumerate(vectors):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            embedding: str | list[float] = (
                base64.b64encode(packed).decode("ascii")
                if encode
                else list(struct.unpack(f"<{len(vector)}f", packed))
            )
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(_word_count(text) for text in request.inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        response = {"object": "list", "data": data, "model": request.model, "usage": usage}
        gateway = self.server.gateway
        latency = gateway.latency_s if entry.latency_s is None else entry.latency_s
        if gateway._pause(latency):
            self._send_json(200, response)
        else:
            self.close_connection = True

    def _record(self, body: dict[str, Any], model: str | None) -> tuple[RecordedRequest, int]:
        headers = {
            k.lower(): v for k, v in self.headers.items() if k.lower() not in _SECRET_HEADERS
        }
        path = urlsplit(self.path).path.rstrip("/")
        request = RecordedRequest(path, model, body, headers, time.time())
        return request, self.server.gateway._record(request)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._answered()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(
        self, status: int, obj: object, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        error = {"message": message, "type": kind, "param": None, "code": code}
        self._send_json(status, {"error": error}, headers)

    def _send_stream(self, response: _Response, latency: float, truncate: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not self.server.gateway._pause(latency):
            self.close_connection = True
            return
        deltas, tail = response.chunks()
        if truncate is None:
            events = [json.dumps(e) for e in deltas + tail] + ["[DONE]"]
        else:
            events = [json.dumps(e) for e in deltas[:truncate]]
            self.close_connection = True
        payload = b"".join(_http_chunk(f"data: {e}\n\n".encode()) for e in events)
        self._answered()
        self.wfile.write(payload if truncate is not None else payload + b"0\r\n\r\n")


class _Response:
    """Renders one reply as an OpenAI chat or legacy completion, whole or as stream chunks."""

    def __init__(self, request: RecordedRequest, reply: Reply, seq: int, chat: bool) -> None:
        self.reply = reply
        self.chat = chat
        self.include_usage = _include_usage(request.body)
        self.tool_calls = (
            [_render_tool_call(call, seq, i) for i, call in enumerate(reply.tool_calls)]
            if chat and reply.tool_calls
            else []
        )
        self.finish_reason = reply.finish_reason
        if self.tool_calls and reply.finish_reason == "stop":
            self.finish_reason = "tool_calls"
        self.base = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake{seq}",
            "created": int(request.time),
            "model": request.model,
            "system_fingerprint": "fake-gateway",
        }
        generated = " ".join(
            [reply.text or ""]
            + [f"{c['function']['name']} {c['function']['arguments']}" for c in self.tool_calls]
        )
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = _word_count(_request_text(request))
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = _word_count(generated)
        self.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def full(self) -> dict[str, Any]:
        text = self.reply.text
        choice: dict[str, Any]
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if self.tool_calls:
                message["tool_calls"] = self.tool_calls
            choice = {"index": 0, "message": message}
        else:
            choice = {"index": 0, "text": text or ""}
        choice.update(logprobs=None, finish_reason=self.finish_reason)
        obj = "chat.completion" if self.chat else "text_completion"
        return {**self.base, "object": obj, "choices": [choice], "usage": self.usage}

    def chunks(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Delta chunks, then the finish chunk and (if requested) the usage chunk."""
        if self.chat:
            deltas: list[dict[str, Any]] = [
                {"content": piece} for piece in _split_words(self.reply.text or "")
            ]
            for i, call in enumerate(self.tool_calls):
                head = {**call, "index": i, "function": {**call["function"], "arguments": ""}}
                deltas.append({"tool_calls": [head]})
                deltas.extend(
                    {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                    for piece in _split_words(call["function"]["arguments"])
                )
            deltas = deltas or [{"content": ""}]
            deltas[0] = {"role": "assistant", **deltas[0]}
            events = [self._chunk({"delta": d}) for d in deltas]
            final = self._chunk({"delta": {}}, self.finish_reason)
        else:
            pieces = _split_words(self.reply.text or "") or [""]
            events = [self._chunk({"text": p}) for p in pieces]
            final = self._chunk({"text": ""}, self.finish_reason)
        tail = [final]
        if self.include_usage:
            obj = "chat.completion.chunk" if self.chat else "text_completion"
            tail.append({**self.base, "object": obj, "choices": [], "usage": self.usage})
        return events, tail

    def _chunk(self, choice: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        full_choice = {"index": 0, **choice, "logprobs": None, "finish_reason": finish_reason}
        extra = {"usage": None} if self.include_usage else {}
        return {**self.base, "object": obj, "choices": [full_choice], **extra}


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _request_text(request: RecordedRequest) -> str:
    if request.path == _CHAT:
        return " ".join(_content_text(m.get("content")) for m in _messages(request.body))
    return request.prompt


def _word_count(text: str) -> int:
    return max(1, len(text.split()))


def _split_words(text: str) -> list[str]:
    """Split into word-sized pieces that concatenate back to ``text`` exactly."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _validate(path: str, body: object) -> str | None:
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "You must provide a model parameter."
    if path == _CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' is a required property and must be a non-empty array."
    elif path == _EMBEDDINGS:
        return _validate_embeddings(body)
    elif not isinstance(body.get("prompt"), str):
        return "'prompt' is a required property and must be a string."
    return None


def _validate_embeddings(body: Mapping[str, Any]) -> str | None:
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return (
            "'input' is a required property and must be a string or a non-empty array of "
            "strings (this fake gateway takes no token arrays)."
        )
    if any(not text for text in texts):
        return "'input' must not contain empty strings."
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return "'encoding_format' must be 'float' or 'base64'."
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        return "'dimensions' must be an integer >= 1."
    return None


def hashed_embedding(text: str, dimensions: int = _DEFAULT_DIMENSIONS) -> list[float]:
    """Unit vector of signed hashed features: lower-cased words and their character trigrams.

    Deterministic across processes (blake2b, not ``hash()``): the same text gives cosine 1.0,
    texts sharing many words score high and unrelated texts near 0.
    """
    if dimensions < 1:
        raise ValueError("dimensions must be >= 1")
    lowered = text.lower()
    words = re.findall(r"\w+", lowered) or [lowered.strip()]
    features = [f"w:{word}" for word in words]
    for word in words:
        padded = f" {word} "
        features.extend(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    vector = [0.0] * dimensions
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        vector[value % dimensions] += 1.0 if (value >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:  # features that cancel out exactly; any fixed unit vector will do
        return [1.0] + [0.0] * (dimensions - 1)
    return [x / norm for x in vector]


def _embedding(entry: _EmbeddingModel, text: str, asked: int | None) -> list[float]:
    """The model's vector for ``text``, shortened to ``asked`` dimensions if given."""
    if entry.embedder is None:
        native = entry.dimensions or _DEFAULT_DIMENSIONS
        if asked is not None and asked > native:
            raise BadRequest(f"This model has {native} dimensions; 'dimensions' was {asked}.")
        return hashed_embedding(text, asked or native)
    vector = [float(x) for x in entry.embedder(text)]
    if not vector or not all(math.isfinite(x) for x in vector):
        raise ValueError("the embedder must return a non-empty sequence of finite numbers")
    if entry.dimensions is not None and len(vector) != entry.dimensions:
        raise ValueError(f"the embedder returned {len(vector)} numbers, not {entry.dimensions}")
    if asked is None:
        return vector
    if asked > len(vector):
        raise BadRequest(f"This model has {len(vector)} dimensions; 'dimensions' was {asked}.")
    # Shortened like OpenAI's text-embedding-3 models: the leading numbers, re-normalised.
    head = vector[:asked]
    norm = math.sqrt(sum(x * x for x in head))
    return [x / norm for x in head] if norm else head


def _as_reply(value: object) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(text=value)
    raise TypeError(f"responder must return Reply or str, got {type(value).__name__}")


def _render_tool_call(call: Mapping[str, Any], seq: int, index: int) -> dict[str, Any]:
    arguments = call.get("arguments", {})
    return {
        "id": call.get("id", f"call_fake{seq}_{index}"),
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Serve fixed-text models until interrupted: ``--model NAME=TEXT`` and
    ``--embedding-model NAME[=DIMENSIONS]`` (both repeatable)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmeval.testing.gateway",
        description="OpenAI-compatible fake gateway for offline tests.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=TEXT")
    parser.add_argument(
        "--embedding-model",
        action="append",
        default=[],
        metavar="NAME[=DIMENSIONS]",
        help="serve NAME on /v1/embeddings with hashed features (256 dimensions by default)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    gateway = FakeGateway(latency_s=args.latency, seed=args.seed, port=args.port)
    for spec in args.model:
        name, sep, text = spec.partition("=")
        if not sep or not name:
            parser.error(f"--model expects NAME=TEXT, got {spec!r}")
        gateway.add_model(name, text)
    for spec in args.embedding_model:
        name, sep, size = spec.partition("=")
        if not name or (sep and not (size.isascii() and size.isdigit() and int(size) > 0)):
            parser.error(f"--embedding-model expects NAME or NAME=DIMENSIONS, got {spec!r}")
        gateway.add_embedding_model(name, dimensions=int(size) if sep else None)
    gateway.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
