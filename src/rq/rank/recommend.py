"""Suggest the next unread resource, and find resources related to one another.

Everything here is numpy in, numpy out: rows of ``vectors`` are resources (unit
float32 vectors, one per resource), and masks say which rows were read and which
may be suggested. The read rows are the reader's positive examples; a scorer
turns them into a relevance for every row:

- ``centroid``: cosine to the (recency-weighted) mean of the read vectors;
- ``maxsim``: the best (recency-weighted) cosine to any single read vector;
- ``contrast``: cosine to the read mean minus the mean of all other rows
  (Rocchio's positive-minus-negative direction); it is what a class-balanced
  linear SVM tends to as its C goes to 0, without the solver;
- ``svm``: an exemplar linear SVM trained per request, read rows positive and
  every other row negative (the arxiv-sanity-lite recipe on embeddings);
- blends such as ``"svm+maxsim"``: the sum of each part's z-scores over the
  candidates, so parts on different scales weigh the same.

The most relevant rows are then re-ranked by maximal marginal relevance whose
redundancy term only counts cosines above a floor, so the first suggestions are
not near-copies of one another, yet are not spread over unrelated topics either.
Each suggestion names the read resources most similar to it. With nothing read,
the suggestions are the rows most central to the largest topic, flagged as such.
The defaults were chosen on six real reading lists with their sections as hidden
labels (benchmarks/bench_recommend.py).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np

BASE_METHODS = ("centroid", "maxsim", "contrast", "svm")
# Chosen on six real reading lists (benchmarks/bench_recommend.py): the SVM ranks best.
# At lambda <= 0.5 an exact copy of a suggestion sinks below every distinct relevant
# row; among such settings within 0.01 of the best relevance, this one left no
# near-copy pair (cosine >= 0.9) in any top five.
DEFAULT_METHOD = "svm"
DEFAULT_SVM_C = 0.1
DEFAULT_MMR_LAMBDA = 0.3
DEFAULT_MMR_FLOOR = 0.85
BECAUSE_MAX = 3  # read resources named per suggestion
MMR_POOL = 100  # only the most relevant rows are re-ranked; diversity deeper down is moot
CLUSTER_SAMPLE = 2000  # candidates clustered for the fallback; bounds its n x n matrix (16 MB)
SECONDS_PER_DAY = 86_400.0
FALLBACK_TOPIC = "nothing read yet: most central to the largest topic"
FALLBACK_ORDER = "nothing read yet: first in queue order"


@dataclass(frozen=True)
class Recommendation:
    """Suggestions best first. ``scores`` are the method's relevance (not the MMR value),
    so after diversification they need not be sorted."""

    indices: np.ndarray  # int64 rows of ``vectors``
    scores: np.ndarray  # float64 relevance of each suggestion
    because: list[list[tuple[int, float]]]  # per suggestion: (read row, cosine), closest first
    method: str
    fallback: str | None = None  # why the suggestions are not based on reads, if they are not


# --------------------------------------------------------------------------- public API


def recency_weights(read_times: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """Weight of each read: 1 for a read at ``now``, halved every ``half_life_days``.

    Times are Unix seconds; NaN (no date) weighs 1, as does a time in the future
    (clock skew should not make a read count more than a fresh one). An infinite
    half-life gives every read the same weight.
    """
    if not half_life_days > 0:
        raise ValueError(f"half-life {half_life_days} days: must be positive")
    times = np.asarray(read_times, dtype=np.float64).reshape(-1)
    dated = ~np.isnan(times)
    age_days = np.zeros(len(times))
    age_days[dated] = np.maximum(0.0, (now - times[dated]) / SECONDS_PER_DAY)
    return np.exp2(-age_days / half_life_days)


def rank_next(vectors: np.ndarray, read: np.ndarray, candidates: np.ndarray,
              read_weights: np.ndarray | None = None, method: str = DEFAULT_METHOD,
              mmr_lambda: float = DEFAULT_MMR_LAMBDA, k: int = 5,
              svm_c: float = DEFAULT_SVM_C, mmr_floor: float = DEFAULT_MMR_FLOOR) -> Recommendation:
    """The ``k`` candidate rows to read next, most relevant first, diversified.

    ``read`` and ``candidates`` are boolean masks over the rows; a read row is never
    suggested. ``read_weights`` (one per row, or one per read row) weighs each read,
    e.g. from :func:`recency_weights`; None weighs all reads the same. With nothing
    read, the suggestions come from :func:`central_scores` and are flagged.
    ``mmr_lambda`` and ``mmr_floor`` shape the diversification (see :func:`diversify`);
    ``mmr_lambda`` 1.0 turns it off.
    """
    vectors, read, candidates = _check(vectors, read, candidates)
    parts = parse_method(method)
    cand = np.flatnonzero(candidates & ~read)
    if len(cand) == 0 or k <= 0:
        return Recommendation(np.zeros(0, np.int64), np.zeros(0), [], method)
    with _one_blas_thread():
        if not read.any():
            return _fallback(vectors, cand, k, mmr_lambda, mmr_floor)
        weights = _read_weights(read, read_weights)
        relevance = score(vectors, read, weights, parts, cand, svm_c=svm_c)
        picked = diversify(vectors, cand, relevance[cand], k, mmr_lambda, mmr_floor)
        because = explain(vectors, read, weights, picked)
    return Recommendation(picked, relevance[picked], because, method)


def related(vectors: np.ndarray, query: np.ndarray, exclude: int | None = None,
            k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows closest to ``query`` by cosine, best first, never row ``exclude``.

    ``query`` is a unit vector: a resource's own row, or an embedded free text.
    Equal scores keep row order.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    if vectors.ndim != 2 or query.shape[0] != vectors.shape[1]:
        raise ValueError(f"query of dimension {query.shape[0]} against vectors of shape {vectors.shape}")
    sims = (vectors @ query).astype(np.float64)
    if exclude is not None:
        if not 0 <= exclude < len(sims):  # a negative index would silently drop another row
            raise ValueError(f"exclude row {exclude} is not among the {len(sims)} rows")
        sims[exclude] = -np.inf
    rows = _top(sims, min(k, len(sims) - (exclude is not None)))
    return rows, sims[rows]


def best_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """The most similar pair of passages between two resources: (row of a, row of b, cosine)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or not len(a) or not len(b) or a.shape[1] != b.shape[1]:
        raise ValueError(f"best_pair needs two non-empty (n, d) arrays, got {a.shape} and {b.shape}")
    sims = a @ b.T
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    return int(i), int(j), float(sims[i, j])


