"""Keys of cached passage vectors: int8 and fp16 vectors are kept apart from exact ones.

Exact vectors (torch, or the fp32 ONNX graph, which agree to 1e-4) are stored under the
model id; int8 ones under the model id plus "+int8", fp16 ones from a GPU
(rq.index.encoders.cuda_encoder) plus "+fp16", so choosing an exact setting later embeds
those passages again instead of serving approximate vectors as exact.
"""

from __future__ import annotations

from rq.settings import Settings


def vectors_key(embedder) -> str:
    """Cache key of the passage vectors ``embedder`` makes: its model id, plus "+int8" for the
    int8 graph or "+fp16" for the GPU in fp16 (exact vectors, from torch or the fp32 graph,
    agree to 1e-4 and share a key)."""
    return getattr(embedder, "cache_key", None) or embedder.model_id


def lookup_vectors(archive, model_id: str, key: str, hashes: list[str]) -> dict[str, bytes]:
    """Cached vectors for ``hashes``: exact ones first (they serve every path), then for the
    rest those stored under ``key`` when that is another (int8, fp16) key."""
    found = archive.cached_vectors(model_id, hashes)
    if key != model_id:
        rest = [h for h in hashes if h not in found]
        if rest:
            found.update(archive.cached_vectors(key, rest))
    return found


def wants_exact(settings: Settings) -> bool:
    """Whether the settings ask for exact passage vectors (torch, or the fp32 graph)."""
    return settings.embed_backend == "torch" or settings.embed_bulk == "fp32"
