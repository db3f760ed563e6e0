"""Closed-form relevance of every row to the read rows: centroid, maxsim, contrast.

``vectors`` are unit float32 rows, ``read`` a boolean mask of the read rows and
``weights`` one weight per read row (largest 1). Each scorer returns a float64 relevance
for every row; the SVM, which needs a solver, is in rq.rank.suggest.svm.
"""

from __future__ import annotations

import numpy as np

from rq.rank.cosine import unit


def centroid_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cosine to the weighted mean of the read rows."""
    return _cosine_to(vectors, weights @ vectors[read])


def maxsim_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The best weighted cosine to any one read row."""
    # Scaling by weight (max 1) lets a fresh read outrank an equally close old one;
    # clipping at 0 keeps an old read's small weight from lifting dissimilar rows.
    sims = np.maximum(vectors @ vectors[read].T, 0.0)
    return (sims * (weights / weights.max())).max(axis=1).astype(np.float64)


def contrast_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Projection on (weighted mean of the read rows) - (mean of the other rows)."""
    if read.all():
        return centroid_scores(vectors, read, weights)
    return _cosine_to(vectors, weights @ vectors[read] / weights.sum() - vectors[~read].mean(axis=0))


def _cosine_to(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return (vectors @ unit(direction)).astype(np.float64)
