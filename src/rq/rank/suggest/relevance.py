"""A recommendation method by name, and the relevance of every row it gives.

A method is one scorer (rq.settings.RECOMMEND_METHODS: centroid, maxsim, contrast, svm)
or a blend such as ``"svm+maxsim"``: the sum of each part's z-scores over the
candidates, so parts on different scales weigh the same.
"""

from __future__ import annotations

import numpy as np

from rq.rank.suggest.scorers import centroid_scores, contrast_scores, maxsim_scores
from rq.rank.suggest.svm import DEFAULT_SVM_C, svm_scores
from rq.settings import RECOMMEND_METHODS


def parse_method(method: str) -> tuple[str, ...]:
    """``"svm+maxsim"`` -> ("svm", "maxsim"); raises ValueError on an unknown part."""
    parts = tuple(p.strip() for p in method.split("+"))
    unknown = [p for p in parts if p not in RECOMMEND_METHODS]
    if unknown or not parts:
        raise ValueError(f"recommendation method {method!r}: use one of {', '.join(RECOMMEND_METHODS)}, "
                         "or several joined by '+'")
    return parts


def score(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray, parts: tuple[str, ...],
          cand: np.ndarray, svm_c: float = DEFAULT_SVM_C) -> np.ndarray:
    """Relevance of every row (float64, shape (n,)); blends are comparable only over ``cand``."""
    if len(parts) == 1:
        return base_score(vectors, read, weights, parts[0], svm_c=svm_c)
    total = np.zeros(len(vectors))
    for part in parts:
        total += zscore(base_score(vectors, read, weights, part, svm_c=svm_c), cand)
    return total


def base_score(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray, method: str,
               svm_c: float = DEFAULT_SVM_C) -> np.ndarray:
    """One scorer's relevance for every row; ``weights`` has one entry per read row."""
    if method == "centroid":
        return centroid_scores(vectors, read, weights)
    if method == "maxsim":
        return maxsim_scores(vectors, read, weights)
    if method == "contrast":
        return contrast_scores(vectors, read, weights)
    if method == "svm":
        return svm_scores(vectors, read, weights, c=svm_c)
    raise ValueError(f"recommendation method {method!r}: use one of {', '.join(RECOMMEND_METHODS)}")


def zscore(values: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Values centred and scaled by their mean and spread over the rows ``over``."""
    sub = values[over]
    spread = float(sub.std())
    return (values - float(sub.mean())) / spread if spread > 0 else np.zeros_like(values)
