"""The index's manifest: what the derived files were built from, written last.

The passage table in the archive carries a generation number; the vector, keyword and
resource-vector files and ``manifest.json`` record the generation they were built
from and are replaced atomically, manifest last, so a run killed midway leaves either
the old index or one that is detected as stale and rebuilt, never a mix that is served.

The manifest also names every derived file with its size, sha256 and stamp
(rq.index.integrity), and carries a sha256 of its own fields: a manifest edited or damaged
by hand (a wrong passage count would quietly cut every search short) fails it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rq.errors import ArchiveError
from rq.files import atomic_write_bytes
from rq.settings import Settings

MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
# The vector index and, for the compressed kind, its FAISS file and exact vectors beside it
# (rq.index.compressed): each recorded with its checksum like every derived file.
VECTOR_FILES = (VECTORS, VECTORS + ".ivf", VECTORS + ".npy")
RESOURCE_VECTORS = "resources.npz"
KEYWORDS = "keywords"
WINDOWS = "windows.npz"  # dense windows inside passages (only when dense_window_words is set)
# 2: resource ids are the whole SHA-1 of the normalised URL (40 hex digits), not its first 8.
# 3: the manifest records each derived file's size and sha256, and a checksum of itself.
FORMAT = 3


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
    encoder: str = ""  # the shared ONNX export the passages were embedded with ("" for torch)
    files: dict = field(default_factory=dict)  # path in the index folder -> bytes, sha256, stamp

    def settings_differ(self, model_id: str, settings: Settings) -> list[str]:
        wanted = {"model": model_id, "chunk_words": settings.chunk_words,
                  "chunk_overlap_words": settings.chunk_overlap_words}
        return [f"{k} {getattr(self, k)} (now {v})" for k, v in wanted.items() if getattr(self, k) != v]


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest in ``folder``; None when there is none. ArchiveError when it is unreadable,
    fails its checksum, or is of this format but does not parse. One of an older format is
    returned as it is (it has no checksum), for the caller to find it out of date."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        checksum = data.pop("checksum", None)
        if data.get("format") == FORMAT and checksum != _checksum(data):
            raise ValueError("it fails its checksum")
        return Manifest(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise ArchiveError(f"{path} is damaged ({exc})") from None


def manifest_mtime(folder: Path) -> int:
    """The manifest's mtime in ns (0 when it is gone): stamps of files older than it are trusted
    (rq.index.integrity)."""
    try:
        return (Path(folder) / MANIFEST).stat().st_mtime_ns
    except OSError:
        return 0


def write_manifest(folder: Path, manifest: Manifest) -> None:
    data = asdict(manifest)
    data["checksum"] = _checksum(data)
    atomic_write_bytes(Path(folder) / MANIFEST, json.dumps(data, indent=2).encode())


def _checksum(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
