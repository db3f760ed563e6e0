"""A compressed vector index for collections past what flat or HNSW vectors hold in memory.

At d=384 a flat float32 vector is 1,536 bytes and an HNSW graph adds ~256 more: 10M passages
would need ~18 GB of RAM. Here each vector is a product-quantised code of PQ_M bytes (of its
residual to its list's centroid) in an inverted file (IVF), plus FAISS's 8-byte id: ~40 bytes a
vector, 400 MB at 10M. The codes only shortlist candidates; the shortlist is re-ranked by the exact vectors,
kept on disk in a .npy file read memory-mapped, so only the rows of the shortlist are read.

Files (``path`` is the vector index file the manifest names):
- ``path``: rq's JSON header (kind, dim, count, nprobe and the recall it was chosen on), no payload;
- ``path`` + ".ivf": the FAISS index as FAISS writes it, so it can be opened with IO_FLAG_MMAP
  (the inverted lists are then mapped, not read: a cold load touches only the small quantisers);
- ``path`` + ".npy": the exact vectors, row i the vector of id i.
All three are recorded in the manifest with size and sha256 (rq.index.integrity); loading also
checks each side file's size against the header, so a truncated one is refused.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rq.errors import ArchiveError

PARTS = (".ivf", ".npy")  # side files, named after the header file
PQ_M = 32  # code bytes a vector: 384 dims in 32 sub-vectors of 12, 8 bits each
TRAIN_SEED = 1234
SHARD_ROWS = 131_072  # vectors added per step: bounds the copies FAISS makes while encoding
# The shortlist re-ranked by exact vectors: a PQ32 code orders the near neighbours only roughly
# (alone it finds 24% of the exact top 10 of real SciFact queries at 1M vectors), so the true
# top 10 is looked for among many more candidates. Chosen on the 809 SciFact train queries at 1M
# (benchmarks/bench_scale.py --kind ivfpq, RESULTS.md, issue 17): 200 candidates plateau at 0.92
# recall@10 whatever nprobe, 500 reach 0.967 and 1000 0.980 at nprobe 32, for ~1 ms more CPU a
# query (1000 rows of 1.5 KB read from the memory-mapped file and one small matrix product).
RERANK_CANDIDATES = 1000
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# nprobe is the smallest reaching this on the calibration queries. They are easier than real
# queries (0.9915 there at nprobe 32 where the SciFact train queries get 0.980; 0.983 at nprobe 8
# where those get 0.939), hence a target well above the 0.95 goal.
TARGET_RECALL = 0.99
CALIBRATION_QUERIES = 200


def plan_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: ~4 sqrt(n) (FAISS's guideline is 4-16 sqrt(n)), with at
    least 39 training points per centroid so k-means does not warn and fit noise."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_ivfpq(vectors: np.ndarray, threads: int, nlist: int = 0, pq_m: int = PQ_M,
                train_rows: int = 0, shard_rows: int = SHARD_ROWS,
                timings: dict | None = None) -> tuple[Any, int, float]:
    """Train an IVF + PQ index on a seeded sample of ``vectors``, add every vector shard by
    shard (FAISS ids = row numbers), and choose nprobe on a measured recall. Returns the index,
    nprobe and the recall@10 measured with it. ``timings``, when given, is filled with the seconds
    of each step (train, each shard's add, the nprobe choice): what benchmarks/bench_scale.py
    projects a larger build from."""
    import faiss

    clock = {} if timings is None else timings

    faiss.omp_set_num_threads(threads)
    n, dim = vectors.shape
    nlist = nlist or plan_nlist(n)
    # At least 8 dimensions per sub-quantiser: FAISS trains PQ codebooks of 2-4 dimensions ~30x
    # slower (measured: PQ32 on 64 dims 32 s, PQ8 0.5 s), and 384 / 32 = 12 is well above it.
    pq_m = max(1, min(pq_m, dim // 8))
    if dim % pq_m:
        raise ValueError(f"dimension {dim} is not a multiple of {pq_m} sub-quantisers")
    # "np": no polysemous training. index_factory turns it on for IVF-PQ, and at 32 sub-quantisers
    # its simulated annealing alone ran >10 minutes on 2 cores whatever n is (seen at n = 50,000);
    # it only reorders codes for Hamming-distance filtering (polysemous_ht), which rq never uses.
    # No OPQ rotation either: at d=384 its training (50 rounds of PQ training and a 384x384 SVD on
    # up to 65,536 rows) took >5 minutes at n = 50,000 on 2 cores, and >3.5 minutes with 10 rounds,
    # while plain PQ32 trained with the coarse quantiser in 50 s at 100,000 and the shortlist
    # re-ranked by exact vectors reached 0.94 recall@10 at nprobe 32 (0.3 ms a query): the exact
    # re-ranking, not a better code, is what recall rests on (benchmarks/RESULTS.md, issue 17).
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{pq_m}np", faiss.METRIC_INNER_PRODUCT)
    # 64 points per centroid trains the coarse quantiser well (FAISS's k-means caps at 256 anyway);
    # a seeded sample keeps two builds of the same vectors identical.
    rows = min(n, train_rows or max(64 * nlist, 65_536))
    sample = np.random.default_rng(TRAIN_SEED).choice(n, rows, replace=False) if rows < n else np.arange(n)
    started = time.perf_counter()
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    clock.update(nlist=nlist, pq_m=pq_m, train_rows=int(rows), train_s=time.perf_counter() - started,
                 shard_rows=shard_rows, shard_s=[])
    for start in range(0, n, shard_rows):
        stop = min(n, start + shard_rows)
        started = time.perf_counter()
        index.add_with_ids(np.ascontiguousarray(vectors[start:stop]), np.arange(start, stop, dtype=np.int64))
        clock["shard_s"].append(time.perf_counter() - started)
    started = time.perf_counter()
    nprobe, recall = choose_nprobe(index, vectors, nlist)
    clock.update(nprobe_s=time.perf_counter() - started, nprobe=nprobe, calibration_recall=recall)
    return index, nprobe, recall


def choose_nprobe(index, vectors: np.ndarray, nlist: int, k: int = 10) -> tuple[int, float]:
    """The smallest nprobe whose re-ranked recall@k against exact search reaches TARGET_RECALL,
    measured on seeded queries made from stored vectors; the largest tried when none does."""
    import faiss

    n = len(vectors)
    rng = np.random.default_rng(TRAIN_SEED + 1)
    count = min(CALIBRATION_QUERIES, n)
    first, second = rng.choice(n, count, replace=False), rng.choice(n, count, replace=False)
    # Each query lies between two random passages, plus noise as long as a vector: its exact top 10
    # falls in more than one inverted list, as a real query's does. A stored vector plus noise
    # alone was too easy: at 1M vectors, where 52 near-copies of each passage sit in one list, it
    # reached 0.99 at nprobe 1, where real SciFact queries found 0.69 of their top 10.
    dim = vectors.shape[1]
    queries = vectors[first] + vectors[second] + rng.normal(0, 1 / math.sqrt(dim), (count, dim)).astype(np.float32)
    queries = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)
    _, truth = faiss.knn(queries, np.ascontiguousarray(vectors), k, metric=faiss.METRIC_INNER_PRODUCT)
    recall, nprobe = 0.0, NPROBES[0]
    for nprobe in [p for p in NPROBES if p <= nlist] or [nlist]:
        _ivf(index).nprobe = nprobe
        _, found = search_reranked(index, vectors, queries, k)
        recall = recall_at(found, truth)
        if recall >= TARGET_RECALL:
            break
    return nprobe, recall


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top k (rows of ``truth``) found in the rows of ``found``."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / k for f, t in zip(found, truth)]))


def search_reranked(index, exact: np.ndarray | None, queries: np.ndarray, k: int,
                    candidates: int = RERANK_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` per query: the PQ shortlist re-scored by the exact vectors when ``exact`` is given."""
    if exact is None:
        return index.search(queries, k)
    shortlist = max(k, candidates)
    _, cand = index.search(queries, shortlist)
    D = np.full((len(queries), k), -np.inf, np.float32)
    I = np.full((len(queries), k), -1, np.int64)
    for row, (query, ids) in enumerate(zip(queries, cand)):
        ids = ids[ids >= 0]
        if not len(ids):
            continue
        # Rows read in file order: fewer page faults on the memory-mapped vectors.
        ids = np.sort(ids)
        scores = np.asarray(exact[ids], dtype=np.float32) @ query
        top = np.argsort(-scores)[:k]
        D[row, :len(top)], I[row, :len(top)] = scores[top], ids[top]
    return D, I


def save_parts(index, exact: np.ndarray, path: Path) -> dict[str, int]:
    """Write the FAISS index and the exact vectors beside ``path``; their sizes, for the header.
    Each is written under a temporary name and renamed, like every rq file."""
    import faiss

    from rq.files import atomic_write_bytes

    sizes = {}
    ivf, npy = side(path, ".ivf"), side(path, ".npy")
    atomic_write_bytes(ivf, [faiss.serialize_index(index).tobytes()])
    sizes[".ivf"] = ivf.stat().st_size
    # The .npy header, then the array's own memory: no second copy of what may be gigabytes.
    exact = np.ascontiguousarray(exact, dtype=np.float32)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(exact))
    atomic_write_bytes(npy, [head.getvalue(), memoryview(exact).cast("B")])
    sizes[".npy"] = npy.stat().st_size
    return sizes


