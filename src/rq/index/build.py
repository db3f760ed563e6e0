"""Build the search index: passages -> cached embeddings -> FAISS + BM25 + resource vectors.

Only passages whose vectors are not cached are embedded; the files are derived data,
replaced atomically under the index folder's writer lock, manifest last
(rq.index.manifest).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rq.archive.db import Archive
from rq.archive.lock import writer_lock
from rq.archive.session import open_for, open_to_read, sync_queue
from rq.index.chunk import passage_hash
from rq.index.encoders.cache import lookup_vectors, vectors_key, wants_exact
from rq.index.manifest import (
    FORMAT,
    KEYWORDS,
    RESOURCE_VECTORS,
    VECTORS,
    Manifest,
    read_manifest,
    write_manifest,
)
from rq.index.passages import passage_rows, profile_text
from rq.index.resources import save_resource_vectors
from rq.paths import Location, locate
from rq.queue.model import Queue
from rq.settings import Settings

Progress = Callable[[int, int, str], None]
Notice = Callable[[str], None]


@dataclass
class IndexReport:
    index: str
    built: bool
    reason: str
    passages: int
    resources: int
    embedded: int  # passages embedded in this run
    cached: int  # passages whose vectors came from the cache
    vector_index: str
    seconds: float


def content_key(queue: Queue, archive: Archive, settings: Settings, model_id: str) -> str:
    """A digest of everything the index is built from, read state excluded (marking an item read
    must not force a re-index)."""
    digest = hashlib.sha256(f"{FORMAT}|{model_id}|{settings.chunk_words}|{settings.chunk_overlap_words}".encode())
    text_shas = archive.text_shas()
    for r in queue.resources:
        digest.update(f"\0{r.id}\0{r.title}\0{r.note}\0{r.section}\0{text_shas.get(r.id, '')}".encode(
            "utf-8", "surrogatepass"))
    return digest.hexdigest()


def model_id(settings: Settings, embedder=None) -> str:
    if embedder is not None:
        return embedder.model_id
    from rq.index.encoders.model import model_id_for

    return model_id_for(settings.model)


def staleness(location: Location, queue: Queue, archive: Archive, settings: Settings, model: str) -> str | None:
    """Why the index must be (re)built, or None when it is current (``model``: the model id)."""
    manifest = read_manifest(location.index_dir)
    if manifest is None:
        return "no index yet"
    if manifest.format != FORMAT:
        return "index format changed"
    if manifest.settings_differ(model, settings):
        return None  # not stale but incompatible: load_index refuses with a message
    if manifest.vectors.endswith("+int8") and wants_exact(settings):
        return "exact passage vectors asked for (the index holds int8 ones)"
    if str(manifest.generation) != (archive.meta("generation") or ""):
        return "index files do not match the archive"
    if not all((location.index_dir / name).exists() for name in (VECTORS, KEYWORDS, RESOURCE_VECTORS)):
        return "index files missing"
    if manifest.content_key != content_key(queue, archive, settings, model):
        return "queue or archived text changed since the index was built"
    return None


def build_index(settings: Settings, progress: Progress | None = None, force: bool = False,
                embedder=None, notice: Notice | None = None) -> IndexReport:
    """Bring the index up to date with the queue and archive; embeds only passages whose
    vectors are not cached. On the onnx backend the model is exported first when this machine
    has no usable export (so later searches start without torch); ``embedder`` given: used as is."""
    from rq.index.encoders.factory import embedder_for_build
    from rq.index.encoders.store import remove_legacy_export

    location = locate(settings)
    started = time.monotonic()
    with writer_lock(location.index_dir):
        _, queue, archive = open_for(settings)  # a bad queue fails here, before any export
        try:
            embedder = embedder_for_build(settings, embedder, notice)
            remove_legacy_export(location.index_dir, notice)
            sync_queue(archive, queue)
            reason = "rebuild asked for" if force else staleness(location, queue, archive, settings,
                                                                 embedder.model_id)
            manifest = read_manifest(location.index_dir)
            if reason is None and manifest is not None and not manifest.settings_differ(embedder.model_id, settings):
                return IndexReport(str(location.index_dir), False, "up to date", manifest.passages,
                                   manifest.resources, 0, manifest.passages, manifest.vector_index,
                                   time.monotonic() - started)
            report = _build(location, queue, archive, settings, embedder, progress, reason or "settings changed")
        finally:
            archive.close()
    report.seconds = time.monotonic() - started
    return report


def _embed_rows(rows: list[tuple], archive: Archive, embedder, settings: Settings,
                progress: Progress | None) -> tuple[np.ndarray, int]:
    hashes = [row[4] for row in rows]
    key = vectors_key(embedder)
    cached = lookup_vectors(archive, embedder.model_id, key, hashes)
    missing = {row[4]: row[3] for row in rows if row[4] not in cached}
    if missing:
        texts = list(missing.values())
        on_batch = (lambda done, total: progress(done, total, "embedding")) if progress else None
        vectors = embedder.encode(texts, batch_size=settings.embed_batch_size, progress=on_batch)
        fresh = [(h, v.astype(np.float32).tobytes()) for h, v in zip(missing, vectors)]
        archive.cache_vectors(key, fresh)
        cached.update(fresh)
    dim = embedder.dim
    matrix = np.zeros((len(rows), dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        matrix[i] = np.frombuffer(cached[h], dtype=np.float32)
    return matrix, len(missing)


def _build(location: Location, queue: Queue, archive: Archive, settings: Settings, embedder,
           progress: Progress | None, reason: str) -> IndexReport:
    rows = passage_rows(queue, archive, settings, embedder)
    profile_rows = [(r.id, 0, "profile", profile_text(r), passage_hash(profile_text(r))) for r in queue.resources]
    both, embedded = _embed_rows(rows + profile_rows, archive, embedder, settings, progress)
    matrix = both[:len(rows)]
    profiles = {row[0]: vector for row, vector in zip(profile_rows, both[len(rows):])}
    key = content_key(queue, archive, settings, embedder.model_id)
    generation = archive.replace_passages(rows)
    kind = _write_files(location, rows, matrix, profiles, generation, settings, embedder.model_id)
    write_manifest(location.index_dir, Manifest(
        FORMAT, embedder.model_id, int(matrix.shape[1]), settings.chunk_words, settings.chunk_overlap_words,
        key, generation, len(rows), len(queue.resources), kind, time.time(), vectors_key(embedder),
        getattr(embedder, "export_key", "")))
    return IndexReport(str(location.index_dir), True, reason, len(rows), len(queue.resources),
                       embedded, len(rows) + len(profile_rows) - embedded, kind, 0.0)


def _write_files(location: Location, rows: list[tuple], matrix: np.ndarray, profiles: dict, generation: int,
                 settings: Settings, model: str) -> str:
    """The vector, keyword and resource-vector files of one generation; returns the vector index kind."""
    from rq.index.keyword import KeywordIndex
    from rq.index.vectors import VectorIndex

    ids = np.arange(len(rows), dtype=np.int64)
    vectors = VectorIndex.build(matrix, ids, kind=settings.vector_index, hnsw_above=settings.hnsw_above,
                                meta={"generation": generation, "model": model}, threads=settings.threads)
    vectors.save(location.index_dir / VECTORS)
    KeywordIndex.build([row[3] for row in rows], ids).save(location.index_dir / KEYWORDS)
    save_resource_vectors(location.index_dir, rows, matrix, profiles, generation)
    return vectors.kind


def ensure_index(settings: Settings, notice: Callable[[str], None] | None, progress=None, embedder=None):
    """Build or update the index when it is missing or older than the queue, saying so.
    Returns the location and the queue as parsed, for the caller to go on with."""
    location, queue, archive = open_to_read(settings)
    try:
        reason = staleness(location, queue, archive, settings, model_id(settings, embedder))
    finally:
        archive.close()
    if reason is not None:
        if notice:
            notice(f"{reason}: updating the index first")
        build_index(settings, progress=progress, embedder=embedder, notice=notice)
    return location, queue
