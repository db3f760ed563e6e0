"""Open a built index for searching, refusing files built with other settings or out of step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rq.archive.db import Archive
from rq.errors import ArchiveError, IndexMismatchError
from rq.index.integrity import check_files
from rq.index.manifest import FORMAT, KEYWORDS, VECTORS, WINDOWS, Manifest, manifest_mtime, read_manifest
from rq.index.resources import load_resource_vectors, load_windows
from rq.paths import Location
from rq.settings import Settings


@dataclass
class LoadedIndex:
    manifest: Manifest
    vectors: object
    keywords: object
    resource_ids: list[str]
    owner: np.ndarray  # passage id -> row in resource_ids
    # Dense windows inside passages (dense_window_words): each window's passage id, their vectors.
    windows: tuple[np.ndarray, np.ndarray] | None = None


def load_index(location: Location, archive: Archive, settings: Settings, embedder) -> LoadedIndex:
    """Open the derived files, refusing ones built with other settings or another generation.
    Files that fail their checksum, or disagree with the manifest, raise ArchiveError: the
    caller rebuilds them from the archive rather than serve them."""
    from rq.index.keyword import KeywordIndex
    from rq.index.vectors import VectorIndex

    folder = location.index_dir
    manifest = read_manifest(folder)
    if manifest is None:
        raise ArchiveError(f"no search index in {folder}: run `rq index`")
    if manifest.format != FORMAT:
        raise ArchiveError(f"the index in {folder} is of an older format: run `rq index`")
    differ = manifest.settings_differ(embedder.model_id, settings)
    if differ:
        raise IndexMismatchError(
            f"the index in {folder} was built with {', '.join(differ)}; "
            "run `rq index --rebuild` to rebuild it with the current settings")
    check_files(folder, manifest.files, manifest_mtime(folder))
    vectors = VectorIndex.load(folder / VECTORS, dim=manifest.dim, threads=settings.threads)
    if vectors.meta.get("generation") != manifest.generation or str(manifest.generation) != archive.meta("generation"):
        raise ArchiveError(f"index in {folder} does not match its archive: run `rq index --rebuild`")
    keywords = KeywordIndex.load(folder / KEYWORDS)
    ids, _, owner = load_resource_vectors(folder, manifest.generation, with_owner=True)
    if not vectors.ntotal == len(keywords) == len(owner) == manifest.passages or len(ids) != manifest.resources:
        raise ArchiveError(f"the index files in {folder} disagree with its manifest on how many passages "
                           "and resources there are")
    windows = None
    if WINDOWS in manifest.files:
        windows = load_windows(folder / WINDOWS, manifest.generation, manifest.passages)
    return LoadedIndex(manifest, vectors, keywords, ids, owner, windows)
