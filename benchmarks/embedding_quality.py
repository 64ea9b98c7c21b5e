"""How well the local embedding model tells a paraphrase from other sentence pairs.

40 sentence pairs written for this project: paraphrases (same meaning), related pairs (same
topic, another claim: "the refund was approved" / "the refund was denied") and unrelated pairs.
Each model runs on its own managed llama-server with `--embeddings`; the sentences go through
the openai SDK's `embeddings.create`. Prints the cosine similarity per class and the ROC AUC of
cosine for paraphrase against every other pair, against related pairs alone (a changed claim),
and for same-topic pairs (paraphrase or related) against unrelated ones. SmolLM2-135M
mean-pooled, the fallback had no embedding model been packaged, is measured beside it.
Run: python benchmarks/embedding_quality.py  (after python -m pytest_llmeval setup-local)
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import openai

from pytest_llmeval.local.models import model_file
from pytest_llmeval.local.server import LocalServer, server_binary

ROOT = Path(__file__).resolve().parents[1]
# label, bundled model, pooling
MODELS = (
    ("all-MiniLM-L6-v2", "all-minilm-l6-v2", "mean"),
    ("SmolLM2-135M mean-pooled", "smollm2-135m-instruct", "mean"),
)
PARAPHRASE = (
    ("The refund was approved on Monday.", "On Monday, the refund got the green light."),
    (
        "Your order has shipped and should arrive within three days.",
        "We sent your package; expect it in about three days.",
    ),
    (
        "The function returns None when the list is empty.",
        "If the list has no items, the function gives back None.",
    ),
    (
        "Please reset your password using the link we emailed you.",
        "Use the link in our email to choose a new password.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "We rescheduled the meeting for Thursday after lunch.",
    ),
    (
        "The server crashed because it ran out of memory.",
        "Running out of memory brought the server down.",
    ),
    ("Paris is the capital of France.", "France's capital city is Paris."),
    ("The store closes at nine in the evening.", "The shop shuts at 9 pm."),
    (
        "I could not log in because my account was locked.",
        "My account was locked, so signing in failed.",
    ),
    (
        "The test suite passed on every supported Python version.",
        "All tests succeeded on each Python version we support.",
    ),
    ("Heavy rain is expected tomorrow morning.", "Tomorrow morning will bring a lot of rain."),
    ("The contract ends on the last day of June.", "The agreement expires on June 30."),
    (
        "She declined the job offer because the salary was too low.",
        "The pay was too little, so she turned the job down.",
    ),
    (
        "Add two cups of flour and stir until smooth.",
        "Stir in two cups of flour until the batter is smooth.",
    ),
)
RELATED = (
    ("The refund was approved on Monday.", "The refund was denied on Monday."),
    ("Your order has shipped.", "Your order has been cancelled."),
    (
        "The function returns None when the list is empty.",
        "The function raises an error when the list is empty.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "The meeting on Thursday afternoon has been cancelled.",
    ),
    (
        "The server crashed because it ran out of memory.",
        "The server crashed because the disk was full.",
    ),
    ("Paris is the capital of France.", "Paris is the capital of Italy."),
    ("The store closes at nine in the evening.", "The store opens at nine in the morning."),
    (
        "The test suite passed on every supported Python version.",
        "The test suite failed on Python 3.12.",
    ),
    ("Heavy rain is expected tomorrow morning.", "Tomorrow morning will be dry and sunny."),
    (
        "The patient's blood pressure was normal.",
        "The patient's blood pressure was dangerously high.",
    ),
    (
        "The price of the plan went up by ten percent.",
        "The price of the plan went down by ten percent.",
    ),
    ("Alice sent the report to Bob.", "Bob sent the report to Alice."),
    (
        "The bug only happens on Windows.",
        "The bug happens on every operating system except Windows.",
    ),
)
UNRELATED = (
    ("The refund was approved on Monday.", "Octopuses have three hearts."),
    ("Your order has shipped.", "The violin needs new strings."),
    ("The function returns None when the list is empty.", "We hiked to the lake at sunrise."),
    (
        "Please reset your password using the link we emailed you.",
        "Tomatoes grow best in full sun.",
    ),
    (
        "The meeting has been moved to Thursday afternoon.",
        "The Roman Empire split into two halves.",
    ),
    (
        "The server crashed because it ran out of memory.",
        "My grandmother bakes bread every Sunday.",
    ),
    ("Paris is the capital of France.", "Photosynthesis turns light into chemical energy."),
    (
        "The store closes at nine in the evening.",
        "The goalkeeper saved a penalty in the last minute.",
    ),
    ("Heavy rain is expected tomorrow morning.", "The novel is written in the second person."),
    ("The contract ends on the last day of June.", "Cats sleep for most of the day."),
    (
        "She declined the job offer because the salary was too low.",
        "The telescope spotted a new comet.",
    ),
    (
        "Add two cups of flour and stir until smooth.",
        "The train to Berlin leaves from platform four.",
    ),
    ("The patient's blood pressure was normal.", "Jazz grew out of blues and ragtime."),
)
CLASSES = {"paraphrase": PARAPHRASE, "related": RELATED, "unrelated": UNRELATED}


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """ROC AUC: the chance that a random positive scores above a random negative (ties: half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def embed(source: str, pooling: str, sentences: list[str]) -> dict[str, list[float]]:
    """Every sentence's vector, from a fresh embedding server."""
    server = LocalServer(
        name=source, binary=server_binary(os.environ), model=model_file(source, ROOT),
        parallel=1, context_per_slot=512, threads=os.cpu_count() or 1, embeddings=True,
        pooling=pooling,
    )  # fmt: skip
    server.start()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="no-key", max_retries=0)
        reply = client.embeddings.create(model=source, input=sentences)
    finally:
        server.stop()
    vectors = [item.embedding for item in sorted(reply.data, key=lambda item: item.index)]
    return dict(zip(sentences, vectors, strict=True))


def main() -> None:
    sentences = sorted({s for pairs in CLASSES.values() for pair in pairs for s in pair})
    print(f"{sum(map(len, CLASSES.values()))} pairs, {len(sentences)} distinct sentences")
    print(f"{'model':<26} {'class':<11} {'pairs':>5} {'mean':>6} {'min':>6} {'max':>6}")
    summary = []
    for label, source, pooling in MODELS:
        vectors = embed(source, pooling, sentences)
        scores = {
            name: [cosine(vectors[a], vectors[b]) for a, b in pairs]
            for name, pairs in CLASSES.items()
        }
        for name, values in scores.items():
            print(
                f"{label:<26} {name:<11} {len(values):>5} {statistics.mean(values):>6.3f} "
                f"{min(values):>6.3f} {max(values):>6.3f}"
            )
        rest = scores["related"] + scores["unrelated"]
        same_topic = scores["paraphrase"] + scores["related"]
        summary.append(
            f"{label:<26} ROC AUC paraphrase vs rest {auc(scores['paraphrase'], rest):.3f}, "
            f"vs related only {auc(scores['paraphrase'], scores['related']):.3f}; "
            f"same topic vs unrelated {auc(same_topic, scores['unrelated']):.3f} "
            f"({len(vectors[sentences[0]])} dimensions)"
        )
    print("\n".join(summary))


if __name__ == "__main__":
    main()
