"""`rq next` and `rq related`: the queue's read state is the feedback.

Read state comes from the Markdown file at the moment of the call, so a `rq done`
shows in the very next answer with no re-embedding: the resource vectors were
computed at index time and do not depend on what is read.

Each suggestion says what its evidence is worth (rq.rank.suggest.evidence): ``same_story_as``
names the read resource (next) or the reference (related) it nearly repeats, and ``evidence`` is
"weak" when the closest read resource is too little alike to explain a suggestion.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from rq.errors import NotFoundError, UsageError
from rq.queue.model import Queue, Resource
from rq.queue.resolve import check_section, resolve_resource
from rq.queue.urls import is_web_url
from rq.rank.session import PassagePair, ReadSession
from rq.rank.suggest.evidence import is_weak
from rq.settings import Settings
from rq.words import scrub


@dataclass
class Link:
    """A resource named in an explanation, with how close it is."""

    id: str
    short_id: str
    title: str
    similarity: float


@dataclass
class Suggestion:
    rank: int
    id: str
    short_id: str
    title: str
    section: str
    url: str
    state: str | None
    score: float  # next: the method's raw relevance (an SVM margin may be negative); related: cosine
    because: list[Link] = field(default_factory=list)
    pair: PassagePair | None = None
    # next: the percentage of unread candidates scoring as high or higher (1: the very top of 100)
    top_percent: int | None = None
    # next: the read resource this nearly repeats; related: the reference, when this nearly repeats it
    same_story_as: Link | None = None
    # next: "strong", or "weak" when no read resource is much like it; None for a fallback and related
    evidence: str | None = None

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["because"] = [b.__dict__ for b in self.because]
        data["pair"] = self.pair.__dict__ if self.pair else None
        data["same_story_as"] = self.same_story_as.__dict__ if self.same_story_as else None
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


def next_reads(settings: Settings, n: int = 5, section: str | None = None, embedder=None,
               progress=None) -> Answer:
    from rq.rank.suggest.recommend import rank_next, recency_weights

    if n < 1:
        raise UsageError("-n must be at least 1")
    notices: list[str] = []
    lib = ReadSession(settings, notices, embedder, progress)
    try:
        check_section(lib.queue, section)
        read = lib.mask(lambda r: r.state == "read")
        candidates = lib.mask(lambda r: r.state != "read" and (
            not section or section.lower() in r.section.lower()))
        if not candidates.any():
            where = f" in sections matching {section!r}" if section else ""
            raise NotFoundError(f"nothing unread{where}")
        weights = recency_weights(lib.read_times(), time.time(), settings.read_half_life_days)
        pages, with_page = lib.page_vectors()
        rec = rank_next(lib.vectors, read, candidates, read_weights=weights[read],
                        method=settings.recommend_method, mmr_lambda=settings.mmr_lambda, k=n,
                        near_duplicate=settings.near_duplicate_cosine, pages=pages, with_page=with_page)
        suggestions = []
        for rank, row in enumerate(rec.indices, start=1):
            s = _suggestion(lib, rank, int(row), rec.scores[rank - 1])
            if len(rec.top_percent):
                s.top_percent = int(rec.top_percent[rank - 1])
            if rec.because:
                s.because = [_link(lib, r, sim) for r, sim in rec.because[rank - 1]]
            if rec.same_story and rec.same_story[rank - 1]:
                s.same_story_as = _link(lib, *rec.same_story[rank - 1])
            if rec.fallback is None:
                s.evidence = "weak" if is_weak(max((b.similarity for b in s.because), default=None)) else "strong"
            if s.because:
                s.pair = lib.pair(s.id, s.because[0].id)
            suggestions.append(s)
        return Answer(suggestions, rec.method, rec.fallback, notices)
    finally:
        lib.close()


def _suggestion(lib: ReadSession, rank: int, row: int, score: float) -> Suggestion:
    r = lib.resources[row]
    return Suggestion(rank, r.id, r.short_id, r.title, r.section, r.url, r.state, round(float(score), 4))


def _link(lib: ReadSession, row: int, similarity: float) -> Link:
    r = lib.resources[row]
    return Link(r.id, r.short_id, r.title, round(float(similarity), 4))


_HEX = re.compile(r"[0-9a-f]{1,40}")


def related_to(settings: Settings, ref: str, n: int = 5, as_text: bool = False, embedder=None,
               progress=None) -> Answer:
    from rq.rank.suggest.recommend import related

    ref = scrub(ref)  # bytes that were not UTF-8 (a shell argument) become U+FFFD
    if not ref.strip():
        raise UsageError("give a resource id, a URL from the queue, or some text")
    if n < 1:
        raise UsageError("-n must be at least 1")
    notices: list[str] = []
    lib = ReadSession(settings, notices, embedder, progress)
    try:
        resource = None if as_text else _resource_or_none(lib.queue, ref)
        if resource is not None:
            exclude = lib.row[resource.id]
            query = lib.vectors[exclude]
        else:
            exclude = None
            query = lib.embedder.encode_query(ref.strip()).astype(np.float32)
        rows, scores = related(lib.vectors, query, exclude=exclude, k=n)
        pages, with_page = lib.page_vectors() if resource is not None else (None, None)
        suggestions = []
        for rank, (row, score) in enumerate(zip(rows, scores), start=1):
            s = _suggestion(lib, rank, int(row), score)
            s.pair = lib.pair(s.id, resource.id) if resource else _text_pair(lib, s.id, ref, query)
            if pages is not None and with_page[exclude] and with_page[row]:
                # A mark, not a re-ranking: asked what is near a resource, its near-copies are the answer.
                same = float(pages[row] @ pages[exclude])
                if same >= settings.near_duplicate_cosine:
                    s.same_story_as = _link(lib, exclude, same)
            suggestions.append(s)
        method = f"nearest to {resource.short_id}" if resource else "nearest to the text"
        return Answer(suggestions, method, None, notices)
    finally:
        lib.close()


def _resource_or_none(queue: Queue, ref: str) -> Resource | None:
    """A URL or anything that looks like an id names a resource, and must name exactly one (the
    error `rq show` gives otherwise); anything else is free text."""
    text = ref.strip()
    if not (is_web_url(text) or _looks_like_id(text)):
        return None
    try:
        return resolve_resource(queue, text)
    except (NotFoundError, UsageError) as exc:
        raise type(exc)(f"{exc}; to use it as text instead, pass --text") from None


def _looks_like_id(text: str) -> bool:
    """Hex digits only, and either a digit among them or six or more: "8", "5127f8a9" and
    "deadbeef" are ids; "cafe" and "bad" are words."""
    return bool(_HEX.fullmatch(text.lower())) and (any(c.isdigit() for c in text) or len(text) >= 6)


def _text_pair(lib: ReadSession, resource_id: str, text: str, query: np.ndarray) -> PassagePair | None:
    texts, vectors = lib.passages(resource_id)
    if not texts:
        return None
    sims = vectors @ query
    best = int(np.argmax(sims))
    return PassagePair(texts[best], text, round(float(sims[best]), 4))
