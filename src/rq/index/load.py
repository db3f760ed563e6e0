"""Open a built index for searching, refusing files built with other settings or out of step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rq.archive.db import Archive
from rq.errors import ArchiveError, IndexMismatchError
from rq.index.manifest import KEYWORDS, VECTORS, Manifest, read_manifest
from rq.index.resources import load_resource_vectors
from rq.paths import Location
from rq.settings import Settings


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
