"""Cosine similarity by dot product: vectors scaled to unit length, and the closest pair of two sets."""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` over its length; a zero vector stays zero."""
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def unit_rows(vectors) -> np.ndarray:
    """Each row over its length, as float64; zero rows stay zero."""
    # float64: Ward merge heights of near-identical vectors are unstable in float32.
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def best_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """The most similar pair of passages between two resources: (row of a, row of b, cosine)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or not len(a) or not len(b) or a.shape[1] != b.shape[1]:
        raise ValueError(f"best_pair needs two non-empty (n, d) arrays, got {a.shape} and {b.shape}")
    sims = a @ b.T
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    return int(i), int(j), float(sims[i, j])
