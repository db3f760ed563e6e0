"""Embedding on a Ray cluster (`--engine ray`): Ray Data's map_batches over a pool of actors,
each holding the encoder loaded for the whole run.

Only the embedding moves: the build (which passages, the vector cache, the FAISS and BM25 files,
the manifest) stays in the process that asked, so a Ray run writes the same archive and index a
local run does. Each actor builds its encoder from the same settings as this process
(rq.index.encoders.factory), and refuses to run when its vectors would be another kind (int8
against fp32, another model): the cache key says what a vector is, and it must stay true.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Sequence

import numpy as np

from rq.cluster import connect, failure_line, ray_module
from rq.errors import RqError
from rq.index.encoders.cache import vectors_key
from rq.settings import Settings

Progress = Callable[[int, int], None]

# Batches an actor gets at once (8 x embed_batch_size 32 = 256 texts): enough that Ray's per-call
# cost (~ms) is lost beside the model's (~2 s for 256 passages on one core), few enough that every
# actor gets work early.
BATCHES_PER_CALL = 8
# Calls' worth of batches per Ray Data block at the input, so that blocks spread over the actors.
CALLS_PER_BLOCK = 4


class _Encoder:
    """A Ray Data actor: the encoder, loaded once, encoding every batch it is handed."""

    def __init__(self, settings: Settings, expected_key: str):
        from rq.index.encoders.factory import embedder_for_build

        self.embedder = embedder_for_build(settings)
        key = vectors_key(self.embedder)
        if key != expected_key:
            raise RqError(f"a Ray worker would embed as {key}, not {expected_key} like this machine; "
                          "install the same rq and model on every node")

    def __call__(self, batch: dict) -> dict:
        # Each row is one batch exactly as the local run would form it: encoded as one.
        numbers, vectors = [], []
        for row_numbers, row_texts in zip(batch["i"], batch["text"]):
            texts = [str(t) for t in row_texts]
            vectors.append(np.asarray(self.embedder.encode(texts, batch_size=len(texts)), dtype=np.float32))
            numbers.append(np.asarray(row_numbers, dtype=np.int64))
        return {"i": np.concatenate(numbers), "vector": np.concatenate(vectors)}


class RayEmbedder:
    """Encodes passages on a Ray cluster; everything else (model id, dimension, word-piece counts,
    cache key, queries) is the local encoder's, which it wraps."""

    def __init__(self, local, settings: Settings):
        self.local = local
        self.settings = settings
        self.cluster = None

    def __getattr__(self, name: str):
        # model_id, dim, max_pieces, count_pieces, cache_key, export_key, encode_query, ...
        return getattr(self.local, name)

    def encode(self, texts: Sequence[str], batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.local.dim), dtype=np.float32)
        for idx, vectors in self.encode_stream(texts, len(texts), progress):
            out[idx] = vectors
        return out

    def encode_stream(self, texts: Sequence[str], chunk: int,
                      progress: Progress | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(text numbers, their vectors) about ``chunk`` at a time as the cluster finishes them, so
        the caller can commit them as they come (a killed run keeps what was embedded). The texts
        are batched as a local run embedding them ``chunk`` at a time would batch them."""
        if not texts:
            return
        ray = ray_module()
        self.cluster = self.cluster or connect(self.settings)
        blocks = _blocks(texts, self._batches(texts, chunk), self.cluster.workers)
        with warnings.catch_warnings():
            # Ray 2.60 documents max_restarts=0 as the way to turn restarts off and, in the same
            # release, warns that passing it so is deprecated; the warning tells a user nothing.
            warnings.simplefilter("ignore")
            dataset = self._encode_plan(ray, blocks)
        done = 0
        try:
            for batch in dataset.iter_batches(batch_size=chunk, batch_format="numpy", prefetch_batches=1):
                done += len(batch["i"])
                yield batch["i"], batch["vector"]
                if progress is not None:
                    progress(done, len(texts))
        except ray.exceptions.RayError as exc:
            raise RqError(f"embedding on Ray failed: {failure_line(exc)}") from None
        if done != len(texts):
            raise RqError(f"embedding on Ray returned {done} vectors for {len(texts)} texts")

    def _batches(self, texts: Sequence[str], chunk: int) -> list[np.ndarray]:
        """Text numbers in the very batches the local encoder would run: each ``chunk`` of texts
        ordered longest first its way, then cut every embed_batch_size. On the int8 graph a vector
        depends on the texts batched with it (activations are quantised per batch: measured up to
        0.03 of cosine), so the same batches are what makes the vectors the same as a local run's."""
        size = self.settings.embed_batch_size
        order_of = getattr(self.local, "batch_order", None)
        batches = []
        for start in range(0, len(texts), chunk):
            part = list(texts[start:start + chunk])
            order = order_of(part) if order_of else sorted(range(len(part)), key=lambda i: -len(part[i]))
            order = np.asarray(order, dtype=np.int64) + start
            batches += [order[lo:lo + size] for lo in range(0, len(order), size)]
        return batches

    def _encode_plan(self, ray, blocks: list):
        return ray.data.from_arrow(blocks).map_batches(
            _Encoder, fn_constructor_args=(self._worker_settings(), vectors_key(self.local)),
            batch_size=BATCHES_PER_CALL, batch_format="numpy", num_cpus=1, num_gpus=1 if self._on_gpu else None,
            # A worker that dies fails the run rather than restarting: what was embedded is cached
            # and the next run resumes there (Ray also warns on stderr about a restartable actor
            # built from arguments in its object store, as every Ray Data actor is).
            max_restarts=0,
            # No more actors than blocks: an actor with nothing to do still loads the model.
            compute=ray.data.ActorPoolStrategy(size=min(self.cluster.workers, len(blocks))))

    @property
    def _on_gpu(self) -> bool:
        return getattr(self.local, "device", "cpu") == "cuda"

    def _worker_settings(self) -> Settings:
        # One CPU per actor (Ray schedules them so), hence one thread each; engine local, so that an
        # actor's own encoder embeds in place instead of asking Ray again; the device this machine
        # embeds on, so that a worker on a GPU node does not make fp16 vectors for an int8 index.
        return self.settings.replace(threads=1, engine="local", embed_device="cuda" if self._on_gpu else "cpu")


def _blocks(texts: Sequence[str], batches: list[np.ndarray], workers: int) -> list:
    """The batches as Arrow tables (a row per batch: its text numbers and texts), one Ray Data
    block each: CALLS_PER_BLOCK calls' worth, or fewer when that leaves a worker without a block."""
    import pyarrow as pa

    size = max(1, min(BATCHES_PER_CALL * CALLS_PER_BLOCK, -(-len(batches) // workers)))
    tables = []
    for lo in range(0, len(batches), size):
        rows = batches[lo:lo + size]
        tables.append(pa.table({
            "i": pa.array([b.tolist() for b in rows], type=pa.list_(pa.int64())),
            "text": pa.array([[texts[i] for i in b] for b in rows], type=pa.list_(pa.string())),
        }))
    return tables
