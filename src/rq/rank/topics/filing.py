"""Where a new link goes, worked out from the queue's index: `rq add`'s section prediction.

The queue's items come from the index (one vector per resource: page text blended with title
and note, as the audit compares them); the new link is embedded the same way, from its page's
passages when the page could be fetched and from its title and note in any case. The ranking
itself is rq.rank.topics.placement's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rq.rank.session import ReadSession
from rq.settings import Settings


@dataclass
class Filing:
    candidates: list  # placement.Candidate, best first
    strong: bool  # the best is clear enough to file the link without asking
    titles: list[str]  # the titles of the queue's items, by the rows the candidates' evidence names
    notices: list[str] = field(default_factory=list)
    with_page: bool = False  # the page's text was part of the evidence


def new_item_vector(embedder, settings: Settings, title: str, note: str, text: str) -> tuple[np.ndarray, bool]:
    """The new link's vector as the index would make it: the unit mean of its title-and-note
    vector and its page's mean passage vector (rq.index.resources); and whether a page was used."""
    from rq.index.passages import page_passages

    profile = "\n".join(p for p in (title, note) if p) or title
    passages = page_passages(title, text, settings, embedder) if text.strip() else []
    vectors = np.asarray(embedder.encode([profile, *passages]), dtype=np.float64)
    parts = [vectors[0] / (np.linalg.norm(vectors[0]) or 1.0)]
    if passages:
        page = vectors[1:].mean(axis=0)
        parts.append(page / (np.linalg.norm(page) or 1.0))
    blended = np.mean(parts, axis=0)
    return blended / (np.linalg.norm(blended) or 1.0), bool(passages)


def file_link(settings: Settings, title: str, note: str, text: str, embedder=None, progress=None) -> Filing:
    """The queue's sections ranked for a new link of this title, note and page text."""
    from rq.rank.topics.placement import Placer, is_strong
    from rq.rank.topics.report import _heading_vectors

    notices: list[str] = []
    lib = ReadSession(settings, notices, embedder, progress)
    try:
        rows = [i for i, r in enumerate(lib.resources) if r is not None]
        resources = [lib.resources[i] for i in rows]
        placer = Placer(lib.vectors[rows], [r.section_path for r in resources],
                        ["\n".join(p for p in (r.title, r.note) if p) for r in resources],
                        _heading_vectors(lib), [s.path for s in lib.queue.sections])
        v, with_page = new_item_vector(lib.embedder, settings, title, note, text)
        candidates = placer.rank(v, "\n".join(p for p in (title, note) if p))
        return Filing(candidates, is_strong(candidates), [r.title for r in resources], notices, with_page)
    finally:
        lib.close()
