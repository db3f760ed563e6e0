"""`rq search`: hybrid dense + keyword retrieval over passages, rolled up to resources.

``search`` opens the index, ranks one query and closes it; ``search_with`` ranks one query on
a ``SearchEngine`` already open (rq.rank.engine), the same code. Each hit carries the estimate
a person is shown (rq.rank.calibration) beside the raw scores it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from rq.archive.views import describe
from rq.errors import UsageError
from rq.queue.resolve import check_section
from rq.rank.engine import MODES, SearchEngine
from rq.rank.snippets import hit_snippets
from rq.settings import Settings
from rq.words import scrub


@dataclass
class Filters:
    section: str | None = None
    read: bool | None = None  # True: read only; False: not read only
    kind: str | None = None  # "html" | "pdf"

    def keep(self, view) -> bool:
        if self.section and self.section.lower() not in view.section.lower():
            return False
        if self.read is not None and view.is_read != self.read:
            return False
        if self.kind and view.kind != self.kind:
            return False
        return True


@dataclass
class Hit:
    rank: int
    relevance: int  # estimated chance, 0-100, that the result is relevant (rq.rank.calibration)
    band: str  # strong | fair | weak
    id: str
    short_id: str
    title: str
    section: str
    state: str | None
    url: str
    fetch: str
    reason: str | None
    passage: str
    passage_source: str  # "text": from the page; "meta": from the queue's title/note/section
    has_text: bool  # whether the page's text is archived (else only title/note/section are indexed)
    fused: float  # the score the order comes from (relative to this query's other results)
    dense: float | None  # best passage cosine to the query (None: not scored, keyword mode)
    keyword: float | None  # best passage BM25 score (None: not scored, dense mode)
    keyword_share: float | None  # that score over the most this query could score, 0-1
    covered: float  # share of the query's words in the passage the ranker chose (rq.rank.calibration)
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["highlights"] = [list(span) for span in self.highlights]
        return data


@dataclass
class SearchResponse:
    query: str
    mode: str
    hits: list[Hit]
    notices: list[str]
    index_kind: str
    passages: int

    @property
    def strong(self) -> bool:
        """Whether any result is a strong match (else the closest ones are shown as such)."""
        return any(h.band == "strong" for h in self.hits)

    def as_dict(self) -> dict:
        """The answer as `rq search --json` prints it and `rq serve`'s /api/search returns it."""
        return {"query": self.query, "mode": self.mode, "notices": self.notices, "strong": self.strong,
                "results": [h.as_dict() for h in self.hits]}


def search(settings: Settings, query: str, k: int = 10, mode: str = "hybrid", filters: Filters | None = None,
           notice: Callable[[str], None] | None = None, progress=None, embedder=None) -> SearchResponse:
    """`rq search`: open the index (building or updating it first when stale), rank, close."""
    query, filters = _checked(query, k, mode, filters)
    with SearchEngine(settings, notice, progress, embedder) as engine:
        return search_with(engine, query, k, mode, filters, notice)


def search_with(engine: SearchEngine, query: str, k: int = 10, mode: str = "hybrid",
                filters: Filters | None = None, notice: Callable[[str], None] | None = None) -> SearchResponse:
    """One query against an engine already open: what `rq search` runs once, and a warm process
    (or a benchmark) runs many times."""
    query, filters = _checked(query, k, mode, filters)
    check_section(engine.queue, filters.section)
    notices = list(engine.notices)
    ranked = engine.rank(query, mode)
    hits = _resource_hits(engine, ranked, query, k, filters)
    unfetched = sum(1 for h in hits if not h.has_text)
    if unfetched:
        message = (f"{unfetched} of {len(hits)} results matched only on title, note and section "
                   "(their pages were not fetched)")
        notices.append(message)
        if notice:
            notice(message)
    loaded = engine.loaded
    return SearchResponse(query, mode, hits, notices, loaded.manifest.vector_index, loaded.manifest.passages)


def _checked(query: str, k: int, mode: str, filters: Filters | None) -> tuple[str, Filters]:
    if not query or not query.strip():
        raise UsageError("the query is empty: say what to search for, e.g. rq search \"real-time recsys\"")
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: use one of {', '.join(MODES)}")
    if k < 1:
        raise UsageError("-n must be at least 1")
    # Bytes that were not UTF-8 (a shell argument) reach the tokenizer as U+FFFD.
    return scrub(query), filters or Filters()


def _resource_hits(engine: SearchEngine, ranked, query: str, k: int, filters: Filters) -> list[Hit]:
    from rq.rank.calibration import band, coverage, relevance

    archive, loaded = engine.archive, engine.loaded
    resources = engine.queue.by_id()
    picked = []
    for i, idx in enumerate(ranked.rows):
        resource = resources.get(loaded.resource_ids[int(idx)])
        if resource is None:
            continue
        # Looked up per resource: a search touches k of them, not the whole archive.
        view = describe(resource, archive.last_fetch(resource.id), archive.document(resource.id))
        if filters.keep(view):
            picked.append((resource, view, i))
        if len(picked) == k:
            break
    at = [i for *_, i in picked]
    covered = coverage(loaded.keywords, query, ranked.passages[at]).tolist()
    estimates = relevance(ranked.mode, ranked.dense[at], covered)
    # What each hit shows is the snippet picker's choice (rq.rank.snippets), from the passage ranked best.
    snippets = hit_snippets(archive, loaded, query,
                            [(int(ranked.rows[i]), int(ranked.passages[i]), view.has_text) for _, view, i in picked])
    hits: list[Hit] = []
    for (resource, view, i), estimate, cover, (snippet, source) in zip(picked, estimates.tolist(), covered,
                                                                     snippets):
        hits.append(Hit(len(hits) + 1, estimate, band(estimate), resource.id, resource.short_id, resource.title,
                        resource.section, resource.state, resource.url, view.fetch, view.reason, snippet.text,
                        source, view.has_text, round(float(ranked.fused[i]), 4), _number(ranked.dense[i]),
                        _number(ranked.keyword[i]), _number(ranked.keyword_share[i]), round(cover, 4),
                        snippet.highlights))
    return hits


def _number(value: float) -> float | None:
    """A raw score for --json: rounded, None where that ranker did not score the result."""
    return None if value != value else round(float(value), 4)
