"""Tests for pytest_llmeval.calls.retry: labels for real SDK errors, Retry-After, backoff bounds."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.calls.retry import RetryPolicy, retry_after
from pytest_llmeval.errors import BadResponseError, cause

REQUEST = httpx2.Request("POST", "https://gateway.test/v1/chat/completions")
NOW = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
POLICY = RetryPolicy()


def response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers=headers, request=REQUEST)


def status_error(
    status: int,
    headers: dict[str, str] | None = None,
    kind: type[openai.APIStatusError] = openai.APIStatusError,
) -> openai.APIStatusError:
    return kind(f"status {status}", response=response(status, headers), body=None)


def http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, tz=UTC), usegmt=True)


def delay_for(headers: dict[str, str]) -> float:
    """The delay for a 429 carrying `headers`; its rng would give at most 0.5 s on attempt 0."""
    return POLICY.delay(0, status_error(429, headers), random.Random(0), clock=lambda: NOW)


ERRORS: list[tuple[BaseException, str, bool]] = [
    (status_error(429, kind=openai.RateLimitError), "rate_limit", True),
    (status_error(429), "rate_limit", True),
    (status_error(500, kind=openai.InternalServerError), "server_error", True),
    (status_error(502), "server_error", True),
    (status_error(503, kind=openai.InternalServerError), "server_error", True),
    (status_error(408), "bad_request", True),
    (status_error(409, kind=openai.ConflictError), "bad_request", True),
    (status_error(400, kind=openai.BadRequestError), "bad_request", False),
    (status_error(401, kind=openai.AuthenticationError), "bad_request", False),
    (status_error(403, kind=openai.PermissionDeniedError), "bad_request", False),
    (status_error(404, kind=openai.NotFoundError), "bad_request", False),
    (status_error(422, kind=openai.UnprocessableEntityError), "bad_request", False),
    (openai.APITimeoutError(request=REQUEST), "timeout", True),
    (openai.APIConnectionError(request=REQUEST), "connection", True),
    (openai.APIResponseValidationError(response(200), body=None), "bad_response", False),
    (json.JSONDecodeError("Expecting value", "<html>", 0), "bad_response", False),
    (BadResponseError("JSONDecodeError: Expecting value"), "bad_response", False),
    (openai.OpenAIError("other"), "openaierror", False),
    (KeyError("choices"), "keyerror", False),
]
IDS = [f"{type(exc).__name__}-{label}" for exc, label, _ in ERRORS]


@pytest.mark.parametrize(("exc", "label", "_retryable"), ERRORS, ids=IDS)
def test_cause_labels_errors(exc: BaseException, label: str, _retryable: bool) -> None:
    assert cause(exc) == label


@pytest.mark.parametrize(("exc", "_label", "retryable"), ERRORS, ids=IDS)
def test_retryable_matches_sdk_policy(exc: BaseException, _label: str, retryable: bool) -> None:
    assert POLICY.retryable(exc) is retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "30"}, 1.5),
        ({"Retry-After-Ms": "250"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after-ms": "nan", "retry-after": "4"}, 4.0),
        ({"retry-after": "120"}, 60.0),
        ({"retry-after-ms": "1e9"}, 60.0),
        ({"retry-after": "inf"}, 60.0),
        ({"retry-after": "1e400"}, 60.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": http_date(30)}, 30.0),
        ({"retry-after": http_date(-30)}, 0.0),
        ({"retry-after": http_date(3600)}, 60.0),
        ({"retry-after": http_date(30).replace("GMT", "-0000")}, 30.0),
    ],
)
def test_delay_honours_server_retry_after(headers: dict[str, str], expected: float) -> None:
    assert delay_for(headers) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["soon", "", "nan", "Wed, 99 Oct 2015 07:28:00 GMT"])
def test_unusable_retry_after_falls_back_to_backoff(value: str) -> None:
    expected = random.Random(0).uniform(0.0, POLICY.base_delay_s)
    assert delay_for({"retry-after": value}) == expected
    assert retry_after({"retry-after": value}, NOW) is None


def test_retry_after_is_none_without_headers() -> None:
    assert retry_after({}, NOW) is None
    assert retry_after({"x-request-id": "abc"}, NOW) is None


def test_delay_uses_wall_clock_by_default_for_dates() -> None:
    date = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert POLICY.delay(0, status_error(503, {"retry-after": date}), random.Random(0)) == 0.0


@pytest.mark.parametrize(
    "exc",
    [status_error(429), status_error(500), openai.APITimeoutError(request=REQUEST)],
    ids=["429-no-header", "500-no-header", "timeout"],
)
@pytest.mark.parametrize(("attempt", "cap"), [(0, 0.5), (1, 1.0), (3, 4.0), (5, 16.0), (6, 20.0)])
def test_backoff_is_full_jitter_over_exponential_cap(
    exc: BaseException, attempt: int, cap: float
) -> None:
    assert POLICY.delay(attempt, exc, random.Random(42)) == random.Random(42).uniform(0.0, cap)


def test_backoff_spans_the_whole_interval() -> None:
    rng = random.Random(1)
    delays = [POLICY.delay(2, status_error(500), rng) for _ in range(2000)]
    assert min(delays) < 0.1
    assert max(delays) > 1.9


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(),
    base=st.floats(min_value=0.0, max_value=1e6),
    max_delay=st.floats(min_value=0.0, max_value=1e6),
)
def test_backoff_stays_within_cap(attempt: int, seed: int, base: float, max_delay: float) -> None:
    policy = RetryPolicy(base_delay_s=base, max_delay_s=max_delay)
    delay = policy.delay(attempt, openai.APIConnectionError(request=REQUEST), random.Random(seed))
    assert 0.0 <= delay <= min(max_delay, base * 2.0 ** min(attempt, 1000))


@given(seconds=st.floats(allow_nan=False), cap=st.floats(min_value=0.0, max_value=1e6))
def test_retry_after_delay_is_never_negative_nor_above_cap(seconds: float, cap: float) -> None:
    policy = RetryPolicy(max_retry_after_s=cap)
    exc = status_error(429, {"retry-after": repr(seconds)})
    assert 0.0 <= policy.delay(0, exc, random.Random(0)) <= cap


def test_unwrapped_transport_errors_are_retried_and_named() -> None:
    import httpx2

    from pytest_llmeval.errors import BadResponseError

    timeout = httpx2.ReadTimeout("timed out")
    dropped = httpx2.RemoteProtocolError("Server disconnected without sending a response.")
    assert (cause(timeout), cause(dropped)) == ("timeout", "connection")
    assert RetryPolicy().retryable(timeout) and RetryPolicy().retryable(dropped)
    try:
        raise BadResponseError("RemoteProtocolError: dropped") from dropped
    except BadResponseError as wrapped:
        assert cause(wrapped) == "connection"
    import httpcore2  # seen escaping the SDK when a dropped connection was read

    raw = httpcore2.RemoteProtocolError("Server disconnected without sending a response.")
    assert cause(raw) == "connection" and RetryPolicy().retryable(raw)
    assert cause(httpcore2.ReadTimeout("slow")) == "timeout"
