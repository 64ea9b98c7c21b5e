"""The seed's RAG task: a hybrid search (BM25 + dense vectors) written by the model, judged by
ten hidden test cases, counted one by one like the article's "7/10 hidden tests".

The formulas are pinned in the prompt so that the hidden expectations are well defined; the
expectations come from the reference implementation below, computed here (trusted) and sent to
the sandbox as plain data.
"""

from __future__ import annotations

import math
import random
import re

import pytest

from pytest_llmeval import extract_code

TASK = """Write a Python function hybrid_search(query, documents, query_vector, document_vectors, k=3, alpha=0.5) -> list[int] for hybrid retrieval.
- Tokenize text by lowercasing and splitting on runs of non-alphanumeric characters (drop empty tokens).
- Keyword score of each document: BM25 with k1=1.5, b=0.75, idf(t) = ln((N - df(t) + 0.5) / (df(t) + 0.5) + 1).
- Dense score: cosine similarity of query_vector and the document's vector (0.0 if either norm is 0).
- Min-max normalize each list of scores to [0, 1] (if all scores are equal, they all become 0.0).
- Combined score = alpha * dense + (1 - alpha) * keyword.
- Return the indices of the k best documents, best first; ties go to the lower index.
Use only the standard library. Answer with the function in a ```python block."""  # noqa: E501

CORPUS = [
    "Refunds are issued within 14 days of a returned order.",
    "Our support team answers chats around the clock.",
    "Orders ship from the Berlin warehouse within two days.",
    "Returned items must be unused and in the original box.",
    "Express shipping costs 9 euros and arrives next day.",
    "Escalations go to a supervisor after two failed contacts.",
    "Gift cards cannot be refunded or exchanged for cash.",
    "Track your order with the link in the shipping email.",
]


def tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", text.lower()) if t]


def normalize(scores: list[float]) -> list[float]:
    low, high = min(scores), max(scores)
    return [0.0 if high == low else (s - low) / (high - low) for s in scores]


def reference(query, documents, query_vector, document_vectors, k=3, alpha=0.5):
    docs = [tokens(d) for d in documents]
    n, avg = len(docs), sum(map(len, docs)) / len(docs)
    keyword = []
    for doc in docs:
        score = 0.0
        for term in set(tokens(query)):
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            idf = math.log((n - df + 0.5) / (df + 0.5) + 1)
            score += idf * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * len(doc) / avg))
        keyword.append(score)
    qn = math.sqrt(sum(x * x for x in query_vector))
    dense = []
    for vector in document_vectors:
        dn = math.sqrt(sum(x * x for x in vector))
        dot = sum(a * b for a, b in zip(query_vector, vector, strict=True))
        dense.append(0.0 if qn == 0 or dn == 0 else dot / (qn * dn))
    combined = [
        alpha * d + (1 - alpha) * w
        for d, w in zip(normalize(dense), normalize(keyword), strict=True)
    ]
    return sorted(range(n), key=lambda i: (-combined[i], i))[:k]


def hidden_cases() -> list[str]:
    """Ten cases: queries with and without keyword overlap, alphas from 0 to 1, k of 1 to 4."""
    luck = random.Random(2026)
    queries = [
        "refund for a returned order", "how fast is express shipping", "talk to a supervisor",
        "gift card cash", "warehouse", "unused box", "chat support", "track my parcel",
        "zzz no overlap", "order shipping email link",
    ]  # fmt: skip
    cases = []
    for i, query in enumerate(queries):
        vectors = [[round(luck.uniform(-1, 1), 3) for _ in range(4)] for _ in CORPUS]
        query_vector = [round(luck.uniform(-1, 1), 3) for _ in range(4)]
        args = (query, CORPUS, query_vector, vectors, 1 + i % 4, [0.0, 0.3, 0.5, 0.8, 1.0][i % 5])
        cases.append(f"assert hybrid_search(*{args!r}) == {reference(*args)!r}")
    return cases


@pytest.mark.llmeval(pass_rate=0.6, samples=10)
def test_hybrid_search_passes_hidden_cases(llm, sandbox) -> None:
    code = extract_code(llm.chat(TASK, temperature=0.2).text, "hybrid_search")
    sandbox.run(code, hidden_cases(), "hybrid_search").check()
