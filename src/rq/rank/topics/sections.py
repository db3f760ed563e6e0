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
from rq.rank.topics.headings import common_stems, heading_text, lexical_match

LEXICAL_WEIGHT = 0.2  # bonus for heading words (or their acronym) found in a title


class SectionView:
    """The items grouped by section, with centroids, leave-one-out fits and heading scores."""

    def __init__(self, x: np.ndarray, paths: list[tuple[str, ...]], titles: Sequence[str],
                 heading_vectors: dict[tuple, np.ndarray]):
        self.x = x
        self.paths = paths
        self.titles = titles
        self.heading_vectors = heading_vectors
        self._heading_cache: dict[tuple, tuple[np.ndarray, list[str]] | None] = {}
        self.common = common_stems(titles)
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

    def heading_scores(self, path: tuple) -> tuple[np.ndarray, list[str]] | None:
        """Per item: cosine to the heading's vector plus a bonus for heading words in the title."""
        if path not in self._heading_cache:
            vector = self.heading_vectors.get(path)
            if vector is None:
                self._heading_cache[path] = None
            else:
                scores = self.x @ unit(np.asarray(vector, dtype=np.float64))
                matched = []
                for i, title in enumerate(self.titles):
                    coverage, evidence = lexical_match(heading_text(path), title, self.common)
                    scores[i] += LEXICAL_WEIGHT * coverage
                    matched.append(evidence)
                self._heading_cache[path] = (scores, matched)
        return self._heading_cache[path]


def _leave_one_out(x: np.ndarray, members: dict[tuple, np.ndarray], sums: dict[tuple, np.ndarray]) -> np.ndarray:
    """Per item: cosine to the centroid of its section's other items; NaN when it is alone."""
    loo = np.full(len(x), np.nan)
    for s, ix in members.items():
        if len(ix) < 2:
            continue
        rest = sums[s][None, :] - x[ix]
        loo[ix] = np.einsum("ij,ij->i", x[ix], rest) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
    return loo


def has_subheadings(path: tuple, every: list[tuple]) -> bool:
    """Whether any heading in ``every`` sits below ``path``."""
    return any(len(q) > len(path) and q[:len(path)] == path for q in every)
