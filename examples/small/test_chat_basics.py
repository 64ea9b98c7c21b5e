"""Short chat checks sized for a tiny instruct model (SmolLM2-135M): facts, format, JSON mode.

Thresholds for smollm2-135m sit under its rates measured over 40 samples at temperature 0.3
(capital 39/40, sky 19/40, PASS 12/40, JSON schema 15/40): they catch a collapse, not a
wobble. Every other chat model gets the "*" threshold. The similarity check embeds the answer
with the run's embedding model (`--llm-embedding`, all-MiniLM-L6-v2 in the main job): over 30
answers of smollm2-135m its cosine to the reference ran from 0.76 to 0.86, where an answer on
another topic scores near 0.
"""

from __future__ import annotations

import pytest

SENTIMENT_SCHEMA = {
    "type": "object",
    "required": ["label"],
    "properties": {"label": {"enum": ["positive", "negative", "neutral"]}},
}


@pytest.mark.llmeval(api="chat", pass_rate={"smollm2-135m": 0.85, "*": 0.9}, samples=20)
def test_capital_of_france(llm) -> None:
    text = llm.chat(
        "What is the capital of France? Answer in one word.", max_tokens=64, temperature=0.3
    ).text
    assert "paris" in text.lower(), f"expected Paris, got {text!r}"


@pytest.mark.llmeval(api="chat", pass_rate={"smollm2-135m": 0.3, "*": 0.9}, samples=20)
def test_sky_colour(llm) -> None:
    text = llm.chat(
        "What color is the sky on a clear day? Answer in one word.", max_tokens=64, temperature=0.3
    ).text
    assert "blue" in text.lower(), f"expected blue, got {text!r}"


@pytest.mark.llmeval(api="chat", pass_rate={"smollm2-135m": 0.15, "*": 0.9}, samples=20)
def test_repeats_a_word_on_request(llm) -> None:
    text = llm.chat(
        "Reply with the word PASS and nothing else.", max_tokens=64, temperature=0.3
    ).text
    assert "PASS" in text.upper(), f"expected PASS, got {text!r}"


@pytest.mark.llmeval(api="chat", pass_rate={"smollm2-135m": 0.15, "*": 0.9}, samples=20)
def test_json_mode_answer_matches_the_schema(llm) -> None:
    completion = llm.chat(
        'Classify the sentiment of "It broke after a week." as JSON: {"label": "..."} '
        "with label positive, negative or neutral.",
        response_format={"type": "json_object"},
        max_tokens=64,
        temperature=0.3,
    )
    completion.json(schema=SENTIMENT_SCHEMA)


@pytest.mark.llmeval(api="chat", pass_rate={"smollm2-135m": 0.85, "*": 0.9}, samples=20)
def test_explains_the_blue_sky_on_topic(llm, similar) -> None:
    text = llm.chat(
        "Why is the sky blue? Answer in one sentence.", max_tokens=64, temperature=0.3
    ).text
    reference = "The sky looks blue because air scatters blue sunlight more than red light."
    score = similar(text, reference)
    assert score >= 0.7, f"similarity {score:.2f} to the reference, answer {text!r}"
