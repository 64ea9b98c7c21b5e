"""Short factual answers: cheap checks that catch a prompt or model regression early.

`EXAMPLE_PROMPT=v2` swaps in a changed arithmetic prompt (it asks for the working), to show a
prompt change that regresses: run once with `--llm-baseline=base.json --llm-update-baseline`,
then with `EXAMPLE_PROMPT=v2` and `--llm-report-html`, and open the regressed row.
"""

from __future__ import annotations

import os
import re

import pytest

ARITHMETIC = {
    "v1": "What is 17 + 25? Answer with a number only.",
    "v2": "What is 17 + 25? Show your working, then give the number.",
}


@pytest.mark.llmeval(api="chat", pass_rate=0.9, samples=20)
def test_capital(llm) -> None:
    text = llm.chat("What is the capital of France? Answer in one word.", temperature=0.7).text
    assert "paris" in text.lower(), f"expected Paris, got {text!r}"


@pytest.mark.llmeval(api="chat", pass_rate=0.9, samples=30)
def test_arithmetic(llm) -> None:
    prompt = ARITHMETIC[os.environ.get("EXAMPLE_PROMPT", "v1")]
    text = llm.chat(prompt, temperature=0.7).text
    assert re.fullmatch(r"\s*42\.?\s*", text), f"expected 42, got {text!r}"


@pytest.mark.llmeval(api="chat", samples=1)
async def test_async_smoke(llm) -> None:
    """A single sample; async bodies need no asyncio plugin."""
    completion = await llm.achat("What is the capital of Japan? Answer in one word.")
    assert completion.text.strip()