# --------------------------------------------------------------------------- scoring


def parse_method(method: str) -> tuple[str, ...]:
    """``"svm+maxsim"`` -> ("svm", "maxsim"); raises ValueError on an unknown part."""
    parts = tuple(p.strip() for p in method.split("+"))
    unknown = [p for p in parts if p not in BASE_METHODS]
    if unknown or not parts:
        raise ValueError(f"recommendation method {method!r}: use one of {', '.join(BASE_METHODS)}, "
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
    raise ValueError(f"recommendation method {method!r}: use one of {', '.join(BASE_METHODS)}")


def centroid_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    centre = weights @ vectors[read]
    norm = float(np.linalg.norm(centre))
    return (vectors @ (centre / norm if norm > 0 else centre)).astype(np.float64)


def maxsim_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    # Scaling by weight (max 1) lets a fresh read outrank an equally close old one;
    # clipping at 0 keeps an old read's small weight from lifting dissimilar rows.
    sims = np.maximum(vectors @ vectors[read].T, 0.0)
    return (sims * (weights / weights.max())).max(axis=1).astype(np.float64)


def contrast_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Projection on (weighted mean of the read rows) - (mean of the other rows)."""
    if read.all():
        return centroid_scores(vectors, read, weights)
    direction = weights @ vectors[read] / weights.sum() - vectors[~read].mean(axis=0)
    norm = float(np.linalg.norm(direction))
    return (vectors @ (direction / norm if norm > 0 else direction)).astype(np.float64)


def svm_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray,
               c: float = DEFAULT_SVM_C) -> np.ndarray:
    """Decision value of a linear SVM separating the read rows from all others.

    The model of scikit-learn's LinearSVC (squared hinge loss, L2 penalty on the weights and
    the intercept alike, classes balanced), solved here by Newton's method in numpy:
    importing scikit-learn would cost a cold `rq next` 0.9 s. tests/test_recommend.py holds
    its rankings to LinearSVC's.
    """
    if read.all():
        return centroid_scores(vectors, read, weights)
    x = np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))])  # last column: intercept
    y = np.where(read, 1.0, -1.0)
    n_pos = int(read.sum())
    # "balanced" classes; recency reshapes the positives, not their total.
    cost = np.where(read, len(y) / (2.0 * n_pos), len(y) / (2.0 * (len(y) - n_pos))) * c
    cost[read] *= weights / weights.mean()
    w = _squared_hinge_newton(x, y, cost)
    return x @ w


def _squared_hinge_newton(x: np.ndarray, y: np.ndarray, cost: np.ndarray, tol: float = 1e-8,
                          max_iter: int = 50) -> np.ndarray:
    """argmin_w  ||w||^2 / 2 + sum_i cost_i * max(0, 1 - y_i w.x_i)^2.

    The loss is once differentiable and piecewise quadratic, so a Newton step on the rows
    inside the margin, with backtracking, converges in a handful of iterations.
    """
    def objective(w):
        slack = np.maximum(0.0, 1.0 - y * (x @ w))
        return 0.5 * w @ w + cost @ (slack * slack)

    w = np.zeros(x.shape[1])
    value = objective(w)
    first = None
    for _ in range(max_iter):
        slack = 1.0 - y * (x @ w)
        active = slack > 0
        xa = x[active]
        grad = w - 2.0 * xa.T @ (cost[active] * slack[active] * y[active])
        norm = float(np.linalg.norm(grad))
        first = first or norm
        if norm <= tol * first:
            break
        hessian = np.eye(len(w)) + 2.0 * (xa.T * cost[active]) @ xa
        step = np.linalg.solve(hessian, grad)
        size = 1.0
        while size > 1e-6:
            candidate = w - size * step
            new_value = objective(candidate)
            if new_value <= value - 1e-4 * size * (grad @ step):
                break
            size /= 2
        w, value = candidate, new_value
    return w


def zscore(values: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Values centred and scaled by their mean and spread over the rows ``over``."""
    sub = values[over]
    spread = float(sub.std())
    return (values - float(sub.mean())) / spread if spread > 0 else np.zeros_like(values)


