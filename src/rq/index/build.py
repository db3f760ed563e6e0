"""Build the search index: passages -> cached embeddings -> FAISS + BM25 + resource vectors.

Only passages whose vectors are not cached are embedded, and fresh vectors are committed to
the cache a batch at a time, so a run that is killed (or runs out of disk) resumes where it
stopped. The files are derived data: staged, then swapped in under the index folder's
writer lock once the archive's passage table is committed (rq.index.generation), manifest
last (rq.index.manifest), each recorded with its checksum (rq.index.integrity).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from rq.archive.db import Archive
from rq.archive.lock import writer_lock
from rq.archive.session import open_for, open_to_read, sync_queue
from rq.errors import ArchiveError
from rq.index import integrity
from rq.index.chunk import passage_hash
from rq.index.encoders.cache import lookup_vectors, vectors_key, wants_exact
from rq.index.generation import discard, index_files, stage_files, swap_in, writing_index
from rq.index.manifest import FORMAT, MANIFEST, Manifest, manifest_mtime, read_manifest, write_manifest
from rq.index.passages import cut_line, passage_rows, profile_text, window_rows
from rq.paths import Location, locate
from rq.queue.model import Queue
from rq.settings import Settings

Progress = Callable[[int, int, str], None]
Notice = Callable[[str], None]

# Fresh vectors are committed to the cache every this many texts: ~25 s of torch on two cores
# for 128-word passages (5-10 s on the ONNX path), so a killed run loses at most that much,
# while each commit (an fsync) stays a negligible share of the work.
COMMIT_EVERY = 512


@dataclass
class IndexReport:
    index: str
    built: bool
    reason: str
    passages: int
    resources: int
    embedded: int  # texts embedded in this run: passages, title/note entries and dense windows
    cached: int  # texts whose vectors came from the cache
    vector_index: str
    seconds: float
    # Resources cut to max_passages_per_resource: id, short_id, title, kept, total, estimated.
    cut: list[dict] = field(default_factory=list)
    profiles: int = 0  # title/note entries embedded beside the passages, one per resource
    windows: int = 0  # dense windows (dense_window_words) embedded beside the passages
    engine: str = "local"  # where texts were embedded: local, or ray (a Ray cluster)


def content_key(queue: Queue, archive: Archive, settings: Settings, model_id: str) -> str:
    """A digest of everything the index is built from, read state excluded (marking an item read
    must not force a re-index)."""
    head = (f"{FORMAT}|{model_id}|{settings.chunk_words}|{settings.chunk_overlap_words}|"
            f"{settings.max_passages_per_resource}")
    # Appended only when set, so indexes built before these settings existed stay current.
    if settings.keyword_title_weight != 1:
        head += f"|title_weight {settings.keyword_title_weight}"
    if settings.dense_window_words:
        head += f"|dense_windows {settings.dense_window_words}"
    digest = hashlib.sha256(head.encode())
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
    try:
        manifest = read_manifest(location.index_dir)
    except ArchiveError:
        return f"index files damaged: {MANIFEST}"
    if manifest is None:
        return "no index yet"
    if manifest.format != FORMAT:
        return "index format changed"
    if manifest.settings_differ(model, settings):
        return None  # not stale but incompatible: load_index refuses with a message
    if manifest.vectors.endswith(("+int8", "+fp16", "+bf16")) and wants_exact(settings):
        kind = manifest.vectors.rpartition("+")[2]
        return f"exact passage vectors asked for (the index holds {kind} ones)"
    if str(manifest.generation) != (archive.meta("generation") or ""):
        return "index files do not match the archive"
    problems = integrity.file_problems(location.index_dir, manifest.files, manifest_mtime(location.index_dir))
    if problems:
        return integrity.describe(problems)
    if manifest.content_key != content_key(queue, archive, settings, model):
        return "queue, archived text or index settings changed since the index was built"
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
    with writer_lock(location.index_dir, notice=notice):
        _, queue, archive = open_for(settings)  # a bad queue fails here, before any export
        try:
            embedder = embedder_for_build(settings, embedder, notice)
            if settings.engine == "ray":
                from rq.index.encoders.on_ray import RayEmbedder

                embedder = RayEmbedder(embedder, settings)
            remove_legacy_export(location.index_dir, notice)
            sync_queue(archive, queue)
            reason = "rebuild asked for" if force else staleness(location, queue, archive, settings,
                                                                 embedder.model_id)
            manifest = read_manifest(location.index_dir) if reason is None else None
            if manifest is not None and not manifest.settings_differ(embedder.model_id, settings):
                _restamp(location, manifest)
                return IndexReport(str(location.index_dir), False, "up to date", manifest.passages,
                                   manifest.resources, 0, manifest.passages, manifest.vector_index,
                                   time.monotonic() - started, engine=settings.engine)
            report = _build(location, queue, archive, settings, embedder, progress, reason or "settings changed")
        finally:
            archive.close()
    report.seconds = time.monotonic() - started
    report.engine = settings.engine
    return report


def _restamp(location: Location, manifest: Manifest) -> None:
    """Record the files' stamps anew when they moved (a copied or restored index folder, whose
    files staleness() has just hashed and found intact), so searches stop hashing them."""
    fresh = integrity.restamped(location.index_dir, manifest.files)
    if fresh is not None:
        with writing_index(location.index_dir):
            write_manifest(location.index_dir, replace(manifest, files=fresh))


def _embed_rows(rows: list[tuple], archive: Archive, embedder, settings: Settings,
                progress: Progress | None) -> tuple[np.ndarray, int]:
    """The vector of every row, from the cache or embedded now; returns them and how many
    were embedded. Fresh vectors are cached every COMMIT_EVERY texts, each batch in its own
    transaction, so a killed run keeps what it embedded (found again by passage hash)."""
    hashes = [row[4] for row in rows]
    key = vectors_key(embedder)
    cached = lookup_vectors(archive, embedder.model_id, key, hashes)
    missing = list({row[4]: row[3] for row in rows if row[4] not in cached}.items())
    for numbers, vectors in _fresh_vectors(embedder, [text for _, text in missing], settings, progress):
        fresh = [(missing[i][0], v.astype(np.float32).tobytes()) for i, v in zip(numbers, vectors)]
        archive.cache_vectors(key, fresh)
        cached.update(fresh)
    matrix = np.zeros((len(rows), embedder.dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        matrix[i] = np.frombuffer(cached[h], dtype=np.float32)
    return matrix, len(missing)


def _fresh_vectors(embedder, texts: list[str], settings: Settings, progress: Progress | None):
    """(text numbers, vectors) of ``texts``, COMMIT_EVERY or so at a time: from an encoder that
    streams its own (embedding on a Ray cluster), else embedded here a slice at a time."""
    stream = getattr(embedder, "encode_stream", None)
    if stream is not None:
        total = len(texts)
        yield from stream(texts, COMMIT_EVERY, None if progress is None else
                          (lambda done, _: progress(done, total, "embedding")))
        return
    step = getattr(embedder, "commit_every", COMMIT_EVERY)  # a GPU takes far more texts per call
    for start in range(0, len(texts), step):
        batch = texts[start:start + step]
        yield range(start, start + len(batch)), embedder.encode(
            batch, batch_size=settings.embed_batch_size, progress=_offset(progress, start, len(texts)))


def _offset(progress: Progress | None, start: int, total: int):
    """The encoder's progress(done, of_batch) as the run's progress(start + done, total, "embedding"):
    one bar over all the texts, whichever committed batch they are in."""
    if progress is None:
        return None
    return lambda done, _: progress(start + done, total, "embedding")


def _build(location: Location, queue: Queue, archive: Archive, settings: Settings, embedder,
           progress: Progress | None, reason: str) -> IndexReport:
    rows, cuts = passage_rows(queue, archive, settings, embedder)
    profile_rows = [(r.id, 0, "profile", profile_text(r), passage_hash(profile_text(r))) for r in queue.resources]
    windows = window_rows(rows, settings, embedder) if settings.dense_window_words else []
    window_embed = [("", 0, "window", text, h) for _, text, h in windows]
    everything, embedded = _embed_rows(rows + profile_rows + window_embed, archive, embedder, settings, progress)
    matrix = everything[:len(rows)]
    profiles = {row[0]: vector for row, vector in zip(profile_rows, everything[len(rows):])}
    window_vectors = None
    if windows:
        window_vectors = (np.array([pid for pid, _, _ in windows], dtype=np.int64),
                          everything[len(rows) + len(profile_rows):])
    key = content_key(queue, archive, settings, embedder.model_id)
    folder = location.index_dir
    with writing_index(folder):
        # Under the writer lock no one else moves the generation: the files can carry it before
        # the passage table takes it, and are written before anything live changes.
        generation = int(archive.meta("generation", "0") or 0) + 1
        staged = stage_files(folder, rows, matrix, profiles, generation, settings, embedder.model_id,
                             window_vectors)
        try:
            committed = archive.replace_passages(rows)
        except BaseException:
            discard(staged)
            raise
        if committed != generation:
            discard(staged)
            raise ArchiveError(f"the archive in {folder} moved to generation {committed} while the index was "
                               "built; run `rq index --rebuild`")
        swap_in(staged)
        write_manifest(folder, Manifest(
            FORMAT, embedder.model_id, int(matrix.shape[1]), settings.chunk_words, settings.chunk_overlap_words,
            key, generation, len(rows), len(queue.resources), staged.kind, time.time(), vectors_key(embedder),
            getattr(embedder, "export_key", ""), integrity.record_files(folder, index_files(folder))))
    return IndexReport(str(folder), True, reason, len(rows), len(queue.resources),
                       embedded, len(rows) + len(profile_rows) + len(windows) - embedded, staged.kind, 0.0, cuts,
                       len(profile_rows), len(windows))


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
        report = build_index(settings, progress=progress, embedder=embedder, notice=notice)
        if notice:
            for cut in report.cut:
                notice(cut_line(cut))
    return location, queue
