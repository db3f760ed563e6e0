"""A queue's items grouped by section: centroids, leave-one-out fits and heading scores.

What a "section" is for the audit: an item belongs to its deepest heading (its full
section path). A heading whose items all sit in sub-headings is a container: it gets no
centroid and is never reported as empty or thin. A heading that holds items directly and
also has sub-headings is a section for its direct items only. Items above the first
heading form the section ``()``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rq.rank.cosine import unit
from rq.rank.topics.findings import ItemRef
from rq.rank.topics.headings import WordIndex, heading_text

# The fit of an item to a heading (SectionView.fit_scores): the centred cosine plus up to
# LEXICAL_WEIGHT for the heading's words found in the item's title and note, weighted by rarity,
# when they are more than WORDS_MOST of the heading. Chosen with the empty-section benchmark
# (benchmarks/bench_audit.py) on three lists, reported on three others; it is below
# audit.FIT_MIN, so the words alone never make a suggestion.
LEXICAL_WEIGHT = 0.15
WORDS_MOST = 0.5
MIN_HOMES_TO_CENTRE = 3  # with fewer headings an item's mean cosine to them says little


class SectionView:
    """The items grouped by section, with centroids, leave-one-out fits and heading fits."""

    def __init__(self, x: np.ndarray, paths: list[tuple[str, ...]], titles: Sequence[str],
                 heading_vectors: dict[tuple, np.ndarray], texts: Sequence[str] | None = None):
        self.x = x
        self.paths = paths
        self.titles = titles
        self.texts = list(texts) if texts is not None else list(titles)
        self.homes: list[tuple] = []  # the headings fit_scores compares; set before the first call
        self.heading_vectors = heading_vectors
        self._semantic: dict[tuple, np.ndarray] | None = None
        self._fits: dict[tuple, tuple[np.ndarray, list[str]] | None] = {}
        self._words: WordIndex | None = None
        groups: dict[tuple, list[int]] = {}
        for i, path in enumerate(paths):
            groups.setdefault(path, []).append(i)
        self.keys = list(groups)
        self.members = {s: np.asarray(ix, dtype=np.int64) for s, ix in groups.items()}
        sums = {s: x[ix].sum(axis=0) for s, ix in self.members.items()}
        self.centroid = {s: unit(v) for s, v in sums.items()}
        self.loo = _leave_one_out(x, self.members, sums)

    def size(self, s: tuple) -> int:
        return len(self.members.get(s, ()))

    def centroids(self, sections: list[tuple]) -> np.ndarray:
        """The sections' centroids, one row each."""
        return np.stack([self.centroid[s] for s in sections])

    def cohesion(self, s: tuple) -> float | None:
        vals = self.loo[self.members[s]]
        return float(np.mean(vals)) if len(vals) > 1 else None

    def ref(self, i: int, similarity: float) -> ItemRef:
        return ItemRef(int(i), self.titles[i], self.paths[i], float(similarity))

    def fit_scores(self, path: tuple) -> tuple[np.ndarray, list[str]] | None:
        """Per item, how well it fits the heading of ``path`` (one of ``homes``) and the heading
        words found in its title and note; None without a heading vector.

        Semantic: the cosine of item and heading, less the mean cosine of all items to this
        heading (a vague heading is close to everything), and less what this item's mean cosine
        to all the homes' headings exceeds the mean over all items by (a vague item is close to
        every heading). So it says "this item, more than others, fits this heading". The second
        term is never a bonus: an item far from every heading (a news story in an ML list) would
        otherwise fit whichever heading is least far.
        Lexical: the rarity-weighted share of the heading's words found in the item's text
        (headings.lexical_match), counted only past WORDS_MOST and up to LEXICAL_WEIGHT at all of
        them: "learning", the common half of "Reinforcement Learning", adds nothing; "recsys",
        all of "Recommender Systems", adds LEXICAL_WEIGHT.
        """
        if path not in self._fits:
            semantic = self._semantic_fits().get(path)
            if semantic is None:
                self._fits[path] = None
            else:
                if self._words is None:
                    self._words = WordIndex(self.texts)
                scores = semantic.copy()
                matched = [""] * len(scores)
                for i, (coverage, evidence) in self._words.matches(heading_text(path), WORDS_MOST).items():
                    scores[i] += LEXICAL_WEIGHT * max(0.0, (coverage - WORDS_MOST) / (1.0 - WORDS_MOST))
                    matched[i] = evidence
                self._fits[path] = (scores, matched)
        return self._fits[path]

    def _semantic_fits(self) -> dict[tuple, np.ndarray]:
        if self._semantic is None:
            self._semantic = {}
            if self.homes and len(self.x):
                heads = np.stack([unit(np.asarray(self.heading_vectors[p], dtype=np.float64)) for p in self.homes])
                cos = self.x @ heads.T
                centred = cos - cos.mean(axis=0, keepdims=True)
                if len(self.homes) >= MIN_HOMES_TO_CENTRE:  # only ever a penalty: see fit_scores
                    centred -= np.maximum(0.0, cos.mean(axis=1, keepdims=True) - cos.mean())
                self._semantic = {p: centred[:, j] for j, p in enumerate(self.homes)}
        return self._semantic


def _leave_one_out(x: np.ndarray, members: dict[tuple, np.ndarray], sums: dict[tuple, np.ndarray]) -> np.ndarray:
    """Per item: cosine to the centroid of its section's other items; NaN when it is alone."""
    loo = np.full(len(x), np.nan)
    for s, ix in members.items():
        if len(ix) < 2:
            continue
        rest = sums[s][None, :] - x[ix]
        loo[ix] = np.einsum("ij,ij->i", x[ix], rest) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
    return loo


def with_subheadings(every: list[tuple]) -> set[tuple]:
    """The headings in ``every`` that have another heading of ``every`` below them."""
    return {q[:depth] for q in every for depth in range(1, len(q))}