# --------------------------------------------------------------------------- diversity, reasons


def diversify(vectors: np.ndarray, cand: np.ndarray, relevance: np.ndarray, k: int,
              mmr_lambda: float, mmr_floor: float = 0.0, pool: int = MMR_POOL) -> np.ndarray:
    """``k`` rows of ``cand`` by maximal marginal relevance, as int64 rows of ``vectors``.

    Each pick maximises lambda * relevance - (1 - lambda) * redundancy, where
    redundancy grows from 0 at cosine ``mmr_floor`` to 1 at cosine 1 with the
    closest row already picked (``mmr_floor`` 0: classic MMR). Rows on one topic are
    only moderately similar, near-copies very; a floor lets MMR push near-copies
    down without spreading the list over unrelated topics. Relevance is min-max
    scaled over the pool so it shares the penalty's scale whatever the scorer.
    """
    if not 0.0 <= mmr_lambda <= 1.0:
        raise ValueError(f"MMR lambda {mmr_lambda} is outside [0, 1]")
    if not 0.0 <= mmr_floor < 1.0:
        raise ValueError(f"MMR floor {mmr_floor} is outside [0, 1)")
    relevance = np.asarray(relevance, dtype=np.float64)
    order = _top(relevance, min(len(cand), max(pool, k)))
    if mmr_lambda >= 1.0 or k <= 1:
        return np.asarray(cand, np.int64)[order[:k]]
    rows = np.asarray(cand, np.int64)[order]
    rel = relevance[order]
    spread = rel.max() - rel.min()
    rel = (rel - rel.min()) / spread if spread > 0 else np.ones_like(rel)
    pool_vecs = vectors[rows]
    pool_sims = pool_vecs @ pool_vecs.T  # one product, not one per pick
    closest = np.full(len(rows), -np.inf)  # cosine to the nearest picked row
    taken = np.zeros(len(rows), dtype=bool)
    picks: list[int] = []
    for _ in range(min(k, len(rows))):
        penalty = np.clip((closest - mmr_floor) / (1.0 - mmr_floor), 0.0, 1.0)  # -inf: nothing picked
        value = mmr_lambda * rel - (1.0 - mmr_lambda) * penalty
        value[taken] = -np.inf
        best = int(np.argmax(value))
        picks.append(best)
        taken[best] = True
        closest = np.maximum(closest, pool_sims[best])
    return rows[picks]


