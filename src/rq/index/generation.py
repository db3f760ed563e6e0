"""The derived files of one index generation: staged beside the live ones, then swapped in.

A build writes the vector, keyword and resource-vector files under temporary names first;
only once all of them are on disk does the archive's passage table take the new
generation, and only then are the files renamed over the live ones, manifest last. A
build that fails while writing (a full disk) thus leaves the previous index whole and
in step with its archive: it still answers, and nothing is lost but the new files, which
are removed. A build killed at that point leaves temporary names the next writer sweeps.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from rq.errors import ArchiveError, DiskFullError
from rq.files import TMP_PREFIX, fsync_dir, is_disk_full
from rq.index.manifest import KEYWORDS, RESOURCE_VECTORS, VECTOR_FILES, VECTORS, WINDOWS
from rq.index.resources import save_resource_vectors, save_windows
from rq.settings import Settings


@dataclass
class Staged:
    folder: Path
    keywords: str  # the keyword generation written, not yet current ("gen-N")
    kind: str  # the vector index kind: flat or hnsw
    windows: bool = False  # whether a dense windows file was written

    def path(self, name: str) -> Path:
        """Where the file ``name`` waits to be swapped in."""
        return self.folder / f"{TMP_PREFIX}stage-{name}"


def stage_files(folder: Path, rows: list[tuple], matrix: np.ndarray, profiles: dict, generation: int,
                settings: Settings, model: str, windows: tuple[np.ndarray, np.ndarray] | None = None) -> Staged:
    """Write the vector, keyword and resource-vector files of ``generation`` under temporary names;
    ``windows`` (each window's passage id, their vectors): the dense windows file too."""
    from rq.index.keyword import KeywordIndex
    from rq.index.vectors import VectorIndex

    ids = np.arange(len(rows), dtype=np.int64)
    vectors = VectorIndex.build(matrix, ids, kind=settings.vector_index, hnsw_above=settings.hnsw_above,
                                compressed_above=settings.compressed_above, meta={"generation": generation, "model": model}, threads=settings.threads)
    staged = Staged(folder, "", vectors.kind)
    try:
        vectors.save(staged.path(VECTORS))
        save_resource_vectors(staged.path(RESOURCE_VECTORS), rows, matrix, profiles, generation)
        if windows is not None:
            save_windows(staged.path(WINDOWS), *windows, generation)
            staged.windows = True
        staged.keywords = KeywordIndex.build([row[3] for row in rows], ids,
                                             title_weight=settings.keyword_title_weight).stage(folder / KEYWORDS)
    except BaseException:
        discard(staged)
        raise
    return staged


def discard(staged: Staged) -> None:
    """Remove what ``stage_files`` wrote (the build failed before swapping it in)."""
    for name in (*VECTOR_FILES, RESOURCE_VECTORS, WINDOWS):
        staged.path(name).unlink(missing_ok=True)
    if staged.keywords:
        shutil.rmtree(staged.folder / KEYWORDS / staged.keywords, ignore_errors=True)


def swap_in(staged: Staged) -> None:
    """Rename the staged files over the live ones and make the staged keyword generation current."""
    from rq.index.keyword import make_current

    for name in (VECTORS, RESOURCE_VECTORS):
        os.replace(staged.path(name), staged.folder / name)
    for name in VECTOR_FILES[1:]:  # the compressed kind's side files; other kinds leave none
        if staged.path(name).is_file():
            os.replace(staged.path(name), staged.folder / name)
        else:
            (staged.folder / name).unlink(missing_ok=True)
    if staged.windows:
        os.replace(staged.path(WINDOWS), staged.folder / WINDOWS)
    else:  # built without windows: an older windows file must not be served
        (staged.folder / WINDOWS).unlink(missing_ok=True)
    fsync_dir(staged.folder)
    make_current(staged.folder / KEYWORDS, staged.keywords)


def index_files(folder: Path) -> list[str]:
    """The files the live index is made of, relative to ``folder`` (what the manifest records)."""
    from rq.index.keyword import current_files

    windows = [WINDOWS] if (folder / WINDOWS).is_file() else []
    parts = [name for name in VECTOR_FILES[1:] if (folder / name).is_file()]
    return [VECTORS, *parts, RESOURCE_VECTORS] + windows + [f"{KEYWORDS}/{name}" for name in current_files(folder / KEYWORDS)]


@contextmanager
def writing_index(folder: Path) -> Iterator[None]:
    """Turn a failed write of the index files into one clear line: a full disk (or quota, or
    file size limit) says so; another failure (a read-only folder) names the folder."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError("the search index", folder) from None
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise ArchiveError(f"cannot write the search index in {folder} ({reason})") from None
