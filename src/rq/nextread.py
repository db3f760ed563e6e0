"""`rq next` and `rq related`: the queue's read state is the feedback.

Read state comes from the Markdown file at the moment of the call, so a `rq done`
shows in the very next answer with no re-embedding: the resource vectors were
computed at index time and do not depend on what is read.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rq.errors import NotFoundError, UsageError
from rq.index import load_resource_vectors, make_embedder, read_manifest
from rq.ingest import open_for
from rq.queue import Queue, Resource
from rq.resolve import resolve_resource
from rq.search import display_passage, ensure_index
from rq.settings import Settings
from rq.urls import is_web_url


@dataclass
class Link:
    """A resource named in an explanation, with how close it is."""

    id: str
    title: str
    similarity: float


@dataclass
class PassagePair:
    mine: str  # passage of the suggested (or related) resource
    theirs: str  # passage of the read resource (or the query text)
    similarity: float


@dataclass
class Suggestion:
    rank: int
    id: str
    title: str
    section: str
    url: str
    state: str | None
    score: float
    because: list[Link] = field(default_factory=list)
    pair: PassagePair | None = None

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["because"] = [b.__dict__ for b in self.because]
        data["pair"] = self.pair.__dict__ if self.pair else None
        return data


@dataclass
class Answer:
    suggestions: list[Suggestion]
    method: str
    fallback: str | None
    notices: list[str]

    def as_dict(self) -> dict:
        return {"method": self.method, "fallback": self.fallback, "notices": self.notices,
                "suggestions": [s.as_dict() for s in self.suggestions]}


class _Library:
    """The queue as parsed now, the archive, and one vector per resource from the index."""

    def __init__(self, settings: Settings, notices: list[str], embedder=None):
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)
        ensure_index(settings, notices.append, embedder=self.embedder)
        self.location, self.queue, self.archive = open_for(settings, create=False)
        manifest = read_manifest(self.location.index_dir)
        self.model_id = manifest.model
        ids, self.vectors = load_resource_vectors(self.location.index_dir, manifest.generation)
        self.row = {rid: i for i, rid in enumerate(ids)}
        self.ids = ids
        by_id = self.queue.by_id()
        self.resources: list[Resource | None] = [by_id.get(rid) for rid in ids]

    def close(self) -> None:
        self.archive.close()

    def mask(self, keep: Callable[[Resource], bool]) -> np.ndarray:
        return np.array([r is not None and keep(r) for r in self.resources], dtype=bool)

    def passages(self, resource_id: str) -> tuple[list[str], np.ndarray]:
        rows = list(self.archive.conn.execute(
            "SELECT text, source, hash FROM passages WHERE resource_id = ? ORDER BY ord", (resource_id,)))
        cache = self.archive.cached_vectors(self.model_id, [r["hash"] for r in rows])
        rows = [r for r in rows if r["hash"] in cache]
        texts = [display_passage(r["text"], r["source"]) or r["text"].split("\n")[0] for r in rows]
        matrix = np.array([np.frombuffer(cache[r["hash"]], dtype=np.float32) for r in rows], dtype=np.float32)
        return texts, matrix.reshape(len(rows), -1)

    def pair(self, a: str, b: str) -> PassagePair | None:
        from rq.recommend import best_pair

        a_texts, a_vecs = self.passages(a)
        b_texts, b_vecs = self.passages(b)
        if not len(a_texts) or not len(b_texts):
            return None
        i, j, sim = best_pair(a_vecs, b_vecs)
        return PassagePair(a_texts[i], b_texts[j], round(sim, 4))

    def read_times(self) -> np.ndarray:
        """Last time each resource was marked read with `rq done` (NaN: read by hand, undated)."""
        last = dict(self.archive.conn.execute(
            "SELECT resource_id, MAX(at) FROM read_events WHERE state = 'read' GROUP BY resource_id"))
        return np.array([last.get(rid, np.nan) for rid in self.ids], dtype=np.float64)

    def suggestion(self, rank: int, row: int, score: float) -> Suggestion:
        r = self.resources[row]
        return Suggestion(rank, r.id, r.title, r.section, r.url, r.state, round(float(score), 4))


def next_reads(settings: Settings, n: int = 5, section: str | None = None, embedder=None) -> Answer:
    from rq.recommend import rank_next, recency_weights

    if n < 1:
        raise UsageError("-n must be at least 1")
    notices: list[str] = []
    lib = _Library(settings, notices, embedder)
    try:
        read = lib.mask(lambda r: r.state == "read")
        candidates = lib.mask(lambda r: r.state != "read" and (
            not section or section.lower() in r.section.lower()))
        if not candidates.any():
            where = f" in sections matching {section!r}" if section else ""
            raise NotFoundError(f"nothing unread{where}")
        weights = recency_weights(lib.read_times(), time.time(), settings.read_half_life_days)
        rec = rank_next(lib.vectors, read, candidates, read_weights=weights[read],
                        method=settings.recommend_method, mmr_lambda=settings.mmr_lambda, k=n)
        suggestions = []
        for rank, (row, score, because) in enumerate(zip(rec.indices, rec.scores, rec.because or
                                                          [[]] * len(rec.indices)), start=1):
            s = lib.suggestion(rank, int(row), score)
            s.because = [Link(lib.ids[r], lib.resources[r].title, round(float(sim), 4)) for r, sim in because]
            if s.because:
                s.pair = lib.pair(s.id, s.because[0].id)
            suggestions.append(s)
        return Answer(suggestions, rec.method, rec.fallback, notices)
    finally:
        lib.close()


_ID_LIKE = re.compile(r"^(?=.*\d)[0-9a-f]{6,8}$")


def related_to(settings: Settings, ref: str, n: int = 5, as_text: bool = False, embedder=None) -> Answer:
    from rq.recommend import related

    if not ref.strip():
        raise UsageError("give a resource id, a URL from the queue, or some text")
    if n < 1:
        raise UsageError("-n must be at least 1")
    notices: list[str] = []
    lib = _Library(settings, notices, embedder)
    try:
        resource = None if as_text else _resource_or_none(lib.queue, ref)
        if resource is not None:
            exclude = lib.row[resource.id]
            query = lib.vectors[exclude]
        else:
            exclude = None
            query = lib.embedder.encode_query(ref.strip()).astype(np.float32)
        rows, scores = related(lib.vectors, query, exclude=exclude, k=n)
        suggestions = []
        for rank, (row, score) in enumerate(zip(rows, scores), start=1):
            s = lib.suggestion(rank, int(row), score)
            s.pair = lib.pair(s.id, resource.id) if resource else _text_pair(lib, s.id, ref, query)
            suggestions.append(s)
        method = f"nearest to {resource.id}" if resource else "nearest to the text"
        return Answer(suggestions, method, None, notices)
    finally:
        lib.close()


def _resource_or_none(queue: Queue, ref: str) -> Resource | None:
    """An id, prefix or queue URL names a resource; anything else is free text."""
    text = ref.strip()
    if is_web_url(text):
        return resolve_resource(queue, text)  # raises a clear NotFoundError when it is not in the queue
    prefix = text.lower()
    if len(prefix) >= 3 and any(r.id.startswith(prefix) for r in queue.resources):
        return resolve_resource(queue, prefix)  # one match, or a clear "ambiguous" error
    if _ID_LIKE.match(prefix):
        raise NotFoundError(f"no resource with id {text!r} (see `rq ls`; use --text to search for it as text)")
    return None


def _text_pair(lib: _Library, resource_id: str, text: str, query: np.ndarray) -> PassagePair | None:
    texts, vectors = lib.passages(resource_id)
    if not texts:
        return None
    sims = vectors @ query
    best = int(np.argmax(sims))
    return PassagePair(texts[best], text, round(float(sims[best]), 4))
