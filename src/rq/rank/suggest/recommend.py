"""Suggest the next unread resource, and find resources related to one another.

Everything here is numpy in, numpy out: rows of ``vectors`` are resources (unit
float32 vectors, one per resource), and masks say which rows were read and which
may be suggested. The read rows are the reader's positive examples; a scorer
turns them into a relevance for every row (rq.rank.suggest.relevance):

- ``centroid``: cosine to the (recency-weighted) mean of the read vectors;
- ``maxsim``: the best (recency-weighted) cosine to any single read vector;
- ``contrast``: cosine to the read mean minus the mean of all other rows
  (Rocchio's positive-minus-negative direction); it is what a class-balanced
  linear SVM tends to as its C goes to 0, without the solver (rq.rank.suggest.scorers);
- ``svm``: an exemplar linear SVM trained per request, read rows positive and
  every other row negative (the arxiv-sanity-lite recipe on embeddings; rq.rank.suggest.svm);
- blends such as ``"svm+maxsim"``: the sum of each part's z-scores over the
  candidates, so parts on different scales weigh the same.

The most relevant rows are then re-ranked by maximal marginal relevance whose
redundancy term only counts cosines above a floor, so the first suggestions are
not near-copies of one another, yet are not spread over unrelated topics either.
A candidate that is the same story as a read row (cosine at or above ``near_duplicate``, e.g.
one article from two outlets) is not new material: it is ranked after every other candidate and
flagged, never dropped (rq.rank.suggest.evidence). Each suggestion names the read resources most
similar to it. With nothing read,
the suggestions are the rows most central to the largest topic (rq.rank.suggest.centrality),
flagged as such. The defaults were chosen on six real reading lists with their
sections as hidden labels (benchmarks/bench_recommend.py).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import numpy as np

from rq.rank.suggest.centrality import central_scores
from rq.rank.suggest.evidence import DEFAULT_NEAR_DUPLICATE, same_story
from rq.rank.suggest.relevance import parse_method, score
from rq.rank.suggest.svm import DEFAULT_SVM_C

# Chosen on six real reading lists (benchmarks/bench_recommend.py): the SVM ranks best.
# At lambda <= 0.5 an exact copy of a suggestion sinks below every distinct relevant
# row; among such settings within 0.01 of the best relevance, this one left no
# near-copy pair (cosine >= 0.9) in any top five.
DEFAULT_METHOD = "svm"
DEFAULT_MMR_LAMBDA = 0.3
DEFAULT_MMR_FLOOR = 0.85
BECAUSE_MAX = 3  # read resources named per suggestion
MMR_POOL = 100  # only the most relevant rows are re-ranked; diversity deeper down is moot
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
    # Per suggestion, where its relevance stands among all the candidates: the percentage of them
    # scoring as high or higher (1: at the top of 100 candidates). Empty when there is no score.
    top_percent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # Per suggestion: (read row, cosine) when it is the same story as that read row, else None.
    same_story: list[tuple[int, float] | None] = field(default_factory=list)


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
              svm_c: float = DEFAULT_SVM_C, mmr_floor: float = DEFAULT_MMR_FLOOR,
              near_duplicate: float = DEFAULT_NEAR_DUPLICATE, pages: np.ndarray | None = None,
              with_page: np.ndarray | None = None) -> Recommendation:
    """The ``k`` candidate rows to read next, most relevant first, diversified.

    ``read`` and ``candidates`` are boolean masks over the rows; a read row is never
    suggested. ``read_weights`` (one per row, or one per read row) weighs each read,
    e.g. from :func:`recency_weights`; None weighs all reads the same. With nothing
    read, the suggestions come from :func:`central_scores` and are flagged.
    ``mmr_lambda`` and ``mmr_floor`` shape the diversification (see :func:`diversify`);
    ``mmr_lambda`` 1.0 turns it off. Candidates whose page's cosine to a read row's page is at
    least ``near_duplicate`` come after all others (above 1.0: none do): ``pages`` holds each
    row's page vector (None: ``vectors``), and only rows in ``with_page`` have one (None: no row,
    so nothing is sunk).
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
        paged = np.zeros(len(vectors), dtype=bool) if with_page is None else with_page
        repeat, story_row, story_sim = same_story(vectors if pages is None else pages, read, cand,
                                                  near_duplicate, paged)
        # New material first, diversified as usual; repeats of what was read only fill what is left.
        picked = diversify(vectors, cand[~repeat], relevance[cand[~repeat]], k, mmr_lambda, mmr_floor)
        if len(picked) < k and repeat.any():
            rest = diversify(vectors, cand[repeat], relevance[cand[repeat]], k - len(picked), mmr_lambda,
                             mmr_floor)
            picked = np.concatenate([picked, rest])
        because = explain(vectors, read, weights, picked)
    where = {int(row): i for i, row in enumerate(cand)}
    stories = [(int(story_row[where[int(p)]]), float(story_sim[where[int(p)]])) if repeat[where[int(p)]] else None
               for p in picked]
    return Recommendation(picked, relevance[picked], because, method,
                          top_percent=standing(relevance[cand], relevance[picked]), same_story=stories)


def standing(pool: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """For each score in ``picked``: the percentage of ``pool`` scoring as high or higher,
    rounded up to a whole number (the best of 40 candidates: 3)."""
    pool = np.sort(np.asarray(pool, dtype=np.float64))
    if not len(pool):
        return np.zeros(len(picked), np.int64)
    at_least = len(pool) - np.searchsorted(pool, np.asarray(picked, dtype=np.float64), side="left")
    return np.ceil(100.0 * np.maximum(at_least, 1) / len(pool)).astype(np.int64)


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
    if not len(cand):
        return np.zeros(0, np.int64)
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
                          FALLBACK_TOPIC, standing(central, relevance[picked]))


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
