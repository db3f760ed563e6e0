"""What a suggestion's link to the reader's reading is worth.

Two cases people misread. A suggestion can be the same story as something already read (one
article from two outlets, a page and its mirror, a paper and its abstract page): it is not new
material, so it is marked and sunk below everything new. And with little read, the closest read
item can be barely alike ("because you read Solid Principles (0.19)"): the suggestion then says
it rests on weak evidence rather than implying a match. Both thresholds are cosines between
vectors, chosen on data in benchmarks/bench_near_dup.py: "the same story" compares pages
(rq.rank.session.ReadSession.page_vectors), since a resource vector is half its title and two
parts of a series share one; "weak" compares resource vectors, as "because you read" does.
"""

from __future__ import annotations

import numpy as np

# The cosine of two resources' page vectors at or above which they are one story. Chosen on
# labelled pairs of real pages and papers (benchmarks/bench_near_dup.py, RESULTS.md): the best F1
# on one split (precision 1.000, recall 0.974), precision 0.969 / recall 0.954 on the other; the two
# outlets' WeWork pages are at 0.93, different stories on one topic at most 0.66.
DEFAULT_NEAR_DUPLICATE = 0.80
# Two items of one section of a real reading list against items of different sections: the cosine
# that best tells them apart (Youden's J, 0.26 on three lists and on the other three; bench_near_dup.py).
# Below it a read item is no more alike than one from an unrelated section usually is.
WEAK_EVIDENCE = 0.26


def closest(vectors: np.ndarray, rows: np.ndarray, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``: the row of ``among`` most similar to it, and their cosine.

    ``among`` must not be empty. Ties keep the earlier row of ``among``."""
    rows = np.asarray(rows, dtype=np.int64)
    among = np.asarray(among, dtype=np.int64)
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0)
    sims = vectors[rows] @ vectors[among].T
    best = np.argmax(sims, axis=1)
    return among[best], sims[np.arange(len(rows)), best].astype(np.float64)


def same_story(pages: np.ndarray, read: np.ndarray, cand: np.ndarray, threshold: float,
               with_page: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which candidates repeat a read row: (mask over ``cand``, closest read row, its cosine).

    ``pages``: one unit vector per row for its page alone (rq.rank.session.ReadSession.page_vectors).
    Only rows in ``with_page`` are compared: a vector made from a title alone cannot tell "Part 1"
    from "Part 2" or Fast from Faster R-CNN (the lists in bench_near_dup.py). Unweighted by
    recency: a story read a year ago is still the same story.
    """
    cand = np.asarray(cand, dtype=np.int64)
    paged = np.asarray(with_page, dtype=bool)
    read_rows = np.flatnonzero(read & paged)
    n = len(cand)
    if not len(read_rows) or not n:
        return np.zeros(n, dtype=bool), np.full(n, -1, np.int64), np.zeros(n)
    rows, sims = closest(pages, cand, read_rows)
    return (sims >= threshold) & paged[cand], rows, sims


def is_weak(similarity: float | None) -> bool:
    """True when the best link to the reading is too faint to explain a suggestion."""
    return similarity is None or similarity < WEAK_EVIDENCE
