#!/usr/bin/env python
"""rq's vector index at scale: 1,000,000 passage vectors of dimension 384.

    python benchmarks/bench_scale.py [--n 1000000] [--queries 1000] [--out benchmarks/out]

Data: the 13,971 SciFact passage embeddings that bench_retrieval.py caches under
benchmarks/out (all-MiniLM-L6-v2, 128-word passages), each repeated with Gaussian noise
(sigma 0.03 per dimension, renormalised: a copy sits at cosine ~0.86 from its source and
~0.74 from its siblings, about where real neighbouring passages sit: the median nearest
neighbour of a SciFact passage is at 0.88). Two query sets of 1,000: real SciFact queries
(train then test, no noise) and held-out noisy copies drawn like the data but not indexed.

The index is the one rq's automatic choice builds (VectorIndex.build(kind="auto") with
the defaults of rq.settings), then searched one query at a time as `rq search` does
(FAISS on one thread), with k=10 and with the depth search.py asks for past 20,000
passages (k=1000). Ground truth is exact inner-product search (faiss.knn). Reported:
build time, memory (RSS growth and index file bytes), save and load time of the index
file, single-query p50/p99 and recall@10, and an efSearch sweep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import proc_status_mb  # noqa: E402
from rq.settings import Settings
from rq.index.threads import usable_cpus
from rq.index.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VectorIndex

OUT = ROOT / "benchmarks" / "out"
# bench_retrieval.py's cache: SciFact corpus in 128-word passages (13,971) and the queries.
PASSAGES = "emb-all-MiniLM-L6-v2@aef37025ea82-e5cb91549d7b1d24.npy"
QUERY_FILES = ("emb-all-MiniLM-L6-v2@aef37025ea82-fc4f1a7b4c871ea3.npy",  # train, 809
               "emb-all-MiniLM-L6-v2@aef37025ea82-a5600559da39fb05.npy")  # test, 300


def rss_mb() -> float:
    return proc_status_mb("VmRSS")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def noisy_copies(base: np.ndarray, n: int, sigma: float, seed: int, offset: int = 0) -> np.ndarray:
    """``n`` vectors: base[(offset + i) % len(base)] + N(0, sigma^2), renormalised; float32, in chunks."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for lo in range(0, n, 65_536):
        hi = min(n, lo + 65_536)
        rows = base[(offset + np.arange(lo, hi)) % len(base)]
        chunk = rows + rng.standard_normal(rows.shape, dtype=np.float32) * np.float32(sigma)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[lo:hi] = chunk
    return out


