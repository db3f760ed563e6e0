"""A read session: what `rq next`, `rq related`, `rq clusters` and `rq map` work from.

The queue parsed now, its archive opened to read, and one vector per resource from the
index (built or updated first when stale). Nothing here writes without the writer lock.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rq.archive.db import open_archive_to_read
from rq.archive.lock import try_writer_lock
from rq.errors import ArchiveError
from rq.index.build import ensure_index
from rq.index.encoders.cache import lookup_vectors
from rq.index.encoders.factory import make_embedder
from rq.index.manifest import read_manifest
from rq.index.resources import load_resource_vectors
from rq.queue.model import Resource
from rq.rank.cosine import best_pair
from rq.rank.passages import display_passage
from rq.settings import Settings


@dataclass
class PassagePair:
    mine: str  # passage of the suggested (or related) resource
    theirs: str  # passage of the read resource (or the query text)
    similarity: float



class ReadSession:
    """The queue as parsed now, the archive, and one vector per resource from the index."""

    def __init__(self, settings: Settings, notices: list[str], embedder=None, progress=None):
        self.settings = settings
        self.notices = notices
        self._embedder = embedder
        # progress(done, total, what): the bar of an index build this session has to wait for.
        self.location, self.queue = ensure_index(settings, notices.append, progress, embedder=embedder)
        self.archive = open_archive_to_read(self.location.index_dir, self.location.queue_key)
        manifest = read_manifest(self.location.index_dir)
        self.model_id = manifest.model
        self.vectors_key = manifest.vectors or manifest.model  # cache key of the index's passage vectors
        ids, self.vectors = load_resource_vectors(self.location.index_dir, manifest.generation)
        self.row = {rid: i for i, rid in enumerate(ids)}
        self.ids = ids
        by_id = self.queue.by_id()
        self.resources: list[Resource | None] = [by_id.get(rid) for rid in ids]

    @property
    def embedder(self):
        """Loaded on first use: `rq next` and `rq related ID` never encode a text."""
        if self._embedder is None:
            self._embedder = make_embedder(self.settings, self.notices.append)
        return self._embedder

    def cached_vectors(self, hashes: list[str]) -> dict[str, bytes]:
        return lookup_vectors(self.archive, self.model_id, self.vectors_key, hashes)

    def remember_vectors(self, key: str, items: list[tuple[str, bytes]]) -> None:
        """Cache vectors this read command had to embed, if no other rq process is writing the
        index folder now (a read command never waits for the lock, and never writes without it)."""
        with try_writer_lock(self.location.index_dir) as free:
            if not free:
                return
            try:
                self.archive.cache_vectors(key, items)
            except (ArchiveError, sqlite3.Error):
                pass  # a cache: a full disk or a read-only archive costs the next command a re-embed

    def close(self) -> None:
        self.archive.close()

    def mask(self, keep: Callable[[Resource], bool]) -> np.ndarray:
        return np.array([r is not None and keep(r) for r in self.resources], dtype=bool)

    def with_page(self) -> np.ndarray:
        """Which rows have their page's text archived (their vector is more than a title and note)."""
        archived = self.archive.text_shas()
        return np.array([rid in archived for rid in self.ids], dtype=bool)

    def page_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's page alone, without its title and note, and which rows have one.

        A resource vector is the unit mean of its profile vector p and its unit page vector g
        (rq.index.resources), so g = 2 (v.p) v - p: the page comes back exactly from the stored
        vector v and p, which the vector cache holds. Two parts of a series share a title, not a
        page; "the same story" is a question about pages (benchmarks/bench_near_dup.py).
        """
        from rq.index.chunk import passage_hash
        from rq.index.passages import profile_text

        paged = self.with_page() & np.array([r is not None for r in self.resources], dtype=bool)
        rows = np.flatnonzero(paged)
        hashes = [passage_hash(profile_text(self.resources[i])) for i in rows]
        cache = self.cached_vectors(list(set(hashes)))
        known = np.array([h in cache for h in hashes], dtype=bool)
        paged[rows[~known]] = False  # no profile vector (not expected): the page cannot be told apart
        rows = rows[known]
        out = self.vectors.copy()
        if len(rows):
            p = np.array([np.frombuffer(cache[h], dtype=np.float32) for h, k in zip(hashes, known) if k])
            v = self.vectors[rows]
            dot = np.sum(v * p, axis=1, keepdims=True)
            g = 2.0 * dot * v - p
            out[rows] = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
            paged[rows[dot[:, 0] > 0.9999]] = False  # a document with no text passages: v is p
        return out, paged

    def passages(self, resource_id: str) -> tuple[list[str], np.ndarray]:
        rows = self.archive.passages_of(resource_id)
        cache = self.cached_vectors([r["hash"] for r in rows])
        rows = [r for r in rows if r["hash"] in cache]
        texts = [display_passage(r["text"], r["source"]) or r["text"].split("\n")[0] for r in rows]
        matrix = np.array([np.frombuffer(cache[r["hash"]], dtype=np.float32) for r in rows], dtype=np.float32)
        return texts, matrix.reshape(len(rows), -1)

    def pair(self, a: str, b: str) -> PassagePair | None:
        a_texts, a_vecs = self.passages(a)
        b_texts, b_vecs = self.passages(b)
        if not len(a_texts) or not len(b_texts):
            return None
        i, j, sim = best_pair(a_vecs, b_vecs)
        return PassagePair(a_texts[i], b_texts[j], round(sim, 4))

    def read_times(self) -> np.ndarray:
        """Last time each resource was marked read with `rq done` (NaN: read by hand, undated)."""
        last = self.archive.last_read_times()
        return np.array([last.get(rid, np.nan) for rid in self.ids], dtype=np.float64)
