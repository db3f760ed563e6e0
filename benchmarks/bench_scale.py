#!/usr/bin/env python
"""rq's vector index at scale: 1,000,000 passage vectors of dimension 384.

    python benchmarks/bench_scale.py [--n 1000000] [--queries 1000] [--kind auto|ivfpq]
                                     [--index-dir benchmarks/out/scifact-index] [--out benchmarks/out]
    python benchmarks/bench_scale.py --ray [--docs 300] [--pages 240]   (bench_ray.py: --engine ray)

Data: the passage vectors of a built rq index (--index-dir; by default the SciFact index the
retrieval benchmark ships: 19,154 passages of 5,183 abstracts, all-MiniLM-L6-v2), each repeated
with Gaussian noise (sigma 0.03 per dimension, renormalised: a copy sits at cosine ~0.86 from
its source and ~0.74 from its siblings, about where real neighbouring passages sit: the median
nearest neighbour of a SciFact passage is at 0.88). Two query sets of 1,000: real SciFact
queries (train then test, no noise, embedded as `rq search` embeds a query and cached under
--out) and held-out noisy copies drawn like the data but not indexed.

--kind ivfpq measures the compressed index instead (rq.index.compressed, shipped defaults):
build time split into training, each shard's add and the nprobe choice, the bytes of each file,
a cold load in a fresh process with the files evicted from the page cache, recall@10 and
single-query latency with re-ranking, an nprobe sweep, and a 10M projection from those costs.
The nprobe the build picks is chosen on its own 200 calibration queries (perturbed stored
vectors); the recall reported here is on the two query sets above, which it never saw.

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

from rq.threads import usable_cpus  # noqa: E402
from rq.index.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VectorIndex  # noqa: E402
from rq.settings import Settings  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
# A built rq index whose passage vectors seed the data (the retrieval benchmark's SciFact index).
INDEX_DIR = OUT / "scifact-index"
SCIFACT = ROOT.parent / "shared" / "data" / "beir" / "scifact"
TEN_M = 10_000_000
TRAIN_QUERIES = 809  # SciFact's train queries come first in real_queries(); set there


def base_vectors(index_dir: Path) -> np.ndarray:
    """Every passage vector of the rq index in ``index_dir``, as rq stores them (unit, float32)."""
    index = VectorIndex.load(index_dir / "vectors.faiss")
    matrix = index.matrix()
    if matrix is None:
        matrix = index.vectors_of(np.arange(index.ntotal))
    return np.array(matrix, dtype=np.float32)


def real_queries(scifact: Path, out: Path) -> np.ndarray:
    """SciFact's train then test queries, each embedded as `rq search` embeds one (encode_query),
    cached in ``out``."""
    from rq.index.encoders.factory import make_embedder

    global TRAIN_QUERIES
    order = []
    for split in ("train", "test"):
        lines = (scifact / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        order += [line.split("\t")[0] for line in lines]
        if split == "train":
            TRAIN_QUERIES = len(dict.fromkeys(order))
    order = list(dict.fromkeys(order))
    texts = {}
    with open(scifact / "queries.jsonl") as fh:
        for line in fh:
            row = json.loads(line)
            texts[row["_id"]] = row["text"]
    order = [q for q in order if q in texts]
    embedder = make_embedder(Settings(), notice=lambda line: print(line, file=sys.stderr))
    cache = out / f"scale-queries-{embedder.model_id.replace('/', '_')}-{len(order)}.npy"
    if cache.exists():
        return np.load(cache)
    vectors = np.stack([embedder.encode_query(texts[q]) for q in order]).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


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


def exact_one_query_ms(data: np.ndarray, queries: np.ndarray) -> list[float]:
    """Wall ms of an exact top-10 search (faiss.knn) for each query alone, on one thread."""
    import faiss

    faiss.omp_set_num_threads(1)
    times = []
    for q in queries:
        t = time.perf_counter()
        faiss.knn(q[None, :], data, 10, metric=faiss.METRIC_INNER_PRODUCT)
        times.append((time.perf_counter() - t) * 1000)
    return times


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


def timed_queries(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like single_queries, with each query's CPU time on its thread too: on a machine shared with
    other work, wall time includes waiting for a core, CPU time does not."""
    for q in queries[:20]:  # warm-up
        index.search(q, k)
    found = np.empty((len(queries), min(k, 10)), dtype=np.int64)
    ms, cpu = np.empty(len(queries)), np.empty(len(queries))
    for i, q in enumerate(queries):
        start, start_cpu = time.perf_counter(), time.thread_time()
        _, ids = index.search(q, k)
        ms[i], cpu[i] = (time.perf_counter() - start) * 1000, (time.thread_time() - start_cpu) * 1000
        found[i] = ids[0][:10]
    return found, ms, cpu