def load_parts(path: Path, header: Mapping[str, Any]) -> tuple[Any, np.ndarray]:
    """The FAISS index (inverted lists memory-mapped) and the exact vectors (memory-mapped)."""
    import faiss

    sizes = header.get("parts") or {}
    for suffix in PARTS:
        part = side(path, suffix)
        try:
            size = part.stat().st_size
        except OSError:
            raise ArchiveError(f"{part}: part of the vector index is missing; rebuild it") from None
        if size != sizes.get(suffix):
            raise ArchiveError(f"{part}: vector index part is truncated or corrupt; rebuild it")
    try:
        index = faiss.read_index(str(side(path, ".ivf")), faiss.IO_FLAG_MMAP)
        exact = np.load(side(path, ".npy"), mmap_mode="r", allow_pickle=False)
        _random_access(exact)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ArchiveError(f"{path}: vector index is corrupt ({str(exc).splitlines()[0]}); rebuild it") from None
    if index.ntotal != header["ntotal"] or index.d != header["dim"] or exact.shape != (header["ntotal"], header["dim"]):
        raise ArchiveError(f"{path}: vector index does not match its header; rebuild it")
    _ivf(index).nprobe = int(header.get("nprobe", 1))
    return index, exact


def _random_access(array: np.ndarray) -> None:
    """Tell the kernel the mapped exact vectors are read at random (MADV_RANDOM): each re-ranked row
    then reads its own page, not a readahead window. Without it a cold `rq search` at 1M vectors
    read ~1.3 GB of the 1.5 GB file within 200 queries (first query 1.2 s, benchmarks/RESULTS.md)."""
    import mmap

    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        try:
            mapped.madvise(mmap.MADV_RANDOM)
        except OSError:  # advice only: a kernel that refuses it still serves the reads
            pass


def side(path: Path, suffix: str) -> Path:
    return Path(path).with_name(Path(path).name + suffix)


def _ivf(index):
    import faiss

    return faiss.extract_index_ivf(index)
