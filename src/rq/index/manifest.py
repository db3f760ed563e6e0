"""The index's manifest: what the derived files were built from, written last.

The passage table in the archive carries a generation number; the vector, keyword and
resource-vector files and ``manifest.json`` record the generation they were built
from and are replaced atomically, manifest last, so a run killed midway leaves either
the old index or one that is detected as stale and rebuilt, never a mix that is served.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rq.files import atomic_write_bytes
from rq.settings import Settings

MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
RESOURCE_VECTORS = "resources.npz"
KEYWORDS = "keywords"
# 2: resource ids are the whole SHA-1 of the normalised URL (40 hex digits), not its first 8.
FORMAT = 2


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

    def settings_differ(self, model_id: str, settings: Settings) -> list[str]:
        wanted = {"model": model_id, "chunk_words": settings.chunk_words,
                  "chunk_overlap_words": settings.chunk_overlap_words}
        return [f"{k} {getattr(self, k)} (now {v})" for k, v in wanted.items() if getattr(self, k) != v]


def read_manifest(folder: Path) -> Manifest | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write_bytes(Path(folder) / MANIFEST, json.dumps(asdict(manifest), indent=2).encode())
