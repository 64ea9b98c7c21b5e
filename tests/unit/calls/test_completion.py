from __future__ import annotations

import pytest

from pytest_llmeval.calls.completion import Completion, Usage

SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {
        "label": {"enum": ["positive", "negative", "neutral"]},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
    },
}


def completion(text: str) -> Completion:
    return Completion(text=text, model="m", usage=Usage(10, 4), latency_s=0.5, cost_usd=None)


def test_json_plain_and_fenced() -> None:
    assert completion('{"label": "positive", "score": 0.9}').json(SCHEMA)["label"] == "positive"
    fenced = '```json\n{"label": "neutral", "score": 0}\n```'
    assert completion(fenced).json(SCHEMA) == {"label": "neutral", "score": 0}


def test_invalid_json_is_a_failed_sample_with_the_text() -> None:
    with pytest.raises(AssertionError, match=r"not valid JSON .*'Sure! Here is the JSON'"):
        completion("Sure! Here is the JSON").json()


def test_schema_failure_names_the_json_path() -> None:
    with pytest.raises(AssertionError, match=r"JSON at \$\.label: 'happy' is not one of"):
        completion('{"label": "happy", "score": 0.2}').json(SCHEMA)
    with pytest.raises(AssertionError, match=r"JSON at \$\.score: 3 is greater than the maximum"):
        completion('{"label": "positive", "score": 3}').json(SCHEMA)
    with pytest.raises(AssertionError, match=r"JSON at \$: 'score' is a required property"):
        completion('{"label": "positive"}').json(SCHEMA)


def test_usage_and_tokens_per_second() -> None:
    c = completion("x")
    assert c.usage.total_tokens == 14
    assert c.tokens_per_s == pytest.approx(8.0)
    assert Completion("x", "m", Usage(), 0.0, None).tokens_per_s is None