def explain(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray,
            picked: np.ndarray, top: int = BECAUSE_MAX) -> list[list[tuple[int, float]]]:
    """For each picked row, the read rows that pull it up most: weighted cosine, positive only."""
    read_rows = np.flatnonzero(read)
    sims = vectors[picked] @ vectors[read_rows].T
    pull = sims * (weights / weights.max())
    out = []
    for r, row in enumerate(pull):
        best = _top(row, min(top, len(row)))
        out.append([(int(read_rows[j]), float(sims[r, j])) for j in best if sims[r, j] > 0])
    return out


# --------------------------------------------------------------------------- nothing read yet


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
    medoids = [int(rng.integers(n))]
    gap = 1.0 - sims[medoids[0]]  # cosine distance to the nearest medoid
    for _ in range(1, k):
        weights = np.maximum(gap, 0.0).astype(np.float64)  # choice() wants exact sums
        total = float(weights.sum())
        nxt = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        medoids.append(nxt)
        gap = np.minimum(gap, 1.0 - sims[nxt])
    medoids_arr = np.array(medoids)
    for _ in range(iterations):
        labels = np.argmax(sims[:, medoids_arr], axis=1)
        moved = medoids_arr.copy()
        for j in range(k):
            members = np.flatnonzero(labels == j)
            if len(members):
                moved[j] = members[int(np.argmax(sims[np.ix_(members, members)].sum(axis=1)))]
        if np.array_equal(moved, medoids_arr):
            break
        medoids_arr = moved
    return np.argmax(sims[:, medoids_arr], axis=1)


def _fallback(vectors: np.ndarray, cand: np.ndarray, k: int, mmr_lambda: float,
              mmr_floor: float) -> Recommendation:
    central = central_scores(vectors, cand)
    if central is None:
        picked = cand[:k].astype(np.int64)
        return Recommendation(picked, np.zeros(len(picked)), [[] for _ in picked], "queue order",
                              FALLBACK_ORDER)
    relevance = np.full(len(vectors), -np.inf)
    relevance[cand] = central
    picked = diversify(vectors, cand, central, k, mmr_lambda, mmr_floor)
    return Recommendation(picked, relevance[picked], [[] for _ in picked], "largest topic",
                          FALLBACK_TOPIC)


# --------------------------------------------------------------------------- helpers


def _check(vectors: np.ndarray, read: np.ndarray, candidates: np.ndarray):
    vectors = np.asarray(vectors, dtype=np.float32)
    read = np.asarray(read, dtype=bool).reshape(-1)
    candidates = np.asarray(candidates, dtype=bool).reshape(-1)
    if vectors.ndim != 2 or len(read) != len(vectors) or len(candidates) != len(vectors):
        raise ValueError(f"vectors {vectors.shape}, read mask {read.shape} and candidate mask "
                         f"{candidates.shape} must agree on the number of rows")
    return vectors, read, candidates


def _read_weights(read: np.ndarray, read_weights: np.ndarray | None) -> np.ndarray:
    """One non-negative weight per read row, largest 1; all-zero weights count as equal."""
    n_read = int(read.sum())
    if read_weights is None:
        return np.ones(n_read)
    w = np.asarray(read_weights, dtype=np.float64).reshape(-1)
    if len(w) == len(read):  # one per row: keep the read rows' own
        w = w[read]
    if len(w) != n_read:
        raise ValueError(f"{len(w)} read weights for {n_read} read rows")
    if np.isnan(w).any() or (w < 0).any():
        raise ValueError("read weights must be non-negative numbers")
    top = w.max()
    # Reads so old that every weight underflowed to 0 still say what the reader likes.
    return w / top if top > 0 else np.ones(n_read)


def _one_blas_thread():
    """Hold BLAS to one thread for the duration of a request.

    Every product here is small (at most a few thousand rows by 384); on a busy
    2-core machine a multi-threaded BLAS call can wait a scheduler tick for its
    second thread, which made a warm request 2-3x slower at the 99th percentile
    (benchmarks/bench_recommend.py, latency table). threadpoolctl ships with
    scikit-learn; without it, nothing is changed.
    """
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller else contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def _blas_controller():
    # Finding the loaded BLAS libraries takes milliseconds; limiting known ones, microseconds.
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first; ties keep index order."""
    k = max(0, min(k, len(values)))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(values):
        # argpartition is not stable: take every value tied with the k-th, then sort stably.
        kth = np.partition(values, len(values) - k)[len(values) - k]
        head = np.flatnonzero(values >= kth)
    else:
        head = np.arange(len(values))
    return head[np.argsort(-values[head], kind="stable")][:k].astype(np.int64)
