"""Build and load the search index: passages -> cached embeddings -> FAISS + BM25.

The vector and keyword files are derived data. The passage table in the archive
carries a generation number; the files and ``manifest.json`` record the
generation they were built from and are replaced atomically, manifest last, so
a run killed midway leaves either the old index or one that is detected as
stale and rebuilt, never a mix that is served.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from rq.archive.db import Archive, writer_lock
from rq.archive.session import open_for, sync_queue
from rq.errors import ArchiveError, IndexMismatchError
from rq.files import atomic_write_bytes
from rq.index.chunk import passage_hash, split_passages
from rq.paths import Location, locate
from rq.queue.model import Queue, Resource
from rq.settings import Settings

MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
RESOURCE_VECTORS = "resources.npz"
KEYWORDS = "keywords"
FORMAT = 1

Progress = Callable[[int, int, str], None]
Notice = Callable[[str], None]


@dataclass
class Manifest:
    format: int
    model: str
    dim: int
    chunk_words: int
    chunk_overlap_words: int
    content_key: str
    generation: int
    passages: int
    resources: int
    vector_index: str
    built_at: float
    vectors: str = ""  # cache key of the passage vectors: the model id, plus "+int8" for int8 ones

    def settings_differ(self, model_id: str, settings: Settings) -> list[str]:
        wanted = {"model": model_id, "chunk_words": settings.chunk_words,
                  "chunk_overlap_words": settings.chunk_overlap_words}
        return [f"{k} {getattr(self, k)} (now {v})" for k, v in wanted.items() if getattr(self, k) != v]


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


def meta_passage(resource: Resource) -> str:
    """What a resource says about itself in the queue: enough to find a page rq could not fetch."""
    parts = [resource.title]
    if resource.note:
        parts.append(resource.note)
    if resource.section:
        parts.append(f"Section: {resource.section}")
    return "\n".join(parts)


def passage_rows(queue: Queue, archive: Archive, settings: Settings, embedder) -> list[tuple]:
    """(resource_id, ord, source, text, hash) for every passage of every resource in the queue."""
    docs = archive.documents()
    rows: list[tuple] = []
    for resource in queue.resources:
        meta = meta_passage(resource)
        rows.append((resource.id, 0, "meta", meta, passage_hash(meta)))
        doc = docs.get(resource.id)
        if doc is None or not doc["text"].strip():
            continue
        title = resource.title if resource.title != resource.url else (doc["title"] or resource.title)
        pieces = split_passages(title, doc["text"], settings.chunk_words, settings.chunk_overlap_words,
                                count_pieces=embedder.count_pieces, max_pieces=embedder.max_pieces)
        rows.extend((resource.id, i, "text", p, passage_hash(p)) for i, p in enumerate(pieces, start=1))
    return rows


def content_key(queue: Queue, archive: Archive, settings: Settings, model_id: str) -> str:
    """A digest of everything the index is built from, read state excluded (marking an item read
    must not force a re-index)."""
    digest = hashlib.sha256(f"{FORMAT}|{model_id}|{settings.chunk_words}|{settings.chunk_overlap_words}".encode())
    text_shas = {row[0]: row[1] for row in archive.conn.execute("SELECT resource_id, text_sha FROM documents")}
    for r in queue.resources:
        digest.update(f"\0{r.id}\0{r.title}\0{r.note}\0{r.section}\0{text_shas.get(r.id, '')}".encode(
            "utf-8", "surrogatepass"))
    return digest.hexdigest()


def read_manifest(folder: Path) -> Manifest | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None


def make_embedder(settings: Settings, notice: Notice | None = None):
    """The embedder for queries and passages: ONNX when the index holds an export, else
    sentence-transformers (see rq.index.encoders)."""
    from rq.index.encoders.onnx_encoder import make_embedder as choose

    return choose(settings, notice)


def model_id(settings: Settings, embedder=None) -> str:
    if embedder is not None:
        return embedder.model_id
    from rq.index.encoders.torch_encoder import model_id_for

    return model_id_for(settings.model)


def staleness(location: Location, queue: Queue, archive: Archive, settings: Settings, model: str) -> str | None:
    """Why the index must be (re)built, or None when it is current (``model``: the model id)."""
    from rq.index.encoders.onnx_encoder import wants_exact

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
    vectors are not cached. Also exports the model to ONNX when the index has no usable
    export (so later searches start without torch); ``embedder`` given: used as is."""
    from rq.index.encoders.onnx_encoder import ensure_export

    location = locate(settings)
    started = time.monotonic()
    with writer_lock(location.index_dir):
        _, queue, archive = open_for(settings)  # a bad queue fails here, before any export
        try:
            embedder = ensure_export(location.index_dir, settings, embedder, notice)
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
    from rq.index.encoders.onnx_encoder import lookup_vectors, vectors_key

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
    from rq.index.keyword import KeywordIndex
    from rq.index.encoders.onnx_encoder import vectors_key
    from rq.index.vectors import VectorIndex

    rows = passage_rows(queue, archive, settings, embedder)
    profile_rows = [(r.id, 0, "profile", profile_text(r), passage_hash(profile_text(r))) for r in queue.resources]
    both, embedded = _embed_rows(rows + profile_rows, archive, embedder, settings, progress)
    matrix = both[:len(rows)]
    profiles = {row[0]: vector for row, vector in zip(profile_rows, both[len(rows):])}
    key = content_key(queue, archive, settings, embedder.model_id)
    generation = archive.replace_passages(rows)
    ids = np.arange(len(rows), dtype=np.int64)
    vectors = VectorIndex.build(matrix, ids, kind=settings.vector_index, hnsw_above=settings.hnsw_above,
                                meta={"generation": generation, "model": embedder.model_id},
                                threads=settings.threads)
    vectors.save(location.index_dir / VECTORS)
    KeywordIndex.build([row[3] for row in rows], ids).save(location.index_dir / KEYWORDS)
    save_resource_vectors(location.index_dir, rows, matrix, profiles, generation)
    manifest = Manifest(FORMAT, embedder.model_id, int(matrix.shape[1]), settings.chunk_words,
                        settings.chunk_overlap_words, key, generation, len(rows), len(queue.resources),
                        vectors.kind, time.time(), vectors_key(embedder))
    atomic_write_bytes(location.index_dir / MANIFEST, json.dumps(asdict(manifest), indent=2).encode())
    return IndexReport(str(location.index_dir), True, reason, len(rows), len(queue.resources),
                       embedded, len(rows) + len(profile_rows) - embedded, vectors.kind, 0.0)


