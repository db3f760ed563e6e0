"""A search engine held open: the loaded index, its archive and the query encoder.

`rq search` opens one, ranks one query and closes it; a benchmark (or a long-running
process) opens one and ranks many queries with the very same code. ``rank`` scores
resources for a query and keeps each ranker's raw score beside the fused one, so what a
person is shown can say where a score came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rq.archive.db import open_archive_to_read
from rq.index.build import build_index, ensure_index
from rq.index.encoders.factory import make_embedder
from rq.index.load import load_index
from rq.settings import Settings

MODES = ("hybrid", "dense", "keyword")
# On an index of more passages than this, each ranker returns its best PASSAGE_DEPTH passages
# instead of scoring every one (exact scoring of 20,000 passages costs a few milliseconds).
FULL_SCORING_UP_TO = 20_000
PASSAGE_DEPTH = 300


@dataclass
class Ranked:
    """Resources for one query, best first: rows in the index's resource list and their scores.

    ``dense`` is the resource's best passage cosine (NaN where the dense side did not score
    it), ``keyword`` its best passage BM25 score (0 where no query word occurs), and
    ``keyword_share`` that score over the most the query could score (``KeywordIndex.
    query_weight``), in [0, 1]; ``fused`` is the score the order comes from (in dense or
    keyword mode, that ranker's own score)."""

    mode: str
    rows: np.ndarray
    fused: np.ndarray
    dense: np.ndarray
    keyword: np.ndarray
    keyword_share: np.ndarray
    passages: np.ndarray  # the passage to show for each resource
    evidence: np.ndarray  # the passage feedback reads for each resource: the dense side's best

    def __len__(self) -> int:
        return len(self.rows)


class SearchEngine:
    """The index of one queue, loaded and ready: ``rank(query)`` as many times as wanted."""

    def __init__(self, settings: Settings, notice: Callable[[str], None] | None = None, progress=None,
                 embedder=None):
        self.settings = settings
        self.notices: list[str] = []

        def tell(message: str) -> None:
            self.notices.append(message)
            if notice:
                notice(message)

        self.location, self.queue = ensure_index(settings, tell, progress, embedder)
        # Chosen after the index exists: a build exports the model the fast embedder loads.
        self.embedder = embedder or make_embedder(settings, tell)
        self.archive = open_archive_to_read(self.location.index_dir, self.location.queue_key)
        try:
            self.loaded = _load_or_rebuild(self.location, self.archive, settings, self.embedder, tell, progress)
        except BaseException:
            self.archive.close()
            raise
        self.resource_ids = self.loaded.resource_ids
        self._resource_vectors = None
        owner = np.asarray(self.loaded.owner, dtype=np.int64)
        total = self.loaded.manifest.passages
        # Every passage is scored while the index is small: the dense side as one matrix product
        # over the exact index, rolled up run by run (passages are stored resource by resource).
        self._matrix = self.loaded.vectors.matrix() if total <= FULL_SCORING_UP_TO else None
        self._runs = None
        if self._matrix is not None and len(owner) and bool(np.all(owner[1:] >= owner[:-1])):
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            self._runs = (starts, owner[starts])
        self._depth = total if total <= FULL_SCORING_UP_TO else PASSAGE_DEPTH
        # With dense windows, a passage's cosine is its best window's (windows run passage by passage).
        self._windows = None
        if self.loaded.windows is not None and self._matrix is not None:
            window_owner, window_vectors = self.loaded.windows
            self._windows = (window_vectors, np.flatnonzero(np.r_[True, window_owner[1:] != window_owner[:-1]]))

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> "SearchEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rank(self, query: str, mode: str = "hybrid") -> Ranked:
        """Every resource either ranker found for ``query``, best first."""
        settings = self.settings
        qvec = dense = keyword = None
        if mode != "keyword":
            qvec = self.embedder.encode_query(query).reshape(-1).astype(np.float32)
            dense = self._dense(qvec)
        terms: str | dict = query
        if mode != "dense":
            keyword = self._keyword(query)
        ranked = self._combine(mode, dense, keyword, terms, qvec)
        rm3 = settings.rm3_weight > 0 and mode != "dense"
        rocchio = settings.rocchio_weight > 0 and mode != "keyword"
        if (rm3 or rocchio) and len(ranked):
            from rq.rank.feedback import rm3_terms
            from rq.rank.feedback import rocchio as moved

            top = ranked.evidence[:settings.prf_docs]
            top_scores = ranked.fused[:settings.prf_docs]
            top, top_scores = top[top >= 0], top_scores[top >= 0]
            if rm3:
                texts = self.archive.passages_by_id(top.tolist())
                keywords = self.loaded.keywords
                terms = rm3_terms(keywords.tokenizer(query), [texts[int(p)]["text"] for p in top],
                                  top_scores - top_scores.min() + 1e-6, keywords.tokenizer,
                                  keywords.document_frequency, len(keywords), settings.prf_terms,
                                  settings.rm3_weight)
                keyword = self._keyword(terms)
            if rocchio:
                qvec = moved(qvec, self.loaded.vectors.vectors_of(top), settings.rocchio_weight)
                dense = self._dense(qvec)
            ranked = self._combine(mode, dense, keyword, terms, qvec)
        return ranked

    def _dense(self, qvec: np.ndarray):
        """(passage ids, cosines); ids None: every passage, in order."""
        if self._windows is not None:
            vectors, starts = self._windows
            return None, np.maximum.reduceat(vectors @ qvec, starts)
        if self._matrix is not None:
            return None, self._matrix @ qvec
        D, I = self.loaded.vectors.search(qvec.reshape(1, -1), self._depth)
        keep = I[0] >= 0
        return I[0][keep], D[0][keep]

    def _keyword(self, terms: str | dict):
        """(passage ids, BM25 scores) for a query or weighted terms; ids None: every passage."""
        keywords = self.loaded.keywords
        if self._matrix is not None:
            return None, (keywords.score_all(terms) if isinstance(terms, str) else keywords.score_weighted(terms))
        if isinstance(terms, str):
            return keywords.search(terms, self._depth)
        return keywords.search_weighted(terms, self._depth)

    def _rollup(self, side, positive_only: bool = False):
        """A ranker's passages rolled up to resources: a resource scores its best passage."""
        from rq.rank.fusion import aggregate, aggregate_all

        ids, scores = side
        if ids is None and self._runs is not None:
            return aggregate_all(scores, *self._runs, positive_only=positive_only)
        if ids is None:
            ids = np.arange(len(scores))
        if positive_only:
            ids, scores = ids[scores > 0], scores[scores > 0]
        return aggregate(ids, scores, self.loaded.owner)

    def _combine(self, mode: str, dense, keyword, terms, qvec) -> Ranked:
        """Passages of each ranker rolled up to resources, then fused; or, with fusion_level
        "passage", fused first and then rolled up."""
        from rq.rank.fusion import aggregate, fuse

        settings = self.settings
        bound = self.loaded.keywords.query_weight(terms) if keyword is not None else 0.0
        dense_r = self._rollup(dense) if dense is not None else None
        if dense_r is not None and settings.doc_weight > 0:
            dense_r = self._with_documents(dense_r, qvec)
        keyword_r = self._rollup(keyword, positive_only=True) if keyword is not None else None
        if mode == "dense":
            return _single(mode, dense_r, None, bound)
        if mode == "keyword":
            return _single(mode, None, keyword_r, bound)
        depth = settings.fusion_depth or None
        options = dict(method=settings.fusion, alpha=settings.hybrid_alpha, norm=settings.fusion_norm,
                       maxes=(1.0, bound))
        if settings.fusion_level == "passage":
            sides = [_passage_ranking(side, positive_only=side is keyword)[:2] for side in (dense, keyword)]
            ids, scores = fuse(*[(i[:depth], v[:depth]) for i, v in sides], **options)
            rows, fused, _ = aggregate(ids, scores, self.loaded.owner)
        else:
            rows, fused = fuse((dense_r[0][:depth], dense_r[1][:depth]),
                               (keyword_r[0][:depth], keyword_r[1][:depth]), **options)
        keyword_scores = _values(rows, keyword_r, 0.0)
        return Ranked(mode, rows, np.asarray(fused, dtype=np.float64), _values(rows, dense_r, np.nan),
                      keyword_scores, _share(keyword_scores, bound), _display_passages(rows, dense_r, keyword_r),
                      _passages_of(rows, dense_r, keyword_r))

    def _with_documents(self, dense_r, qvec: np.ndarray):
        """Each resource's best passage cosine blended with its whole-resource vector's cosine
        (the page's mean passage and its title and note: rq.index.resources), weight doc_weight."""
        if self._resource_vectors is None:
            from rq.index.resources import load_resource_vectors

            _, self._resource_vectors = load_resource_vectors(self.location.index_dir,
                                                              self.loaded.manifest.generation)
        rows, scores, passages = dense_r
        w = self.settings.doc_weight
        blended = (1.0 - w) * np.asarray(scores, np.float64) + w * (self._resource_vectors[rows] @ qvec)
        order = np.argsort(-blended, kind="stable")
        return rows[order], blended[order], passages[order]


def _passage_ranking(side, positive_only: bool):
    """A ranker's passages best first: (ids, scores)."""
    ids, scores = side
    if ids is None:
        ids = np.arange(len(scores))
    if positive_only:
        ids, scores = ids[scores > 0], scores[scores > 0]
    order = np.argsort(-scores, kind="stable")
    return ids[order], scores[order]


def _single(mode: str, dense_r, keyword_r, bound: float) -> Ranked:
    """One ranker's resources as a Ranked; the other ranker's column is NaN (not computed)."""
    rows, scores, passages = dense_r if dense_r is not None else keyword_r
    scores = np.asarray(scores, dtype=np.float64)
    unknown = np.full(len(rows), np.nan)
    if dense_r is not None:
        return Ranked(mode, rows, scores, scores, unknown, unknown, passages, passages)
    return Ranked(mode, rows, scores, unknown, scores, _share(scores, bound), passages, passages)


def _share(keyword_scores: np.ndarray, bound: float) -> np.ndarray:
    return np.clip(keyword_scores / bound, 0.0, 1.0) if bound > 0 else np.zeros(len(keyword_scores))


def _passages_of(rows: np.ndarray, first, second) -> np.ndarray:
    """Each row's best passage in ``first`` (rows, scores, passages), else in ``second``."""
    size = int(max([rows.max(initial=-1)] + [r[0].max(initial=-1) for r in (first, second)])) + 1
    table = np.full(size, -1, dtype=np.int64)
    table[second[0]] = second[2]
    table[first[0]] = first[2]
    return table[rows]


def _values(rows: np.ndarray, ranking, missing: float) -> np.ndarray:
    """Each row's score in ``ranking`` (rows, scores, passages), ``missing`` where it is absent."""
    size = int(max(rows.max(initial=-1), ranking[0].max(initial=-1))) + 1
    table = np.full(size, missing, dtype=np.float64)
    table[ranking[0]] = ranking[1]
    return table[rows]


def _display_passages(rows, dense_r, keyword_r) -> np.ndarray:
    """The passage shown for each resource: the keyword match when the query's words occur in
    it (its terms get highlighted), else the passage closest in meaning."""
    return _passages_of(rows, keyword_r, dense_r)


def _load_or_rebuild(location, archive, settings, embedder, tell, progress):
    """Derived files that are truncated or out of step with the archive are rebuilt, never served."""
    from rq.errors import ArchiveError

    try:
        return load_index(location, archive, settings, embedder)
    except ArchiveError as exc:
        tell(f"{exc}: rebuilding the index")
    build_index(settings, progress=progress, force=True, embedder=embedder)
    return load_index(location, archive, settings, embedder)
