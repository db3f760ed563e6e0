"""Nearest-neighbour search over passage vectors with FAISS (inner product = cosine on unit vectors).

Small collections get exact search (IndexFlatIP); past ``hnsw_above`` vectors an
HNSW graph keeps a single query in the low milliseconds at a small recall cost.
Both are wrapped in an IndexIDMap so searches return rq's own int64 ids. Past
``compressed_above`` vectors the "ivfpq" kind (rq.index.compressed) keeps ~40 bytes a vector
in memory-mapped files and re-ranks a shortlist by the exact vectors, for 10M+ passages.

The file is a short JSON header (format, kind, dimension, count, payload length
and CRC32, caller's metadata) followed by FAISS's own serialisation, so a
truncated or altered file is refused before FAISS ever parses it. The ivfpq kind's header
has no payload: its FAISS index and exact vectors are files beside it, so they can be mapped.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rq.errors import ArchiveError, IndexMismatchError, RqError
from rq.files import atomic_write_bytes
from rq.threads import usable_cpus

MAGIC = b"RQVECTORS\0"
FORMAT = 1
HNSW_M = 32
# Measured with benchmarks/bench_retrieval.py --index-sweep on 13,971 SciFact passages:
# efSearch 128 finds 99.9% of the exact top 10 in 0.24 ms; efConstruction 200 vs 40 gains
# little there but costs 2.3x the build time, kept for the large collections HNSW serves.
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128  # raised to k when more results are asked for
# Exact search of one query on one thread: 3.3 ms at 50k vectors, 6.6 ms at 100k, 13 ms at
# 200k (d=384, 2-core CI machine), while an HNSW graph takes ~0.55 ms per vector to build
# and loses a little recall. Exact search stays cheaper overall up to about here.
DEFAULT_HNSW_ABOVE = 200_000
# Not measured at that size: memory arithmetic. Flat float32 vectors at d=384 take 1.5 KB each and
# an HNSW graph ~0.26 KB more, so 5M passages need ~9 GB of RAM, about what a 16 GB laptop can
# spare; past that only compressed codes (~40 B) fit. No queue today comes near it, so nothing
# built today changes.
DEFAULT_COMPRESSED_ABOVE = 5_000_000
# PQ's 256 centroids per sub-quantiser need ~39 training points each; below this exact search
# is cheap anyway, so a smaller collection asked to be compressed is kept flat.
MIN_COMPRESSED = 10_000
KINDS = ("flat", "hnsw", "ivfpq")


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    """A FAISS index from int64 ids to unit vectors; ``search`` returns (D, I) like FAISS."""

    def __init__(self, index, kind: str, dim: int, meta: Mapping[str, Any] | None = None,
                 threads: int = 0, ef_search: int = HNSW_EF_SEARCH, exact: np.ndarray | None = None,
                 nprobe: int = 0, recall: float | None = None):
        self._index = index
        self._exact = exact  # ivfpq: the exact vectors the shortlist is re-ranked by (memory-mapped)
        self.nprobe = nprobe
        self.recall = recall  # ivfpq: recall@10 against exact search measured when nprobe was chosen
        self.kind = kind
        self.dim = dim
        self.meta = dict(meta or {})
        self.threads = threads or usable_cpus()
        self.ef_search = ef_search

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, kind: str = "auto",
              hnsw_above: int = DEFAULT_HNSW_ABOVE, meta: Mapping[str, Any] | None = None,
              threads: int = 0, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION,
              ef_search: int = HNSW_EF_SEARCH, compressed_above: int = DEFAULT_COMPRESSED_ABOVE,
              nlist: int = 0, timings: dict | None = None) -> "VectorIndex":
        vectors = _as_matrix(vectors)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors but {len(ids)} ids")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")
        if kind == "auto":
            kind = "ivfpq" if len(vectors) > compressed_above else "hnsw" if len(vectors) > hnsw_above else "flat"
        if kind not in KINDS:
            raise RqError(f"vector index kind {kind!r}: use auto, {', '.join(KINDS)}")
        if kind == "ivfpq" and len(vectors) < MIN_COMPRESSED:
            kind = "flat"
        faiss = _faiss()
        dim = vectors.shape[1]
        if kind == "ivfpq":
            from rq.index.compressed import build_ivfpq

            if not np.array_equal(ids, np.arange(len(ids))):
                # The exact vectors are found by position; rq numbers passages 0..n-1 anyway.
                raise ValueError("a compressed index takes ids 0..n-1 in order")
            threads = threads or usable_cpus()
            index, nprobe, recall = build_ivfpq(vectors, threads, nlist=nlist, timings=timings)
            return cls(index, kind, dim, meta, threads, ef_search, exact=vectors, nprobe=nprobe, recall=recall)
        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        else:
            inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
        built = cls(faiss.IndexIDMap(inner), kind, dim, meta, threads, ef_search)
        # Building an HNSW graph parallelises well; use every thread we were given.
        faiss.omp_set_num_threads(built.threads)
        if len(vectors):
            built._index.add_with_ids(vectors, ids)
        return built

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: scores D (float32) and ids I (int64, -1 where fewer than k exist)."""
        queries = _as_matrix(queries)
        if queries.shape[1] != self.dim:
            raise IndexMismatchError(
                f"query vectors have dimension {queries.shape[1]}, the index {self.dim}: "
                "it was built with another model"
            )
        if k <= 0 or len(queries) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        faiss = _faiss()
        # One query is not parallelised by FAISS, and OpenMP start-up costs more than it
        # saves (faiss #2823): one thread for one query, all of them for a batch.
        faiss.omp_set_num_threads(1 if len(queries) == 1 else self.threads)
        if self.kind == "hnsw":
            faiss.downcast_index(self._index.index).hnsw.efSearch = max(self.ef_search, k)
        if self.ntotal == 0:
            return (np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64))
        if self.kind == "ivfpq":
            from rq.index.compressed import search_reranked

            D, I = search_reranked(self._index, self._exact, queries, k)
            D[I < 0] = -np.inf
            return D, I
        D, I = self._index.search(queries, k)
        D[I < 0] = -np.inf  # FAISS pads with -FLT_MAX; -inf says "no result" plainly
        return D, I

    def matrix(self) -> np.ndarray | None:
        """Every stored vector as one (n, d) array, row i the vector of id i (no copy), for an
        exact index; None for HNSW. Scoring all of them is one matrix product: at 20,000
        passages a few times faster than a FAISS search for all 20,000."""
        if self.kind != "flat" or self.ntotal == 0:
            return None
        faiss = _faiss()
        inner = faiss.downcast_index(self._index.index)
        return faiss.rev_swig_ptr(inner.get_xb(), self.ntotal * self.dim).reshape(self.ntotal, self.dim)

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (rows, float32). rq adds passages with ids 0..n-1 in
        order, so an id is also the vector's position in the inner FAISS index."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        if self._exact is not None:
            return np.asarray(self._exact[ids], dtype=np.float32)
        inner = _faiss().downcast_index(self._index.index)
        return np.stack([inner.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def save(self, path: Path) -> None:
        faiss = _faiss()
        extra: dict[str, Any] = {}
        if self.kind == "ivfpq":
            from rq.index.compressed import save_parts

            extra = {"parts": save_parts(self._index, self._exact, Path(path)), "nprobe": self.nprobe,
                     "recall_at_10": self.recall}
            payload = np.zeros(0, np.uint8)
        else:
            payload = faiss.serialize_index(self._index)  # uint8 numpy array
        header = json.dumps({
            "format": FORMAT, "kind": self.kind, "dim": self.dim, "ntotal": self.ntotal,
            "payload_bytes": int(payload.nbytes), "crc32": zlib.crc32(payload) & 0xFFFFFFFF,
            "meta": self.meta, **extra,
        }, sort_keys=True).encode()
        atomic_write_bytes(Path(path), [MAGIC, struct.pack("<I", len(header)), header, payload.tobytes()])

    @classmethod
    def load(cls, path: Path, dim: int | None = None, threads: int = 0,
             ef_search: int = HNSW_EF_SEARCH) -> "VectorIndex":
        """Read an index saved by ``save``; ``dim`` (if given) must match the file's."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"{path}: no vector index here; build the index first") from None
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot read vector index ({exc.strerror})") from None
        header, payload = _split(path, data)
        if header.get("format") != FORMAT:
            raise IndexMismatchError(f"{path}: vector index format {header.get('format')}, rq reads {FORMAT}; rebuild it")
        if dim is not None and header["dim"] != dim:
            raise IndexMismatchError(
                f"{path}: vectors of dimension {header['dim']}, the model gives {dim}; rebuild the index"
            )
        if header["kind"] == "ivfpq":
            from rq.index.compressed import load_parts

            index, exact = load_parts(path, header)
            return cls(index, "ivfpq", header["dim"], header.get("meta"), threads, ef_search, exact=exact,
                       nprobe=int(header.get("nprobe", 1)), recall=header.get("recall_at_10"))
        faiss = _faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise ArchiveError(f"{path}: vector index is corrupt ({str(exc).splitlines()[0]}); rebuild it") from None
        if index.ntotal != header["ntotal"] or index.d != header["dim"]:
            raise ArchiveError(f"{path}: vector index does not match its header; rebuild it")
        return cls(index, header["kind"], header["dim"], header.get("meta"), threads, ef_search)


def _split(path: Path, data: bytes) -> tuple[dict, bytes]:
    """Header and payload of a saved index, checked for truncation and corruption."""
    corrupt = ArchiveError(f"{path}: vector index is truncated or corrupt; rebuild it")
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise corrupt
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start : start + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise corrupt from None
    payload = memoryview(data)[start + size :]
    if not isinstance(header, dict) or payload.nbytes != header.get("payload_bytes"):
        raise corrupt
    if zlib.crc32(payload) & 0xFFFFFFFF != header.get("crc32"):
        raise corrupt
    if not all(isinstance(header.get(key), int) for key in ("dim", "ntotal")) or "kind" not in header:
        raise corrupt
    return header, payload


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    """float32, C-contiguous, 2-D: what FAISS expects (a single vector becomes one row)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {array.shape}")
    return np.ascontiguousarray(array)
