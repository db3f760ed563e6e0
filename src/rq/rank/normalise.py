"""Vectors scaled to unit length, for cosine similarity by dot product."""

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
