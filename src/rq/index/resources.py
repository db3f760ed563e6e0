"""One vector per resource, saved beside the index: what next, related and clusters compare.

A resource's vector is its page's mean passage vector blended half and half with its
profile (title and note). The file also maps each passage id to its resource's row.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

from rq.errors import ArchiveError
from rq.files import atomic_write_bytes
from rq.index.manifest import RESOURCE_VECTORS


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


def save_resource_vectors(path: Path, rows: list[tuple], matrix: np.ndarray,
                          profiles: dict[str, np.ndarray], generation: int) -> None:
    """Write the resource vectors of ``rows`` to ``path`` (atomically)."""
    ids, vectors = resource_matrix(rows, matrix, profiles)
    position = {rid: i for i, rid in enumerate(ids)}
    owner = np.array([position[row[0]] for row in rows], dtype=np.int64)  # passage id -> resource row
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids, dtype="U40"), vectors=vectors, owner=owner,
             generation=np.int64(generation))
    atomic_write_bytes(path, buffer.getvalue())


def load_resource_vectors(folder: Path, generation: int, with_owner: bool = False):
    """(resource ids, one vector per resource) and, with_owner, passage id -> resource row."""
    try:
        with np.load(folder / RESOURCE_VECTORS, allow_pickle=False) as data:
            if int(data["generation"]) != generation:
                raise ArchiveError(f"{folder / RESOURCE_VECTORS} is out of step with the archive")
            ids, vectors = [str(i) for i in data["ids"]], data["vectors"].astype(np.float32)
            owner = data["owner"] if with_owner else None
    # A damaged zip shows as any of these, from numpy, zipfile or zlib.
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArchiveError(f"{folder / RESOURCE_VECTORS} is missing or damaged ({exc})") from None
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ArchiveError(f"{folder / RESOURCE_VECTORS} is damaged (ids and vectors disagree)")
    return (ids, vectors, owner) if with_owner else (ids, vectors)


def save_windows(path: Path, passages: np.ndarray, vectors: np.ndarray, generation: int) -> None:
    """Write the dense windows: each window's passage id (windows come passage by passage) and
    its vector (atomically)."""
    buffer = io.BytesIO()
    np.savez(buffer, passages=np.asarray(passages, dtype=np.int64), vectors=np.asarray(vectors, np.float32),
             generation=np.int64(generation))
    atomic_write_bytes(path, buffer.getvalue())


def load_windows(path: Path, generation: int, passages: int) -> tuple[np.ndarray, np.ndarray]:
    """(each window's passage id, the windows' vectors), checked against the index it belongs to:
    ids in order, every one of the ``passages`` passages with a window."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["generation"]) != generation:
                raise ArchiveError(f"{path} is out of step with the archive")
            owner, vectors = data["passages"], data["vectors"].astype(np.float32)
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArchiveError(f"{path} is missing or damaged ({exc})") from None
    if (vectors.ndim != 2 or len(vectors) != len(owner) or (len(owner) and (owner[0] != 0 or owner[-1] != passages - 1))
            or np.any(np.diff(owner) < 0) or np.any(np.diff(owner) > 1)):
        raise ArchiveError(f"{path} is damaged (windows and passages disagree)")
    return owner, vectors
