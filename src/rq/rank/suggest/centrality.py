"""With nothing read: how central each candidate is to the largest topic among the candidates."""

from __future__ import annotations

import numpy as np

CLUSTER_SAMPLE = 2000  # candidates clustered; bounds the n x n matrix (16 MB)


def central_scores(vectors: np.ndarray, cand: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """Mean cosine of every candidate to the members of the largest topic among the candidates.

    Topics are a small k-medoids clustering (about sqrt(n/2) clusters) of at most
    ``CLUSTER_SAMPLE`` candidates; None when there are too few candidates to speak
    of topics.
    """
    if len(cand) < 4:
        return None
    x = vectors[cand]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x), CLUSTER_SAMPLE, replace=False)) if len(x) > CLUSTER_SAMPLE \
        else np.arange(len(x))
    sims = x[sample] @ x[sample].T  # the only large product: the clustering below is elementwise
    labels = kmedoids(sims, max(2, min(50, round(np.sqrt(len(sample) / 2)))), rng)
    biggest = int(np.bincount(labels).argmax())
    # the mean cosine to the members is the dot product with their mean vector
    return (x @ x[sample[labels == biggest]].mean(axis=0)).astype(np.float64)


def kmedoids(sims: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 10) -> np.ndarray:
    """Cluster labels from a cosine matrix: k-means++ seeding, then alternate assigning
    each row to its most similar medoid and moving each medoid to its cluster's most
    central member.

    Working from one precomputed matrix keeps BLAS out of the loop: on a busy machine
    each small multi-threaded product can cost a scheduler tick.
    """
    n = len(sims)
    k = min(k, n)
    medoids = _seed_medoids(sims, k, rng)
    for _ in range(iterations):
        labels = np.argmax(sims[:, medoids], axis=1)
        moved = medoids.copy()
        for j in range(k):
            members = np.flatnonzero(labels == j)
            if len(members):
                moved[j] = members[int(np.argmax(sims[np.ix_(members, members)].sum(axis=1)))]
        if np.array_equal(moved, medoids):
            break
        medoids = moved
    return np.argmax(sims[:, medoids], axis=1)


def _seed_medoids(sims: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ on cosine distance: each next medoid drawn in proportion to its distance from the others."""
    n = len(sims)
    medoids = [int(rng.integers(n))]
    gap = 1.0 - sims[medoids[0]]  # cosine distance to the nearest medoid
    for _ in range(1, k):
        weights = np.maximum(gap, 0.0).astype(np.float64)  # choice() wants exact sums
        total = float(weights.sum())
        nxt = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        medoids.append(nxt)
        gap = np.minimum(gap, 1.0 - sims[nxt])
    return np.array(medoids)
