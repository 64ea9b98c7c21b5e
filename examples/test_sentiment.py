"""JSON-mode sentiment, as in the seed article: every answer must parse and match the schema."""

from __future__ import annotations

import pytest

from pytest_llmeval import check_json

SCHEMA = {
    "type": "object",
    "required": ["label", "confidence"],
    "properties": {
        "label": {"enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
PROMPT = (
    "Classify the sentiment of this product review. Reply with JSON only, like "
    '{{"label": "positive", "confidence": 0.9}}; label is positive, negative or neutral.\n\n'
    "Review: {review}"
)
REVIEWS = [
    pytest.param(
        "The battery lasts two days and the screen is gorgeous.", "positive", id="positive"
    ),
    pytest.param("It broke after a week and support never answered.", "negative", id="negative"),
    pytest.param("The package arrived on Tuesday in a brown box.", "neutral", id="neutral"),
]


@pytest.mark.llmeval(api="chat", pass_rate=0.8, samples=20)
@pytest.mark.parametrize(("review", "expected"), REVIEWS)
def test_sentiment_json(llm, review: str, expected: str) -> None:
    completion = llm.chat(
        PROMPT.format(review=review), response_format={"type": "json_object"}, temperature=0.7
    )
    label = check_json(completion, SCHEMA)["label"]
    assert label == expected, f"expected label {expected!r}, got {label!r}"
