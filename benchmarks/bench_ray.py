#!/usr/bin/env python
"""`--engine ray` against a local run, on this machine: throughput with 1 and 2 Ray workers, and
whether the Ray run gives the same vectors and the same top-10 (issue 17).

    python benchmarks/bench_scale.py --ray [--docs 300] [--pages 240]
    python benchmarks/bench_ray.py [--docs 300] [--pages 240] [--out benchmarks/out]

Everything goes through the shipped functions with the shipped defaults (ONNX int8 passages,
dense windows), only ``engine`` and ``ray_workers`` changed:

* index: the first ``--docs`` SciFact documents as a queue whose archive holds their text
  (benchmarks/shipped.py, as `rq ingest` stores a page), indexed by ``build_index`` from an empty
  vector cache three times: local (the default, 2 threads), Ray with 1 worker, Ray with 2. Texts
  embedded per second of the whole build (Ray's start and the actors' model loading included,
  and separately the embedding alone, as rq's progress callback times it).
* equality: every cached vector of the Ray run against the local run's (cosine), and the top 10
  of the 300 SciFact test queries through ``SearchEngine.rank`` (what `rq search` orders by) on
  both indexes.
* ingest: ``--pages`` SciFact documents served as HTML pages by a real HTTP server on four
  loopback hosts (127.0.0.1-4), fetched and extracted by ``ingest`` (politeness delay 0, so the
  work and not the waiting is measured): local, Ray with 1 worker, Ray with 2.

A local Ray with num_cpus=2 is started once; 1 and 2 workers are set by ``ray_workers``.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the harness the tests use: tests/support

from shipped import DATA, Dataset, load_beir, loadavg, open_engine, shipped_index  # noqa: E402

RUNS = (("local", {}), ("ray, 1 worker", {"engine": "ray", "ray_workers": 1}),
        ("ray, 2 workers", {"engine": "ray", "ray_workers": 2}))


def subset(ds: Dataset, n: int) -> Dataset:
    return Dataset(ds.name, ds.doc_ids[:n], ds.titles[:n], ds.texts[:n], ds.queries, ds.qrels)


class Timer:
    """rq's progress callback, noting when embedding starts and ends."""

    def __init__(self):
        self.first = self.last = None

    def __call__(self, done, total, what):
        now = time.monotonic()
        if what == "embedding":
            self.first = self.first or now
            self.last = now


def index_runs(ds: Dataset, root: Path) -> dict:
    results, corpora = {}, {}
    for name, overrides in RUNS:
        timer = Timer()
        started = time.monotonic()
        corpus = shipped_index(ds, out=root / name.replace(" ", "").replace(",", "-"), progress=timer, **overrides)
        seconds = time.monotonic() - started
        report = corpus.report
        results[name] = {"texts": report.embedded, "seconds": round(seconds, 1),
                         "texts_per_s": round(report.embedded / seconds, 1),
                         "embedding_s": round(timer.last - timer.first, 1) if timer.first else None,
                         "load": loadavg()}
        if timer.first and timer.last > timer.first:
            results[name]["embedding_texts_per_s"] = round(report.embedded / (timer.last - timer.first), 1)
        corpora[name] = corpus
        print(name, results[name], flush=True)
    return {"runs": results, "equality": equality(corpora, ds)}


def cached_vectors(corpus) -> dict[str, np.ndarray]:
    """Every vector the build cached in the corpus's archive (passages, title/note entries, windows)."""
    import sqlite3

    from rq.index.manifest import read_manifest

    key = read_manifest(corpus.index_dir).vectors
    conn = sqlite3.connect(f"file:{corpus.index_dir / 'archive.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT hash, vector FROM embeddings WHERE model = ?", (key,)).fetchall()
    finally:
        conn.close()
    return {h: np.frombuffer(v, dtype=np.float32) for h, v in rows}


