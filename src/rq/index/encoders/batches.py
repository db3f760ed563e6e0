"""Encoding many texts in batches of similar length, the way both encoders do it."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Progress = Callable[[int, int], None]


def encode_in_batches(order: Sequence[int], batch_size: int, dim: int,
                      run: Callable[[Sequence[int]], np.ndarray], progress: Progress | None) -> np.ndarray:
    """Rows of the texts numbered by ``order``, ``batch_size`` at a time through ``run`` (which
    gets the text numbers of one batch and returns their vectors), in float32, reporting
    ``progress(done, total)`` after each batch. Callers order longest first: texts of similar
    length share a batch, so little compute goes to padding, and a run's peak memory shows in
    its first batch."""
    total = len(order)
    out = np.empty((total, dim), dtype=np.float32)
    done = 0
    for start in range(0, total, batch_size):
        idx = np.asarray(order[start:start + batch_size])
        out[idx] = run(idx)
        done += len(idx)
        if progress is not None:
            progress(done, total)
    return out
