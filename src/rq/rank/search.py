"""`rq search`: hybrid dense + keyword retrieval over passages, rolled up to resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from rq.archive.db import open_archive_to_read
from rq.archive.views import describe
from rq.errors import UsageError
from rq.index.build import build_index, ensure_index
from rq.index.encoders.factory import make_embedder
from rq.index.load import load_index
from rq.rank.passages import display_passage, highlight_spans, query_terms
from rq.settings import Settings
from rq.words import scrub

MODES = ("hybrid", "dense", "keyword")


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
    score: float
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


def search(settings: Settings, query: str, k: int = 10, mode: str = "hybrid", filters: Filters | None = None,
           notice: Callable[[str], None] | None = None, progress=None, embedder=None) -> SearchResponse:
    if not query or not query.strip():
        raise UsageError("the query is empty: say what to search for, e.g. rq search \"real-time recsys\"")
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: use one of {', '.join(MODES)}")
    if k < 1:
        raise UsageError("-k must be at least 1")
    query = scrub(query)  # bytes that were not UTF-8 (a shell argument) reach the tokenizer as U+FFFD
    filters = filters or Filters()
    notices: list[str] = []

    def tell(message: str) -> None:
        notices.append(message)
        if notice:
            notice(message)

    location, queue = ensure_index(settings, tell, progress, embedder)
    # Chosen after the index exists: a build exports the model the fast embedder loads.
    embedder = embedder or make_embedder(settings, tell)
    archive = open_archive_to_read(location.index_dir, location.queue_key)
    try:
        loaded = _load_or_rebuild(location, archive, settings, embedder, tell, progress)
        ranked = _rank_resources(loaded, embedder, query, mode, settings)
        hits = _resource_hits(queue, archive, loaded, ranked, query, k, filters)
    finally:
        archive.close()
    unfetched = sum(1 for h in hits if not h.has_text)
    if unfetched:
        tell(f"{unfetched} of {len(hits)} results matched only on title, note and section "
             "(their pages were not fetched)")
    return SearchResponse(query, mode, hits, notices, loaded.manifest.vector_index, loaded.manifest.passages)


def _load_or_rebuild(location, archive, settings, embedder, tell, progress):
    """Derived files that are truncated or out of step with the archive are rebuilt, never served."""
    from rq.errors import ArchiveError

    try:
        return load_index(location, archive, settings, embedder)
    except ArchiveError as exc:
        tell(f"{exc}: rebuilding the index")
    build_index(settings, progress=progress, force=True, embedder=embedder)
    return load_index(location, archive, settings, embedder)


PASSAGE_DEPTH = 300  # passages per ranker on a large index: ~100 distinct resources after roll-up


def _rank_resources(loaded, embedder, query: str, mode: str, settings: Settings):
    """(resource rows, scores, best passage ids), best first.

    As measured in benchmarks/bench_retrieval.py: each ranker's passages are rolled up to
    resources (a resource scores its best passage), then the two resource lists are fused.
    """
    from rq.rank.fusion import aggregate, fuse

    total = loaded.manifest.passages
    # Exact scoring of every passage is cheap while the collection is small, and keeps
    # filtered searches from running dry; a large index returns a deep candidate list.
    depth = total if total <= 20_000 else PASSAGE_DEPTH
    dense = keyword = None
    if mode in ("hybrid", "dense"):
        qvec = embedder.encode_query(query).reshape(1, -1).astype(np.float32)
        D, I = loaded.vectors.search(qvec, depth)
        keep = I[0] >= 0
        dense = aggregate(I[0][keep], D[0][keep], loaded.owner)
    if mode in ("hybrid", "keyword"):
        ids, scores = loaded.keywords.search(query, depth)
        keyword = aggregate(ids, scores, loaded.owner)
    if mode != "hybrid":
        return dense if mode == "dense" else keyword
    rows, fused = fuse(dense[:2], keyword[:2], method=settings.fusion, alpha=settings.hybrid_alpha,
                       norm=settings.fusion_norm)
    return rows, fused, _display_passages(rows, dense, keyword)


def _display_passages(rows, dense, keyword) -> np.ndarray:
    """The passage shown for each resource: the keyword match when the query's words occur in
    it (its terms get highlighted), else the passage closest in meaning."""
    best_dense = dict(zip(dense[0].tolist(), dense[2].tolist()))
    best_keyword = dict(zip(keyword[0].tolist(), keyword[2].tolist()))
    return np.array([best_keyword.get(r, best_dense.get(r, -1)) for r in rows.tolist()], dtype=np.int64)


def _resource_hits(queue, archive, loaded, ranked, query: str, k: int, filters: Filters) -> list[Hit]:
    res_rows, res_scores, best = ranked
    resources = queue.by_id()
    terms = query_terms(query)
    hits: list[Hit] = []
    picked = []
    for idx, score, passage_id in zip(res_rows, res_scores, best):
        resource = resources.get(loaded.resource_ids[int(idx)])
        if resource is None:
            continue
        # Looked up per resource: a search touches k of them, not the whole archive.
        view = describe(resource, archive.last_fetch(resource.id), archive.document(resource.id))
        if filters.keep(view):
            picked.append((resource, view, float(score), int(passage_id)))
        if len(picked) == k:
            break
    rows = archive.passages_by_id([p for *_, p in picked])
    for resource, view, score, passage_id in picked:
        row = rows[passage_id]
        shown = display_passage(row["text"], row["source"])
        hits.append(Hit(len(hits) + 1, score, resource.id, resource.short_id, resource.title, resource.section,
                        resource.state, resource.url, view.fetch, view.reason, shown, row["source"],
                        view.has_text, highlight_spans(shown, terms)))
    return hits
