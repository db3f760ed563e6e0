"""Pseudo-relevance feedback: take a first pass's best resources as relevant and ask again.

RM3 (keyword side): the query's terms, plus the terms most frequent in the best passages of
the top resources (each passage weighted by its resource's first-pass score), mixed with
weight ``rm3_weight``. Rocchio (dense side): the query vector plus ``rocchio_weight`` times
the mean vector of those passages, back to unit length. Both are settings, off by default:
on SciFact train neither beat the plain hybrid (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# An expansion term found in more than this share of passages says nothing about the topic.
COMMON = 0.1


def rm3_terms(query_terms: list[str], passages: list[str], weights: np.ndarray, tokenizer,
              document_frequency, total: int, terms: int, mix: float) -> dict[str, float]:
    """Weights of an expanded query: ``1 - mix`` for the query's own terms (shared by them by
    count), ``mix`` for the ``terms`` best expansion terms (shared by their feedback weight).
    ``document_frequency(term)`` is the number of indexed texts holding it; ``total`` their count."""
    feedback: Counter = Counter()
    shares = np.asarray(weights, dtype=np.float64)
    shares = shares / shares.sum() if shares.sum() > 0 else np.full(len(passages), 1.0 / max(len(passages), 1))
    for text, share in zip(passages, shares):
        found = tokenizer(text)
        if not found:
            continue
        for term, count in Counter(found).items():
            feedback[term] += share * count / len(found)
    rare = [(w, t) for t, w in feedback.items() if document_frequency(t) <= COMMON * total]
    best = sorted(rare, reverse=True)[:terms]
    own = Counter(query_terms)
    expanded: Counter = Counter()
    for term, count in own.items():
        expanded[term] += (1.0 - mix) * count / sum(own.values())
    weight_sum = sum(w for w, _ in best)
    for w, term in best:
        expanded[term] += mix * w / weight_sum if weight_sum > 0 else 0.0
    return dict(expanded)


def rocchio(query: np.ndarray, passages: np.ndarray, weight: float) -> np.ndarray:
    """The query vector moved toward the mean of ``passages`` (rows, unit vectors), unit length."""
    if not len(passages) or weight <= 0:
        return query
    moved = np.asarray(query, dtype=np.float32).reshape(-1) + weight * passages.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm if norm > 0 else moved).astype(np.float32)