def equality(corpora: dict, ds: Dataset) -> dict:
    local = cached_vectors(corpora["local"])
    queries, _ = ds.split("test")
    out = {}
    with open_engine(corpora["local"]) as engine:
        local_top = {q: engine.rank(text, "hybrid").rows[:10].tolist() for q, text in queries.items()}
    for name in ("ray, 1 worker", "ray, 2 workers"):
        other = cached_vectors(corpora[name])
        shared = sorted(set(local) & set(other))
        cosines = np.array([float(local[h] @ other[h]) for h in shared])
        with open_engine(corpora[name]) as engine:
            same = sum(engine.rank(text, "hybrid").rows[:10].tolist() == local_top[q] for q, text in queries.items())
        out[name] = {"vectors": len(shared), "missing": len(set(local) ^ set(other)),
                     "cosine_min": round(float(cosines.min()), 6), "cosine_mean": round(float(cosines.mean()), 7),
                     "bit_identical": int(sum(np.array_equal(local[h], other[h]) for h in shared)),
                     "queries": len(queries), "same_top10": same}
        print(name, out[name], flush=True)
    return out


def ingest_runs(ds: Dataset, pages: int, root: Path, latency: float = 0.0, hosts: int = 4) -> dict:
    from support.http import FixtureServer, static
    from support.queues import write_queue
    from support.routes import page, slow

    from rq.ingest.pipeline import ingest
    from rq.settings import Settings

    servers = [FixtureServer(f"127.0.0.{i}").start() for i in range(1, hosts + 1)]
    items = []
    for i in range(pages):
        body = page(ds.titles[i] or f"Document {i}", *[p for p in ds.texts[i].split(". ") if p])
        route = slow(latency, static(body)) if latency else static(body)  # a far server answers late
        items.append((ds.titles[i] or f"Document {i}", servers[i % hosts].route(f"/doc/{i}", route)))
    results = {}
    try:
        for name, overrides in RUNS:
            queue = write_queue(root / f"ingest-{len(results)}.md", items)
            settings = Settings(queue=queue, index=root / f"ingest-{len(results)}", allow_private=True,
                                fetch_host_delay=0.0, probe_soft_404=False, **overrides)
            started = time.monotonic()
            summary = ingest(settings)
            seconds = time.monotonic() - started
            results[name] = {"pages": summary.fetched, "failed": sum(summary.failed.values()),
                             "seconds": round(seconds, 1), "pages_per_s": round(summary.fetched / seconds, 1),
                             "load": loadavg()}
            print(name, results[name], flush=True)
    finally:
        for server in servers:
            server.stop()
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="SciFact documents indexed per run")
    parser.add_argument("--pages", type=int, default=240, help="pages served and ingested per run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds each page takes to answer in the ingest runs (a far server)")
    parser.add_argument("--hosts", type=int, default=4, help="loopback hosts serving the pages (127.0.0.1-N)")
    parser.add_argument("--only", choices=("index", "ingest"), default=None, help="run one part only")
    args = parser.parse_args(argv)
    import ray

    from rq.index.encoders.store import export_once
    from rq.settings import Settings

    ds = subset(load_beir(DATA / "beir" / "scifact", ["test"]), max(args.docs, args.pages))
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        # Before Ray starts, so that its workers share this run's model export.
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        export_once(Settings())  # the machine's ONNX export, made before any run is timed
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        result = {"machine": f"{os.cpu_count()} CPUs", "docs": args.docs, "pages": args.pages,
                  "ray": ray.__version__,
                  "latency_s": args.latency, "hosts": args.hosts}
        if args.only != "ingest":
            result["index"] = index_runs(subset(ds, args.docs), Path(tmp) / "index")
        if args.only != "index":
            result["ingest"] = ingest_runs(ds, args.pages, Path(tmp), args.latency, args.hosts)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "bench_ray.json" if not args.only else f"bench_ray-{args.only}-latency{args.latency:g}.json"
    (args.out / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
