"""Topic clusters of a reading queue: Ward, average linkage, k-means or HDBSCAN, k by silhouette.

Numpy arrays in, a ``Clustering`` out; nothing here embeds, reads the queue or prints.
Vectors are expected to be unit length.

Ward linkage on unit vectors is the default: for unit vectors the squared Euclidean
distance is 2 - 2 cos, so Ward merges by cosine geometry. In benchmarks/bench_clusters.py
(six real lists, clusters vs top-level sections at the same k) it had the best NMI on all
six, ahead of k-means, average-linkage cosine and a tf-idf + k-means baseline; HDBSCAN left
most items unclustered (density needs more points than a reading queue has).

``auto`` picks k by silhouette, but only from a floor up: on the real lists the silhouette
curve is flat and noisy (0.03-0.12 for every k), and its maximum over 2..sqrt(2n) fell on
k = 2-4 for lists with 10-55 sections (NMI against the sections 0.08-0.17, where k = the
number of sections gave 0.19-0.49). The floor is tied to the queue: at least
SECTION_SHARE of its sections that hold MIN_SECTION_ITEMS items, and one cluster per
MAX_MEAN_SIZE items, so two groups of a thousand items cannot win.

Large queues: Ward is quadratic in time and memory, so above WARD_SAMPLE items the tree is
built on a seeded sample and every item goes to the nearest cluster mean (one k-means
assignment step); the silhouette is computed exactly for all items in O(n k d) from cluster
sums, never from an n x n distance matrix.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from rq.errors import UsageError
from rq.rank.cosine import unit_rows

METHODS = ("ward", "average", "kmeans", "hdbscan")
DEFAULT_METHOD = "ward"
K_MAX = 40  # more topics than this is no longer an overview
# The floor of auto k (benchmarks/bench_clusters.py, "automatic k": 0.5, 0.75 and 1.0 compared).
SECTION_SHARE = 0.75  # at least this share of the queue's sections ...
MIN_SECTION_ITEMS = 3  # ... that hold this many items (smaller ones are not topics yet)
MAX_MEAN_SIZE = 50  # and at least one cluster per this many items
WARD_SAMPLE = 2000  # hierarchical methods build their tree on at most this many items


@dataclass
class Clustering:
    labels: np.ndarray  # cluster per item, 0..k-1 by decreasing size; -1 = unclustered (HDBSCAN)
    k: int
    method: str
    how: str  # how k was chosen, in words

    def as_dict(self) -> dict:
        return {"k": self.k, "method": self.method, "how": self.how,
                "labels": [int(v) for v in self.labels]}


def cluster(vectors: np.ndarray, k: int | str = "auto", method: str = DEFAULT_METHOD,
            *, seed: int = 0, sections: int = 0) -> Clustering:
    """Cluster unit vectors into ``k`` topics; ``k="auto"`` picks k by silhouette (see k_range).

    ``sections``: how many of the queue's sections hold at least MIN_SECTION_ITEMS items
    (topic_sections); it sets the floor of auto k.
    """
    if method not in METHODS:
        raise UsageError(f"unknown clustering method {method!r}; use one of {', '.join(METHODS)}")
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise UsageError(f"number of clusters must be a positive whole number or 'auto', not {k!r}")
    x = unit_rows(vectors)
    n = len(x)
    if n == 0:
        return Clustering(np.zeros(0, dtype=np.int64), 0, method, "no items to cluster")
    if method == "hdbscan":
        return _hdbscan(x)
    if k == "auto":
        if n < 4:
            return Clustering(np.zeros(n, dtype=np.int64), 1, method, f"k=1: {n} items are too few to split")
        return _auto(x, method, seed, sections)
    chosen = min(k, n)
    labels = _canonical(_partitioner(x, method, seed)([chosen])[0])
    how = f"k={chosen} as asked" + ("" if chosen == k else f" (capped at the {n} items)")
    return Clustering(labels, cluster_count(labels), method, how + _sampled(n, method))


def cluster_count(labels: np.ndarray) -> int:
    """How many clusters the labels name: the largest label plus one; -1 (unclustered) is none."""
    return int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0


def topic_sections(section_paths: Iterable[tuple]) -> int:
    """How many sections hold at least MIN_SECTION_ITEMS items: what ``sections`` of cluster() wants."""
    return sum(1 for n in Counter(tuple(p) for p in section_paths).values() if n >= MIN_SECTION_ITEMS)


def k_range(n: int, sections: int = 0) -> range:
    """Candidate k for ``auto``, for ``n`` items and ``sections`` sections of 3 or more items.

    Ceiling: round(sqrt(2n)) (~7 for 25 items, ~33 for 550), at most K_MAX and n - 1.
    Floor: ceil(SECTION_SHARE x sections) and ceil(n / MAX_MEAN_SIZE), at least 2; where the
    floor passes the ceiling, the ceiling rises to it (never past K_MAX or n - 1).
    """
    top = max(2, min(K_MAX, n - 1))
    floor = min(top, max(2, math.ceil(SECTION_SHARE * sections), math.ceil(n / MAX_MEAN_SIZE)))
    ceiling = max(floor, min(top, round(math.sqrt(2 * n))))
    return range(floor, ceiling + 1)


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` under cosine distance, exact, from cluster sums in O(n k d).

    For unit vectors the mean cosine distance from item i to cluster c is 1 - x_i . S_c / |c|,
    with S_c the sum of c's vectors (i itself left out of its own cluster); items alone in
    their cluster score 0, as in sklearn.metrics.silhouette_score.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = cluster_count(labels)
    if k < 2:
        return 0.0
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    sims = x @ sums.T  # (n, k): summed cosine to each cluster
    rows = np.arange(len(x))
    own_size = sizes[labels]
    self_sim = np.einsum("ij,ij->i", x, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        within = 1.0 - (sims[rows, labels] - self_sim) / (own_size - 1)
        between = 1.0 - sims / np.where(sizes > 0, sizes, np.nan)
    between[rows, labels] = np.inf
    between = np.where(np.isnan(between), np.inf, between).min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (between - within) / np.maximum(within, between)
    scores[(own_size <= 1) | ~np.isfinite(scores)] = 0.0  # as sklearn: alone, or 0/0 (duplicates)
    return float(np.mean(scores))


def _auto(x: np.ndarray, method: str, seed: int, sections: int) -> Clustering:
    n = len(x)
    ks = k_range(n, sections)
    scored = []  # (no one-item cluster, silhouette, -k, labels)
    for k, labels in zip(ks, _partitioner(x, method, seed)(list(ks))):
        labels = _canonical(labels)
        if cluster_count(labels) < 2:
            continue
        # A one-item cluster is not a topic; such splits only win when every split has one.
        scored.append((bool(np.bincount(labels).min() > 1), silhouette(x, labels), -k, labels))
    if not scored:
        return Clustering(np.zeros(n, dtype=np.int64), 1, method, "k=1: the items do not split")
    proper, score, _, labels = max(scored, key=lambda s: s[:3])
    rule = "without one-item clusters" if proper else "(every split had a one-item cluster)"
    floor = []
    if sections:
        floor.append(f"{SECTION_SHARE:.0%} of the {sections} sections of {MIN_SECTION_ITEMS}+ items")
    floor.append(f"one cluster per {MAX_MEAN_SIZE} items")
    bounds = f"k at least {' and '.join(floor)}, at most {min(K_MAX, n - 1)}"
    if len(ks) == 1:
        how = f"k={cluster_count(labels)}: the only k allowed ({bounds}); silhouette (cosine) {score:.3f}"
    else:
        how = (f"k={cluster_count(labels)}: best silhouette (cosine, {score:.3f}) over k={ks.start}..{ks.stop - 1} "
               f"{rule}; {bounds}")
    return Clustering(labels, cluster_count(labels), method, how + _sampled(n, method))


def _sampled(n: int, method: str) -> str:
    if method in ("ward", "average") and n > WARD_SAMPLE:
        return f"; tree built on a sample of {WARD_SAMPLE:,} of the {n:,} items, each item then put in the nearest cluster"
    return ""


def _partitioner(x: np.ndarray, method: str, seed: int):
    """A function [k, ...] -> [labels, ...]; hierarchical methods cut one tree for every k."""
    if method in ("ward", "average"):
        from scipy.cluster.hierarchy import cut_tree, linkage

        if len(x) == 1:
            return lambda ks: [np.zeros(1, dtype=np.int64) for _ in ks]
        sample = x
        if len(x) > WARD_SAMPLE:
            pick = np.sort(np.random.default_rng(seed).choice(len(x), WARD_SAMPLE, replace=False))
            sample = x[pick]
        tree = (linkage(sample, method="ward") if method == "ward"
                else linkage(sample, method="average", metric="cosine"))

        def cut(ks):
            # One cut_tree call for all k: each call walks the whole tree.
            cuts = list(cut_tree(tree, n_clusters=ks).astype(np.int64).T)
            return cuts if sample is x else [_nearest_mean(x, sample, c) for c in cuts]

        return cut
    from sklearn.cluster import KMeans

    return lambda ks: [KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x).astype(np.int64)
                       for k in ks]


def _nearest_mean(x: np.ndarray, sample: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every item's nearest cluster mean (Euclidean, as Ward measures), the clusters cut from the sample."""
    k = cluster_count(labels)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, labels, sample)
    means /= np.bincount(labels, minlength=k)[:, None]
    # ||x - m||^2 = ||x||^2 - 2 x.m + ||m||^2; the first term is the same for every m.
    return np.argmin((means * means).sum(axis=1)[None, :] - 2.0 * (x @ means.T), axis=1).astype(np.int64)


def _hdbscan(x: np.ndarray) -> Clustering:
    from sklearn.cluster import HDBSCAN

    n = len(x)
    size = 3 if n < 60 else 5
    if n < size:
        return Clustering(np.full(n, -1, dtype=np.int64), 0, "hdbscan",
                          f"HDBSCAN needs at least {size} items; all {n} unclustered")
    labels = _canonical(HDBSCAN(min_cluster_size=size, metric="euclidean", copy=True).fit_predict(x))
    k = cluster_count(labels)
    outliers = int(np.sum(labels < 0))
    how = f"HDBSCAN (min_cluster_size={size}) found {k} clusters; {outliers} of {n} items unclustered (-1)"
    return Clustering(labels, k, "hdbscan", how)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (ties: first item first), keeping -1; no gaps."""
    labels = np.asarray(labels, dtype=np.int64)
    found = [c for c in np.unique(labels) if c >= 0]
    order = sorted(found, key=lambda c: (-np.sum(labels == c), int(np.argmax(labels == c))))
    out = np.full_like(labels, -1)
    for new, old in enumerate(order):
        out[labels == old] = new
    return out
