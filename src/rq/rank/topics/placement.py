"""Which of the queue's own sections a new link belongs in, and the evidence.

Numpy in, ranked candidates out; nothing here embeds, reads the queue or prints. A section is
what the audit calls one (rq.rank.topics.sections: an item's deepest heading). A section is
scored by how close the new item is to what it already holds (the centroid of its items and
its nearest few items) and to its heading (the heading's vector, plus its words found in the
item's title and note, as the audit weighs them). The weights and the "strong" thresholds were
chosen with benchmarks/bench_placement.py on three of the six real lists and are reported on
the other three (benchmarks/RESULTS.md, "Where a new link goes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rq.rank.cosine import unit, unit_rows
from rq.rank.topics.headings import heading_text, lexical_match, word_weights
from rq.rank.topics.sections import LEXICAL_WEIGHT, WORDS_MOST, SectionView, with_subheadings

NEAREST = 3  # a section's nearest items that speak for it
NEAREST_SHARE = 0.5  # the nearest items' mean similarity against the centroid's (1 - this)
HEADING_WEIGHT = 0.0  # the cosine of item and heading, added (the words count through LEXICAL_WEIGHT)
# The best section is taken without asking when it beats the second by STRONG_MARGIN and its
# own score is at least STRONG_MIN.
STRONG_MARGIN = 0.35
STRONG_MIN = 0.3
SHOWN = 3


@dataclass
class Candidate:
    section: tuple[str, ...]
    score: float
    items: int  # how many items the section holds now
    nearest: list[tuple[int, float]]  # (row of an item in the section, its similarity), closest first
    words: str = ""  # the heading's words found in the new item's title and note

    def as_dict(self, titles: Sequence[str]) -> dict:
        return {"section": list(self.section), "score": round(self.score, 4), "items": self.items,
                "nearest": [{"title": titles[i], "similarity": round(s, 4)} for i, s in self.nearest],
                "heading_words": self.words}


class Placer:
    """The items already filed, ready to rank the sections for new ones.

    ``x``, ``paths``, ``texts``: the filed items' vectors, deepest sections, and titles with notes.
    ``heading_vectors``: a vector per heading (of heading_text). ``headings``: every heading of the
    queue; an empty leaf heading is a candidate on its heading alone."""

    def __init__(self, x: np.ndarray, paths: Sequence[tuple[str, ...]], texts: Sequence[str],
                 heading_vectors: dict[tuple, np.ndarray], headings: Sequence[tuple[str, ...]] = ()):
        dim = len(next(iter(heading_vectors.values()))) if heading_vectors else 0
        self.x = unit_rows(x) if len(x) else np.zeros((0, dim))
        self.paths = [tuple(p) for p in paths]
        self.texts = list(texts)
        self.view = SectionView(self.x, self.paths, [t.split("\n")[0] for t in texts], heading_vectors, texts)
        self.weight = word_weights(self.texts)
        self.heads = {p: unit(np.asarray(v, dtype=np.float64)) for p, v in heading_vectors.items()}
        containers = with_subheadings(list(headings) + self.view.keys)
        empty = [tuple(h) for h in headings if tuple(h) not in self.view.members and tuple(h) not in containers]
        self.sections = list(self.view.keys) + list(dict.fromkeys(empty))

    def rank(self, v: np.ndarray, text: str) -> list[Candidate]:
        """Every section that could take an item of vector ``v`` and title and note ``text``, best first."""
        v = unit(np.asarray(v, dtype=np.float64))
        sims = self.x @ v if len(self.x) else np.zeros(0)
        out = []
        for section in self.sections:
            members = self.view.members.get(section, np.zeros(0, dtype=np.int64))
            score, nearest = 0.0, []
            if len(members):
                order = members[np.argsort(-sims[members])][:NEAREST]
                nearest = [(int(i), float(sims[i])) for i in order]
                near = float(np.mean([s for _, s in nearest]))
                score = (1 - NEAREST_SHARE) * float(self.view.centroid[section] @ v) + NEAREST_SHARE * near
            words = ""
            if section and heading_text(section):
                head = self.heads.get(section)
                if head is not None:
                    score += HEADING_WEIGHT * float(head @ v)
                coverage, words = lexical_match(heading_text(section), text, self.weight)
                score += LEXICAL_WEIGHT * max(0.0, (coverage - WORDS_MOST) / (1.0 - WORDS_MOST))
            out.append(Candidate(section, score, len(members), nearest, words))
        out.sort(key=lambda c: -c.score)
        return out


def is_strong(candidates: Sequence[Candidate]) -> bool:
    """Whether the best section is clear enough to file the item there without asking."""
    if not candidates or candidates[0].items == 0:
        return False
    margin = candidates[0].score - (candidates[1].score if len(candidates) > 1 else 0.0)
    return candidates[0].score >= STRONG_MIN and margin >= STRONG_MARGIN
