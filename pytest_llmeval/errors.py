"""Every exception a user can meet, and the short cause each one is counted under in reports.

Standard library only: the SDK is imported when a cause is asked for, and by then it is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path


class ConfigError(ValueError):
    """A user mistake in the configuration; the message names the source and key."""


class LLMError(Exception):
    """A model call could not be made; a sample raising it is an error, not a failure."""


class MissingKeyError(LLMError):
    """The configured API key variable is not set."""


class BadResponseError(LLMError):
    """The SDK failed on what the server sent (e.g. a body that is not JSON)."""


class JudgeError(LLMError):
    """The judge's answer does not fit its schema: an error sample, never a pass or a fail."""


class LLMUsageError(TypeError):
    """The test called the client the wrong way; the test fails, no sample is counted."""


class BudgetExhausted(Exception):
    """The request's worst-case cost does not fit in what is left of the budget; not sent."""


class CacheMiss(Exception):
    """`--llm-cache=replay` and the request has no cached answer."""


class StreamCutError(Exception):
    """The stream ended without a finish reason: a cut connection, not a short answer."""


class BodyError(TypeError):
    """The test body cannot be sampled as written; the whole test fails with this message."""


class SandboxError(Exception):
    """The sandbox itself failed (not the code under test): an error sample, never a failure."""


class SandboxUnavailable(SandboxError):
    """bubblewrap cannot run here."""


class LocalServerError(RuntimeError):
    """The local server could not be found, started or reached; the message says what to do."""


class LocalServerCrash(LocalServerError):
    """llama-server was killed by a signal: a broken build, not a configuration mistake."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class BaselineError(ValueError):
    """The baseline file cannot be used; the message names the file and what is wrong."""


class HistoryError(ValueError):
    """The history database cannot be used; the message names the file and what is wrong."""


class DatasetError(ValueError):
    """A dataset file that cannot be read as the format its loader expects."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


def call_errors() -> tuple[type[BaseException], ...]:
    """What a model call raises when it could not be made: the sample is an error."""
    import openai

    return (openai.OpenAIError, LLMError, BudgetExhausted, StreamCutError, CacheMiss)


_HTTP_LIBRARIES = ("httpx2", "httpcore2", "httpx", "httpcore")
TIMEOUTS = frozenset({"TimeoutException"})
TRANSPORT = frozenset({"TransportError", "NetworkError", "ProtocolError", "TimeoutException"})


def http_error(exc: BaseException, names: frozenset[str]) -> bool:
    """Is `exc` one of the HTTP stack's transport errors named `names`?

    The SDK sometimes lets them through unwrapped, even httpcore's own (seen while a dropped
    connection was read). Matched by class name, so re-imported libraries still count.
    """
    return any(
        cls.__name__ in names and cls.__module__.split(".")[0] in _HTTP_LIBRARIES
        for cls in type(exc).__mro__
    )


def cause(exc: BaseException) -> str:
    """Short label for reports, so failed attempts and error samples can be counted by kind."""
    import openai

    if isinstance(exc, BadResponseError) and exc.__cause__ is not None:
        return cause(exc.__cause__)
    if isinstance(exc, SandboxError):
        return "sandbox"
    if isinstance(exc, JudgeError):
        return "judge_format"
    if isinstance(exc, BudgetExhausted):
        return "budget"
    if isinstance(exc, CacheMiss):
        return "cache_miss"
    if isinstance(exc, StreamCutError):
        return "stream_cut"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limit"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limit"
        return "server_error" if exc.status_code >= 500 else "bad_request"
    if isinstance(exc, openai.APITimeoutError) or http_error(exc, TIMEOUTS):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError) or http_error(exc, TRANSPORT):
        return "connection"
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | BadResponseError):
        return "bad_response"
    return type(exc).__name__.lower()