def exact_top(data: np.ndarray, queries: np.ndarray, k: int, threads: int) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(threads)
    _, ids = faiss.knn(queries, data, k, metric=faiss.METRIC_INNER_PRODUCT)
    return ids


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def single_queries(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids found and milliseconds per query, one query per call as `rq search` makes it."""
    for q in queries[:20]:  # warm-up
        index.search(q, k)
    found = np.empty((len(queries), min(k, 10)), dtype=np.int64)
    ms = np.empty(len(queries))
    for i, q in enumerate(queries):
        start = time.perf_counter()
        _, ids = index.search(q, k)
        ms[i] = (time.perf_counter() - start) * 1000
        found[i] = ids[0][:10]
    return found, ms


def describe(ms: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run(n: int, n_queries: int, sigma: float, threads: int, ef_sweep: list[int], m: int, ef_construction: int,
        ef_search: int, index_file: Path | None) -> dict:
    import faiss

    settings = Settings()
    base = np.load(OUT / PASSAGES).astype(np.float32)
    real_queries = np.concatenate([np.load(OUT / f) for f in QUERY_FILES]).astype(np.float32)[:n_queries]
    print(f"# rq vector index at {n:,} x {base.shape[1]}\n")
    print(f"source: {len(base):,} SciFact passage vectors, sigma {sigma}; threads {threads}; "
          f"auto picks hnsw above {settings.hnsw_above:,}; HNSW M={m} efConstruction={ef_construction} "
          f"efSearch={ef_search}; load average {os.getloadavg()[0]:.2f}", flush=True)

    rss0 = rss_mb()
    start = time.perf_counter()
    data = noisy_copies(base, n, sigma, seed=1)
    held_out = noisy_copies(base, n_queries, sigma, seed=2, offset=7919)  # not in the index
    gen_s = time.perf_counter() - start
    rss_data = rss_mb()
    print(f"generated in {gen_s:.1f} s; data {data.nbytes / 2**20:.0f} MB (RSS +{rss_data - rss0:.0f} MB)", flush=True)

    start = time.perf_counter()
    truth = {"real": exact_top(data, real_queries, 10, threads), "held_out": exact_top(data, held_out, 10, threads)}
    truth_s = time.perf_counter() - start
    print(f"exact top-10 of {2 * n_queries} queries (faiss.knn, {threads} threads) in {truth_s:.1f} s", flush=True)

    faiss.omp_set_num_threads(1)
    flat_ms = []
    for q in real_queries[:50]:
        t = time.perf_counter()
        faiss.knn(q[None, :], data, 10, metric=faiss.METRIC_INNER_PRODUCT)
        flat_ms.append((time.perf_counter() - t) * 1000)
    print(f"exact search, one query on one thread: median {np.median(flat_ms):.1f} ms", flush=True)

    rss_before = rss_mb()
    reuse = index_file is not None and index_file.exists()
    if reuse:  # the same seeds give the same vectors: an index saved by an earlier run fits them
        build_s = None
        rss_index = None
        path = index_file
    else:
        start = time.perf_counter()
        index = VectorIndex.build(data, np.arange(n, dtype=np.int64), kind=settings.vector_index,
                                  hnsw_above=settings.hnsw_above, threads=threads, m=m,
                                  ef_construction=ef_construction, ef_search=ef_search)
        build_s = time.perf_counter() - start
        rss_index = rss_mb() - rss_before
        print(f"built {index.kind} in {build_s:.1f} s ({n / build_s:,.0f} vectors/s); RSS +{rss_index:.0f} MB",
              flush=True)
        if index_file is not None:
            path = index_file
        else:
            folder = Path(tempfile.mkdtemp(prefix="rq-scale-", dir=os.environ.get("RQ_SCALE_TMP")))
            path = folder / "vectors.faiss"
        start = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - start
        del index
    file_bytes = path.stat().st_size
    start = time.perf_counter()
    index = VectorIndex.load(path, dim=base.shape[1], threads=threads, ef_search=ef_search)
    load_s = time.perf_counter() - start
    if reuse:
        save_s = None
        print(f"reused {path} (built by an earlier run)", flush=True)
    print(f"index file {file_bytes / 2**20:.0f} MB ({file_bytes / n:.0f} B/vector): "
          f"{'' if save_s is None else f'save {save_s:.1f} s, '}load {load_s:.1f} s "
          "(read + CRC32 + deserialise, what each `rq search` process pays)", flush=True)
    if index_file is None:
        path.unlink()
        path.parent.rmdir()

    results = {"n": n, "dim": int(base.shape[1]), "sigma": sigma, "threads": threads, "kind": index.kind,
               "m": m, "ef_construction": ef_construction, "ef_search_default": ef_search,
               "hnsw_above": settings.hnsw_above, "generate_s": round(gen_s, 1),
               "build_s": None if build_s is None else round(build_s, 1),
               "rss_index_mb": None if rss_index is None else round(rss_index),
               "index_file_mb": round(file_bytes / 2**20), "bytes_per_vector": round(file_bytes / n),
               "save_s": None if save_s is None else round(save_s, 2), "load_s": round(load_s, 2),
               "exact_one_query_ms": round(float(np.median(flat_ms)), 2), "load_average": os.getloadavg()}

    rows = []
    sweep = sorted(set(ef_sweep) | {ef_search}) if index.kind == "hnsw" else [ef_search]
    for ef in sweep:
        index.ef_search = ef
        for name, queries in (("real", real_queries), ("held_out", held_out)):
            found, ms = single_queries(index, queries, 10)
            row = {"ef_search": ef, "queries": name, "k": 10, "recall@10": round(recall_at(found, truth[name]), 4),
                   **describe(ms)}
            rows.append(row)
            print(f"  efSearch {ef:>4} {name:>8} k=10: recall@10 {row['recall@10']:.4f}  p50 {row['p50_ms']:.2f} ms"
                  f"  p99 {row['p99_ms']:.2f} ms", flush=True)
    # The depth `rq search` asks for past 20,000 passages (search.py: k=1000, so efSearch=1000),
    # and a shallower one for comparison.
    index.ef_search = ef_search
    for depth in (1000, 300):
        for name, queries in (("real", real_queries), ("held_out", held_out)):
            found, ms = single_queries(index, queries, depth)
            row = {"ef_search": max(ef_search, depth), "queries": name, "k": depth,
                   "recall@10": round(recall_at(found, truth[name]), 4), **describe(ms)}
            rows.append(row)
            print(f"  depth k={depth} {name:>8}: recall@10 {row['recall@10']:.4f}  p50 {row['p50_ms']:.2f} ms"
                  f"  p99 {row['p99_ms']:.2f} ms", flush=True)
    results["searches"] = rows
    results["peak_rss_mb"] = round(peak_rss_mb())
    results["load_average_end"] = os.getloadavg()

    print("\n" + md_table(["efSearch", "queries", "k", "recall@10", "p50 ms", "p99 ms"],
                          [[r["ef_search"], r["queries"], r["k"], f"{r['recall@10']:.4f}", f"{r['p50_ms']:.2f}",
                            f"{r['p99_ms']:.2f}"] for r in rows]))
    print(f"\npeak RSS {results['peak_rss_mb']} MB; load average {os.getloadavg()}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sigma", type=float, default=0.03)
    parser.add_argument("--threads", type=int, default=0, help="build and ground-truth threads (0: all usable)")
    parser.add_argument("--ef-sweep", default="16,32,64,128,256")
    parser.add_argument("--m", type=int, default=HNSW_M)
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--ef-search", type=int, default=HNSW_EF_SEARCH)
    parser.add_argument("--index-file", type=Path, default=None,
                        help="save the built index here and keep it; if it exists, load it instead of building")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not (OUT / PASSAGES).exists():
        print(f"missing {OUT / PASSAGES}: run benchmarks/bench_retrieval.py first", file=sys.stderr)
        return 2
    results = run(args.n, args.queries, args.sigma, args.threads or usable_cpus(),
                  [int(x) for x in args.ef_sweep.split(",") if x], args.m, args.ef_construction, args.ef_search,
                  args.index_file)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"scale-{args.n}.json"
    target.write_text(json.dumps(results, indent=2))
    print(f"results in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