def profile_text(resource: Resource) -> str:
    """What the reader wrote about a resource, without its section: next, related and the
    section audit compare resources by content, and the section is what the audit checks."""
    return "\n".join(p for p in (resource.title, resource.note) if p)


def resource_matrix(rows: list[tuple], matrix: np.ndarray, profiles: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """One unit vector per resource: its page's mean passage, blended half and half with its
    profile (title and note) — the reader's own framing counts as much as the page."""
    text: dict[str, list[np.ndarray]] = {}
    for row, vector in zip(rows, matrix):
        if row[2] == "text":
            text.setdefault(row[0], []).append(vector)
    order = list(profiles)
    out = np.zeros((len(order), matrix.shape[1]), dtype=np.float32)
    for i, rid in enumerate(order):
        parts = [profiles[rid]]
        if text.get(rid):
            page = np.mean(text[rid], axis=0)
            parts.append(page / (np.linalg.norm(page) or 1.0))
        blended = np.mean(parts, axis=0)
        out[i] = blended / (np.linalg.norm(blended) or 1.0)
    return order, out


def save_resource_vectors(folder: Path, rows: list[tuple], matrix: np.ndarray,
                          profiles: dict[str, np.ndarray], generation: int) -> None:
    import io

    ids, vectors = resource_matrix(rows, matrix, profiles)
    position = {rid: i for i, rid in enumerate(ids)}
    owner = np.array([position[row[0]] for row in rows], dtype=np.int64)  # passage id -> resource row
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids, dtype="U16"), vectors=vectors, owner=owner,
             generation=np.int64(generation))
    atomic_write_bytes(folder / RESOURCE_VECTORS, buffer.getvalue())


def load_resource_vectors(folder: Path, generation: int, with_owner: bool = False):
    """(resource ids, one vector per resource) and, with_owner, passage id -> resource row."""
    try:
        with np.load(folder / RESOURCE_VECTORS) as data:
            if int(data["generation"]) != generation:
                raise ArchiveError(f"{folder / RESOURCE_VECTORS} is out of step with the archive")
            ids, vectors = [str(i) for i in data["ids"]], data["vectors"].astype(np.float32)
            return (ids, vectors, data["owner"]) if with_owner else (ids, vectors)
    except (OSError, ValueError, KeyError) as exc:
        raise ArchiveError(f"{folder / RESOURCE_VECTORS} is missing or damaged ({exc})") from None


@dataclass
class LoadedIndex:
    manifest: Manifest
    vectors: object
    keywords: object
    resource_ids: list[str]
    owner: np.ndarray  # passage id -> row in resource_ids


def load_index(location: Location, archive: Archive, settings: Settings, embedder) -> LoadedIndex:
    """Open the derived files, refusing ones built with other settings or another generation."""
    from rq.index.keyword import KeywordIndex
    from rq.index.vectors import VectorIndex

    manifest = read_manifest(location.index_dir)
    if manifest is None:
        raise ArchiveError(f"no search index in {location.index_dir}: run `rq index`")
    differ = manifest.settings_differ(embedder.model_id, settings)
    if differ:
        raise IndexMismatchError(
            f"the index in {location.index_dir} was built with {', '.join(differ)}; "
            "run `rq index --rebuild` to rebuild it with the current settings")
    vectors = VectorIndex.load(location.index_dir / VECTORS, dim=manifest.dim, threads=settings.threads)
    if vectors.meta.get("generation") != manifest.generation or str(manifest.generation) != archive.meta("generation"):
        raise ArchiveError(f"index in {location.index_dir} does not match its archive: run `rq index --rebuild`")
    keywords = KeywordIndex.load(location.index_dir / KEYWORDS)
    ids, _, owner = load_resource_vectors(location.index_dir, manifest.generation, with_owner=True)
    return LoadedIndex(manifest, vectors, keywords, ids, owner)


def ensure_index(settings: Settings, notice: Callable[[str], None] | None, progress=None, embedder=None):
    """Build or update the index when it is missing or older than the queue, saying so.
    Returns the location and the queue as parsed, for the caller to go on with."""
    location, queue, archive = open_for(settings)
    try:
        sync_queue(archive, queue)
        reason = staleness(location, queue, archive, settings, model_id(settings, embedder))
    finally:
        archive.close()
    if reason is not None:
        if notice:
            notice(f"{reason}: updating the index first")
        build_index(settings, progress=progress, embedder=embedder, notice=notice)
    return location, queue
