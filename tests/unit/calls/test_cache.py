"""The response cache's key and modes, without pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.calls.cache import ResponseCache, cache_key


def test_key_separates_samples_and_ignores_nothing_else() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}
    m = ["m", "m-id"]
    key = cache_key("chat", m, body, False, [0, 0])
    assert key == cache_key("chat", m, dict(body), False, [0, 0])
    assert key != cache_key("chat", m, body, False, [1, 0])
    assert key != cache_key("chat", m, body, False, [0, 1])
    assert key != cache_key("chat", m, body, True, [0, 0])
    assert key != cache_key("chat", ["m", "m2-id"], body, False, [0, 0])
    assert key != cache_key("chat", ["alias", "m-id"], body, False, [0, 0])  # same id, other model
    assert key != cache_key("chat", m, {**body, "temperature": 0}, False, [0, 0])
    assert key != cache_key("completion", m, body, False, [0, 0])


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="readwrite"):
        ResponseCache(tmp_path, "sometimes")