def describe_cpu(cpu: np.ndarray) -> dict:
    return {"cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
            "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3)}


def describe(ms: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run(base: np.ndarray, real_queries: np.ndarray, n: int, n_queries: int, sigma: float, threads: int,
        ef_sweep: list[int], m: int, ef_construction: int, ef_search: int, index_file: Path | None) -> dict:
    settings = Settings()
    real_queries = real_queries[:n_queries]
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

    flat_ms = exact_one_query_ms(data, real_queries[:50])
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


def evict(paths: list[Path]) -> None:
    """Drop ``paths`` from the page cache (POSIX_FADV_DONTNEED: no root needed for clean pages),
    so the next read comes from the disk as after a reboot."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_mb(paths: list[Path]) -> float | None:
    """MB of ``paths`` in the page cache now (util-linux fincore), None where it is missing."""
    import shutil
    import subprocess

    if not shutil.which("fincore"):
        return None
    done = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, paths)],
                          capture_output=True, text=True)
    if done.returncode:
        return None
    return round(sum(int(x) for x in done.stdout.split()) / 2**20, 1)


def cold_load_child(path: Path, queries_file: Path, cold: bool) -> dict:
    """In a fresh process: what a cold `rq search` pays for the vector index. Python, numpy,
    FAISS and rq are imported first (the same for every kind); then the index files are evicted
    from the page cache (``cold``), loaded as rq loads them, and queried once, then 200 times."""
    import faiss  # noqa: F401

    from rq.index.compressed import PARTS, side

    files = [path, *(side(path, s) for s in PARTS)]
    queries = np.load(queries_file)
    rss0 = rss_mb()
    if cold:
        evict(files)
    in_cache = cached_mb(files)
    start = time.perf_counter()
    index = VectorIndex.load(path, dim=queries.shape[1])
    load_s = time.perf_counter() - start
    rss_load = rss_mb()
    start = time.perf_counter()
    index.search(queries[0], 10)
    first_ms = (time.perf_counter() - start) * 1000
    ms = []
    for q in queries[1:201]:
        start = time.perf_counter()
        index.search(q, 10)
        ms.append((time.perf_counter() - start) * 1000)
    return {"cold": cold, "cached_mb_before_load": in_cache, "load_s": round(load_s, 4),
            "rss_load_mb": round(rss_load - rss0, 1), "first_query_ms": round(first_ms, 2),
            "next_200": describe(np.array(ms)), "rss_after_201_queries_mb": round(rss_mb() - rss0, 1),
            "cached_mb_after": cached_mb(files), "nprobe": index.nprobe}


def cold_load(path: Path, queries: np.ndarray, cold: bool) -> dict:
    import subprocess

    qfile = path.with_name("cold-queries.npy")
    np.save(qfile, queries[:201])
    done = subprocess.run([sys.executable, __file__, "--cold-load", str(path), *(["--cold"] if cold else [])],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    qfile.unlink()
    if done.returncode:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def assign_s(data: np.ndarray, nlist: int, threads: int, rows: int) -> float:
    """Seconds to assign ``rows`` vectors to the nearest of ``nlist`` centroids (the coarse step of
    adding a shard, the part of it that grows with nlist), with random unit centroids."""
    import faiss

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(5)
    centroids = rng.standard_normal((nlist, data.shape[1]), dtype=np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    quantizer = faiss.IndexFlatIP(data.shape[1])
    quantizer.add(centroids)
    start = time.perf_counter()
    quantizer.search(np.ascontiguousarray(data[:rows]), 1)
    return time.perf_counter() - start


def run_compressed(base: np.ndarray, real_queries: np.ndarray, n: int, n_queries: int, sigma: float,
                   threads: int, index_file: Path | None, nprobes: list[int]) -> dict:
    import gc
    import math

    import faiss

    from rq.index import compressed

    print(f"# rq compressed vector index (ivfpq) at {n:,} x {base.shape[1]}\n")
    print(f"source: {len(base):,} SciFact passage vectors, sigma {sigma}; threads {threads}; "
          f"shipped defaults: IVF{compressed.plan_nlist(n)},PQ{compressed.PQ_M}, shards of "
          f"{compressed.SHARD_ROWS:,}, re-rank {compressed.RERANK_CANDIDATES}, target recall "
          f"{compressed.TARGET_RECALL}; load average {os.getloadavg()[0]:.2f}", flush=True)
    start = time.perf_counter()
    data = noisy_copies(base, n, sigma, seed=1)
    held_out = noisy_copies(base, n_queries, sigma, seed=2, offset=7919)  # not in the index
    gen_s = time.perf_counter() - start
    print(f"generated in {gen_s:.1f} s; data {data.nbytes / 2**20:.0f} MB", flush=True)
    start = time.perf_counter()
    # Every SciFact query, train and test apart: the re-ranking depth was chosen on train queries.
    sets = {"real_train": real_queries[:TRAIN_QUERIES], "real_test": real_queries[TRAIN_QUERIES:],
            "held_out": held_out}
    truth = {name: exact_top(data, q, 10, threads) for name, q in sets.items()}
    truth_s = time.perf_counter() - start
    print(f"exact top-10 of {sum(map(len, sets.values()))} queries (faiss.knn, {threads} threads) in {truth_s:.1f} s",
          flush=True)
    flat_ms = exact_one_query_ms(data, real_queries[:20])

    results = {"kind": "ivfpq", "n": n, "dim": int(base.shape[1]), "sigma": sigma, "threads": threads,
               "base_vectors": len(base), "generate_s": round(gen_s, 1),
               "exact_one_query_ms": round(float(np.median(flat_ms)), 2), "load_average": os.getloadavg()}
    if index_file is not None:
        path = index_file
        folder = None
    else:
        folder = Path(tempfile.mkdtemp(prefix="rq-scale-", dir=os.environ.get("RQ_SCALE_TMP")))
        path = folder / "vectors.faiss"
    timings: dict = {}
    saved = path.with_name("build.json")  # the build's figures, kept beside a kept index
    if path.exists():  # the same seeds give the same vectors: an index saved by an earlier run fits them
        print(f"reusing {path} (built by an earlier run)", flush=True)
        if saved.exists():
            timings = json.loads(saved.read_text())
            results.update(timings.pop("results"))
    else:
        rss_before = rss_mb()
        start = time.perf_counter()
        index = VectorIndex.build(data, np.arange(n, dtype=np.int64), kind="ivfpq", threads=threads,
                                  timings=timings)
        build_s = time.perf_counter() - start
        shard_s = timings["shard_s"]
        print(f"built {index.kind} in {build_s:.1f} s: train {timings['train_s']:.1f} s on "
              f"{timings['train_rows']:,} rows (nlist {timings['nlist']}), add {sum(shard_s):.1f} s in "
              f"{len(shard_s)} shards (mean {np.mean(shard_s):.2f} s), nprobe choice {timings['nprobe_s']:.1f} s "
              f"-> nprobe {index.nprobe} (calibration recall@10 {index.recall:.4f}); "
              f"RSS +{rss_mb() - rss_before:.0f} MB",
              flush=True)
        start = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - start
        results.update(build_s=round(build_s, 1), train_s=round(timings["train_s"], 1),
                       train_rows=timings["train_rows"], nlist=timings["nlist"], pq_m=timings["pq_m"],
                       add_s=round(sum(shard_s), 1), shard_rows=timings["shard_rows"],
                       shard_s=[round(x, 2) for x in shard_s], nprobe_choice_s=round(timings["nprobe_s"], 1),
                       nprobe=index.nprobe, calibration_recall=round(index.recall, 4),
                       rss_build_mb=round(rss_mb() - rss_before), save_s=round(save_s, 1))
        saved.write_text(json.dumps({**timings, "results": {k: results[k] for k in results if k not in
                                                              ("load_average", "generate_s")}}))
        del index
        gc.collect()
    sizes = {p.name[len(path.name):] or "header": p.stat().st_size
             for p in (path, compressed.side(path, ".ivf"), compressed.side(path, ".npy"))}
    results["file_bytes"] = sizes
    results["ivf_bytes_per_vector"] = round(sizes[".ivf"] / n, 1)
    results["all_bytes_per_vector"] = round(sum(sizes.values()) / n, 1)
    print("files: " + ", ".join(f"{k} {v / 2**20:,.1f} MB" for k, v in sizes.items())
          + f"; .ivf {results['ivf_bytes_per_vector']} B/vector, all files {results['all_bytes_per_vector']} B/vector",
          flush=True)

    results["cold_load"] = cold_load(path, held_out, cold=True)
    results["warm_load"] = cold_load(path, held_out, cold=False)
    for name in ("cold_load", "warm_load"):
        r = results[name]
        print(f"{name} (fresh process): load {r['load_s'] * 1000:.1f} ms, RSS +{r['rss_load_mb']} MB, first query "
              f"{r['first_query_ms']:.1f} ms, next 200 p50 {r['next_200']['p50_ms']} / "
              f"p99 {r['next_200']['p99_ms']} ms, RSS after +{r['rss_after_201_queries_mb']} MB; "
              f"in page cache before load {r['cached_mb_before_load']} MB, after {r['cached_mb_after']} MB", flush=True)

    index = VectorIndex.load(path, dim=base.shape[1], threads=threads)
    results["nprobe"] = index.nprobe
    rows = []
    # k=10, and k=300: the depth the engine asks each ranker for past 20,000 passages (PASSAGE_DEPTH).
    for k in (10, 300):
        for name, queries in sets.items():
            found, ms, cpu = timed_queries(index, queries, k)
            row = {"nprobe": index.nprobe, "queries": name, "k": k,
                   "recall@10": round(recall_at(found, truth[name]), 4), **describe(ms), **describe_cpu(cpu)}
            rows.append(row)
            print(f"  shipped nprobe {index.nprobe} {name:>8} k={k}: recall@10 {row['recall@10']:.4f}  "
                  f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms (CPU p50 {row['cpu_p50_ms']:.2f} "
                  f"p99 {row['cpu_p99_ms']:.2f} ms)", flush=True)
    results["searches"] = rows
    ivf = faiss.extract_index_ivf(index._index)
    sweep = []
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        for name, queries in sets.items():
            found, ms, cpu = timed_queries(index, queries, 10)
            row = {"nprobe": nprobe, "queries": name, "k": 10,
                   "recall@10": round(recall_at(found, truth[name]), 4), **describe(ms), **describe_cpu(cpu)}
            sweep.append(row)
            print(f"  sweep nprobe {nprobe:>4} {name:>8}: recall@10 {row['recall@10']:.4f}  "
                  f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms (CPU p99 {row['cpu_p99_ms']:.2f} ms)",
                  flush=True)
    ivf.nprobe = index.nprobe
    # Without re-ranking (PQ distances only), at the shipped nprobe: what the exact vectors buy.
    exact, index._exact = index._exact, None
    for name, queries in sets.items():
        found, ms = single_queries(index, queries, 10)
        row = {"nprobe": index.nprobe, "queries": name, "k": 10, "rerank": False,
               "recall@10": round(recall_at(found, truth[name]), 4), **describe(ms)}
        sweep.append(row)
        print(f"  no re-rank nprobe {index.nprobe} {name:>8}: recall@10 {row['recall@10']:.4f}  "
              f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms", flush=True)
    index._exact = exact
    results["sweep"] = sweep

    if timings:
        # 10M by projection. Training: the PQ codebooks train on a capped sample (FAISS
        # subsamples to 256 points per centroid), the same at any n; the coarse k-means grows
        # with rows x nlist (k-means iterations are each a rows x nlist distance matrix).
        # Adding: a shard's cost is measured at 1M's nlist; the coarse assignment is the part
        # that grows with nlist, measured here at both nlists on one shard of real data.
        nlist10 = compressed.plan_nlist(TEN_M)
        rows10 = min(TEN_M, max(64 * nlist10, 65_536))
        shard_rows = timings["shard_rows"]
        a_now = assign_s(data, timings["nlist"], threads, shard_rows)
        a_10m = assign_s(data, nlist10, threads, shard_rows)
        shard10 = float(np.mean(timings["shard_s"])) + a_10m - a_now
        shards10 = math.ceil(TEN_M / shard_rows)
        # The PQ codebooks' share of the training, measured alone on the sample size FAISS caps them at.
        pq = faiss.ProductQuantizer(base.shape[1], timings["pq_m"], 8)
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        pq.train(np.ascontiguousarray(data[: min(n, 256 * 256)]))
        pq_s = time.perf_counter() - start
        coarse_s = max(0.0, timings["train_s"] - pq_s)
        train10 = pq_s + coarse_s * (rows10 * nlist10) / (timings["train_rows"] * timings["nlist"])
        nprobe10 = timings["nprobe_s"] * TEN_M / n  # dominated by the exact top 10 of 200 queries
        ivf10 = (sizes[".ivf"] - timings["nlist"] * base.shape[1] * 4) / n * TEN_M + nlist10 * base.shape[1] * 4
        npy10 = TEN_M * base.shape[1] * 4 + 128
        proj = {"n": TEN_M, "nlist": nlist10, "train_rows": rows10, "shards": shards10,
                "assign_one_shard_s_at_1m_nlist": round(a_now, 2), "assign_one_shard_s_at_10m_nlist": round(a_10m, 2),
                "shard_s": round(shard10, 2), "add_s": round(shard10 * shards10),
                "pq_train_s": round(pq_s, 1), "coarse_train_s": round(coarse_s, 1),
                "train_s": round(train10), "nprobe_choice_s": round(nprobe10),
                "build_s": round(train10 + shard10 * shards10 + nprobe10),
                "ivf_mb": round(ivf10 / 2**20), "npy_mb": round(npy10 / 2**20),
                "build_input_ram_mb": round(TEN_M * base.shape[1] * 4 / 2**20),
                "search_ram_note": "quantisers in memory (centroids nlist x 1.5 KB + PQ tables), "
                                   "inverted lists and exact vectors mapped: only the pages queries touch"}
        results["projection_10m"] = proj
        print(f"10M PROJECTION (not measured): nlist {nlist10}, train ~{proj['train_s']:,} s on "
              f"{rows10:,} rows, {shards10} shards x {shard10:.1f} s = {proj['add_s']:,} s, nprobe choice "
              f"~{proj['nprobe_choice_s']} s: build ~{proj['build_s']:,} s; .ivf ~{proj['ivf_mb']:,} MB, "
              f".npy {proj['npy_mb']:,} MB; the build holds the {proj['build_input_ram_mb']:,} MB of vectors",
              flush=True)
    if folder is not None:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    results["peak_rss_mb"] = round(peak_rss_mb())
    results["load_average_end"] = os.getloadavg()
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
    parser.add_argument("--kind", choices=("auto", "ivfpq"), default="auto",
                        help="auto: the index rq's automatic choice builds (flat/HNSW); ivfpq: the compressed one")
    parser.add_argument("--nprobe-sweep", default="8,16,32,64",
                        help="ivfpq: nprobes measured beside the chosen one")
    parser.add_argument("--index-dir", type=Path, default=INDEX_DIR,
                        help="a built rq index whose passage vectors seed the data")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="BEIR SciFact folder (queries)")
    parser.add_argument("--cold-load", type=Path, default=None, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_load is not None:
        print(json.dumps(cold_load_child(args.cold_load, args.cold_load.with_name("cold-queries.npy"), args.cold)))
        return 0
    if not (args.index_dir / "vectors.faiss").exists():
        print(f"missing {args.index_dir / 'vectors.faiss'}: build an rq index there (benchmarks/shipped.py) "
              "or pass --index-dir", file=sys.stderr)
        return 2
    base = base_vectors(args.index_dir)
    queries = real_queries(args.scifact, args.out)
    threads = args.threads or usable_cpus()
    if args.kind == "ivfpq":
        results = run_compressed(base, queries, args.n, args.queries, args.sigma, threads, args.index_file,
                                 [int(x) for x in args.nprobe_sweep.split(",") if x])
    else:
        results = run(base, queries, args.n, args.queries, args.sigma, threads,
                      [int(x) for x in args.ef_sweep.split(",") if x], args.m, args.ef_construction,
                      args.ef_search, args.index_file)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"scale-{'' if args.kind == 'auto' else args.kind + '-'}{args.n}.json"
    target.write_text(json.dumps(results, indent=2))
    print(f"results in {target}")
    return 0


if __name__ == "__main__":
    if "--ray" in sys.argv[1:]:
        # --engine ray against a local run (throughput with 1 and 2 workers, equality): bench_ray.py.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_ray import main as ray_main

        ray_main([a for a in sys.argv[1:] if a != "--ray"])
        sys.exit(0)
    sys.exit(main())
