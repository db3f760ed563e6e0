"""Combine the dense and keyword rankings, and roll passage hits up to resources.

Every ranker in rq returns ``(ids, scores)``: two numpy arrays, best first. The
two lists live on different scales (cosine in [-1, 1], BM25 in [0, inf)), so
the convex combination first maps each onto [0, 1]. The default, "tmm"
(theoretical min-max, Bruch et al. 2022), uses the lowest score the function
can give rather than the lowest one that happened to be retrieved, so a list
whose scores are all close together is not stretched into a spread it lacks.

How `rq search` uses it (rq.rank.engine): each ranker scores every passage of an index of up
to 20,000 (else its best 300), the passages roll up to resources with ``aggregate_all`` (or
``aggregate``), and every resource either ranker scored is fused (``fusion_depth`` 0). The
settings and their measurement on SciFact are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

Ranking = tuple[np.ndarray, np.ndarray]

# fuse()'s own default; rq search uses the hybrid_alpha setting (0.875, chosen on SciFact train
# with dense windows: benchmarks/RESULTS.md). tmm led min-max, z-score and RRF there.
DEFAULT_ALPHA = 0.8
# Lowest score each ranker can give: cosine of unit vectors, and BM25.
DENSE_MIN = -1.0
KEYWORD_MIN = 0.0
NORMS = ("tmm", "minmax", "zscore", "absolute")
METHODS = ("convex", "rrf")


def fuse(dense: Ranking, keyword: Ranking, method: str = "convex", alpha: float = DEFAULT_ALPHA,
         rrf_k: float = 60.0, norm: str = "tmm",
         mins: tuple[float, float] = (DENSE_MIN, KEYWORD_MIN),
         maxes: tuple[float, float] = (1.0, 1.0)) -> Ranking:
    """One ranking from two: ``alpha`` weighs the dense side, ``1 - alpha`` the keyword side.

    convex: alpha * norm(dense) + (1 - alpha) * norm(keyword); an id missing from one
    list gets that list's lowest score (it ranked below everything the list returned).
    norm "absolute" divides each list by the highest score it could give (``maxes``: 1 for
    a cosine, the query's own weight for BM25) instead of the highest it gave, so the fused
    score means the same from one query to the next; an id missing from a list gets that
    list's lowest possible score (``mins``) over its ``maxes``.
    rrf: alpha / (rrf_k + dense rank) + (1 - alpha) / (rrf_k + keyword rank), ranks from 1;
    with alpha 0.5 this orders results exactly like plain reciprocal-rank fusion.
    Ties keep the order of first appearance, dense list first.
    """
    if method not in METHODS:
        raise ValueError(f"fusion method {method!r}: use one of {', '.join(METHODS)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fusion alpha {alpha} is outside [0, 1]")
    d_ids, d_scores = _ranking(dense)
    k_ids, k_scores = _ranking(keyword)
    ids, first = np.unique(np.concatenate([d_ids, k_ids]), return_index=True)
    ids = ids[np.argsort(first, kind="stable")]  # union in order of first appearance
    if method == "rrf":
        fused = (alpha * _reciprocal_ranks(ids, d_ids, rrf_k)
                 + (1.0 - alpha) * _reciprocal_ranks(ids, k_ids, rrf_k))
    else:
        fused = (alpha * _normalised(ids, d_ids, d_scores, norm, mins[0], maxes[0])
                 + (1.0 - alpha) * _normalised(ids, k_ids, k_scores, norm, mins[1], maxes[1]))
    order = np.argsort(-fused, kind="stable")
    return ids[order], fused[order].astype(np.float32)


def _ranking(ranking: Ranking) -> Ranking:
    ids, scores = ranking
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(ids) != len(scores):
        raise ValueError(f"a ranking has {len(ids)} ids but {len(scores)} scores")
    keep = ids >= 0  # FAISS pads short results with id -1
    return ids[keep], scores[keep]


def _lookup(ids: np.ndarray, list_ids: np.ndarray, values: np.ndarray, missing: float) -> np.ndarray:
    """values[j] for each id equal to list_ids[j]; ``missing`` where the id is absent."""
    out = np.full(len(ids), missing, dtype=np.float64)
    if not len(list_ids) or not len(ids):
        return out
    size = int(max(ids.max(), list_ids.max())) + 1
    if size <= 8 * (len(ids) + len(list_ids)) + 100_000:  # ids are rows or passage ids: a table is cheapest
        table = np.full(size, np.nan)
        table[list_ids] = values
        found = table[ids]
        hit = ~np.isnan(found)
        out[hit] = found[hit]
        return out
    order = np.argsort(list_ids, kind="stable")
    pos = np.minimum(np.searchsorted(list_ids[order], ids), len(list_ids) - 1)
    hit = list_ids[order][pos] == ids
    out[hit] = values[order][pos[hit]]
    return out


def _normalised(ids: np.ndarray, list_ids: np.ndarray, scores: np.ndarray, norm: str,
                theoretical_min: float, theoretical_max: float = 1.0) -> np.ndarray:
    if norm not in NORMS:
        raise ValueError(f"score normalisation {norm!r}: use one of {', '.join(NORMS)}")
    if norm == "absolute":
        top = theoretical_max if theoretical_max > 0 else 1.0
        return _lookup(ids, list_ids, scores / top, theoretical_min / top)
    if not len(scores):
        return np.zeros(len(ids))
    low, high = float(scores.min()), float(scores.max())
    if norm == "zscore":
        spread = float(scores.std())
        scaled = (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)
    else:
        floor = min(theoretical_min, low) if norm == "tmm" else low
        scaled = (scores - floor) / (high - floor) if high > floor else np.ones_like(scores)
    return _lookup(ids, list_ids, scaled, float(scaled.min()))


def _reciprocal_ranks(ids: np.ndarray, list_ids: np.ndarray, rrf_k: float) -> np.ndarray:
    ranks = np.arange(1, len(list_ids) + 1, dtype=np.float64)
    return _lookup(ids, list_ids, 1.0 / (rrf_k + ranks), 0.0)


def aggregate(passage_ids: np.ndarray, passage_scores: np.ndarray,
              passage_to_resource: np.ndarray | Mapping[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resources ranked by their best passage: (resource_ids, scores, best_passage_ids).

    ``passage_to_resource`` is an array indexed by passage id or a dict. Among equal
    scores the passage that came first in the input wins, and resources keep that order.
    """
    passage_ids = np.asarray(passage_ids, dtype=np.int64).reshape(-1)
    passage_scores = np.asarray(passage_scores).reshape(-1)
    keep = passage_ids >= 0
    passage_ids, passage_scores = passage_ids[keep], passage_scores[keep]
    if isinstance(passage_to_resource, Mapping):
        resources = np.fromiter((passage_to_resource[int(p)] for p in passage_ids), dtype=np.int64,
                                count=len(passage_ids))
    else:
        resources = np.asarray(passage_to_resource, dtype=np.int64)[passage_ids]
    order = np.argsort(-passage_scores, kind="stable")
    _, first = np.unique(resources[order], return_index=True)
    best = order[np.sort(first)]  # each resource's best passage, in ranking order
    return resources[best], passage_scores[best], passage_ids[best]


def aggregate_all(passage_scores: np.ndarray, starts: np.ndarray, resources: np.ndarray,
                  positive_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``aggregate`` for a score of every passage, passages stored resource by resource:
    ``starts`` are the first passage of each run of one resource, ``resources`` that
    resource. Same result (ties aside) in a fraction of the time, with no sort of passages."""
    scores = np.asarray(passage_scores).reshape(-1)
    if not len(scores):
        return np.zeros(0, np.int64), np.zeros(0, scores.dtype), np.zeros(0, np.int64)
    best = np.maximum.reduceat(scores, starts)
    lengths = np.diff(np.append(starts, len(scores)))
    at_best = np.flatnonzero(scores == np.repeat(best, lengths))
    run = np.searchsorted(starts, at_best, side="right") - 1
    first = at_best[np.unique(run, return_index=True)[1]]  # each run's first passage at its best
    keep = np.flatnonzero(best > 0) if positive_only else np.arange(len(best))
    order = keep[np.argsort(-best[keep], kind="stable")]
    return np.asarray(resources, dtype=np.int64)[order], best[order], first[order].astype(np.int64)
