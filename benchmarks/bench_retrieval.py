#!/usr/bin/env python
"""Retrieval quality and speed of the shipped `rq search`, on BEIR SciFact and Cranfield.

    python benchmarks/bench_retrieval.py [--sweep] [--calibrate] [--speed] [--compare-fp32]

Everything runs through benchmarks/shipped.py: the corpus queued and archived as rq ingest
stores it, the index built by ``build_index`` with the shipped defaults (ONNX int8 passages,
the per-resource title/note/section passage), queries ranked by the ``SearchEngine`` that
`rq search` uses, every passage scored.

1. The shipped path: SciFact train and test, Cranfield (held out), hybrid / dense / keyword,
   nDCG@10 and Recall@100 (pytrec_eval cross-check when it is installed).
2. ``--sweep``: each search lever (a setting of the shipped path) against BASELINE, the
   shipped defaults before issue 13: train and test nDCG@10, the paired difference on train
   and its standard error, and Cranfield. Settings are chosen on train only: a lever is kept
   when its train gain is more than twice its paired standard error.
3. ``--calibrate``: refits rq.rank.calibration's table on train (top 10 per query) and prints
   its reliability on test.
4. ``--speed``: warm p50/p99 of ``search_with`` (encoding included) on the SciFact index, and
   a cold `rq search` process on it.
5. ``--compare-fp32``: a comparison row, not the shipped path: the same index built with
   ``embed_backend = "torch"`` (sentence-transformers fp32 for passages and queries).
6. ``--cold-before SRC``: cold `rq search` on the embedded default, an older rq's src/ against
   this one; ``--index-sweep``: exact against HNSW search on the SciFact passage vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shipped import (  # noqa: E402  (shipped puts src/ on the path)
    DATA, OUT, Dataset, cross_check, evaluate, load_beir, loadavg, ndcg_at, open_engine, rank_runs,
    shipped_index, warm_latency, cold_search,
)

__all__ = ["Dataset", "evaluate", "load_beir", "top"]  # bench_speed imports these from here

MODES = ("hybrid", "dense", "keyword")
# The shipped defaults before issue 13: the sweep's levers are measured against these.
BASELINE = {"dense_window_words": 0, "hybrid_alpha": 0.8}
BENCH_SPEED_INDEX = OUT.parent / "scifact-index", OUT.parent / "scifact-queue.md"
COLD_QUERY = "does vitamin D deficiency increase the risk of tuberculosis"

# Query-time levers: settings changed on an open engine. (label, settings)
QUERY_LEVERS = [
    ("alpha 0.7", {"hybrid_alpha": 0.7}),
    ("alpha 0.9", {"hybrid_alpha": 0.9}),
    ("min-max normalisation, alpha 0.6", {"fusion_norm": "minmax", "hybrid_alpha": 0.6}),
    ("z-score normalisation, alpha 0.5", {"fusion_norm": "zscore", "hybrid_alpha": 0.5}),
    ("absolute scores (cosine, BM25 / query idf), alpha 0.5", {"fusion_norm": "absolute", "hybrid_alpha": 0.5}),
    ("absolute scores, alpha 0.4", {"fusion_norm": "absolute", "hybrid_alpha": 0.4}),
    ("reciprocal rank fusion (k 60)", {"fusion": "rrf", "hybrid_alpha": 0.5}),
    ("fusion depth 100 resources per ranker", {"fusion_depth": 100}),
    ("fusion depth 20", {"fusion_depth": 20}),
    ("fuse passages, then roll up", {"fusion_level": "passage"}),
    ("document vector 0.1 beside best passage", {"doc_weight": 0.1}),
    ("document vector 0.3", {"doc_weight": 0.3}),
    ("RM3 0.3, 3 docs, 10 terms", {"rm3_weight": 0.3, "prf_docs": 3}),
    ("RM3 0.5, 5 docs, 20 terms", {"rm3_weight": 0.5, "prf_terms": 20}),
    ("Rocchio 0.5, 3 docs", {"rocchio_weight": 0.5, "prf_docs": 3}),
    ("Rocchio 1.0, 5 docs", {"rocchio_weight": 1.0}),
    ("RM3 0.3 + Rocchio 0.5, 3 docs", {"rm3_weight": 0.3, "rocchio_weight": 0.5, "prf_docs": 3}),
]
# Index-time levers: another index folder each (vectors seeded from the default one), then
# query-time settings on it. (label, index settings, query settings)
INDEX_LEVERS = [
    ("BM25 title line x2", {"keyword_title_weight": 2}, {}),
    ("BM25 title line x3", {"keyword_title_weight": 3}, {}),
    ("dense on 64-word windows inside passages", {"dense_window_words": 64}, {}),
    ("dense on 64-word windows, alpha 0.85", {"dense_window_words": 64}, {"hybrid_alpha": 0.85}),
    ("dense on 64-word windows, alpha 0.875", {"dense_window_words": 64}, {"hybrid_alpha": 0.875}),
    ("dense on 64-word windows, alpha 0.9", {"dense_window_words": 64}, {"hybrid_alpha": 0.9}),
]


def top(scores: np.ndarray, k: int, positive_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best entries of a score vector, best first (bench_speed's exact-search check)."""
    idx = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(idx) > k:
        idx = idx[np.argpartition(-scores[idx], k - 1)[:k]]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx.astype(np.int64), scores[idx]


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(f"{c:.4f}" if isinstance(c, float) else str(c) for c in row) + " |")
    return "\n".join(lines)


def per_query(runs: dict, qrels: dict) -> np.ndarray:
    judged = sorted(q for q, rels in qrels.items() if any(g > 0 for g in rels.values()))
    return np.array([ndcg_at(runs.get(q, {}), qrels[q]) for q in judged])


# --------------------------------------------------------------------------- 1. the shipped path


def shipped_table(corpora: dict, results: dict) -> None:
    rows = []
    for (name, split), (corpus, engine) in corpora.items():
        queries, qrels = corpus.ds.split(split)
        for mode in MODES:
            runs = rank_runs(engine, corpus, queries, mode)
            m = evaluate(runs, qrels)
            results.setdefault("shipped", {})[f"{name} {split} {mode}"] = m
            rows.append([f"{name} {split}", mode, m["ndcg@10"], m["recall@100"], m["queries"]])
            print(f"  {name} {split} {mode}: {cross_check(runs, qrels, m)}", flush=True)
    print("\n" + md_table(["set", "mode", "nDCG@10", "Recall@100", "queries"], rows), flush=True)


# --------------------------------------------------------------------------- 2. the sweep


def sweep(scifact: Dataset, cranfield: Dataset, seeds: dict, results: dict) -> None:
    """Every lever against BASELINE (rq before issue 13), on indexes of their own under
    benchmarks/out/shipped/baseline/ and .../variants/."""
    engines = {}
    for ds in (scifact, cranfield):
        corpus = shipped_index(ds, out=OUT / "baseline", seed=seeds[ds.name],
                               notice=lambda m: print(f"    {m}", flush=True), **BASELINE)
        engines[ds.name] = (corpus, open_engine(corpus))
    try:
        _sweep(scifact, cranfield, engines, results)
    finally:
        for _, engine in engines.values():
            engine.close()


def _sweep(scifact: Dataset, cranfield: Dataset, engines: dict, results: dict) -> None:
    sci, sci_engine = engines["scifact"]
    cran, cran_engine = engines["cranfield"]
    base_sci, base_cran = sci_engine.settings, cran_engine.settings
    splits = {split: scifact.split(split) for split in ("train", "test")}
    cran_split = cranfield.split("test")

    def score(corpus, engine, split_queries, qrels):
        runs = rank_runs(engine, corpus, split_queries)
        return evaluate(runs, qrels)["ndcg@10"], per_query(runs, qrels)

    base = {split: score(sci, sci_engine, *splits[split]) for split in splits}
    base_c = score(cran, cran_engine, *cran_split)[0]
    rows = [["before issue 13 (whole passages, alpha 0.8)", base["train"][0], "", base["test"][0], base_c]]
    table = {"before": {"train": base["train"][0], "test": base["test"][0], "cranfield": base_c}}

    def row(label: str, train, test, cran_value) -> None:
        diff = train[1] - base["train"][1]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        kept = "kept" if diff.mean() > 2 * se else ""
        rows.append([label, train[0], f"{diff.mean():+.4f} ± {se:.4f} {kept}".strip(), test[0],
                     cran_value if cran_value is not None else "–"])
        table[label] = {"train": train[0], "train_diff": float(diff.mean()), "train_se": se,
                        "test": test[0], "cranfield": cran_value}
        print(f"  {label}: train {train[0]:.4f} ({diff.mean():+.4f} ± {se:.4f}) test {test[0]:.4f} "
              f"cranfield {cran_value if cran_value is not None else '-'} (load {loadavg()})", flush=True)

    for label, changes in QUERY_LEVERS:
        sci_engine.settings, cran_engine.settings = base_sci.replace(**changes), base_cran.replace(**changes)
        row(label, score(sci, sci_engine, *splits["train"]), score(sci, sci_engine, *splits["test"]),
            score(cran, cran_engine, *cran_split)[0])
    sci_engine.settings, cran_engine.settings = base_sci, base_cran
    built: dict[str, tuple] = {}
    try:
        for label, changes, query in INDEX_LEVERS:
            name = "-".join(f"{k}{v}" for k, v in changes.items())
            if name not in built:
                pair = []
                for ds, (corpus, _) in ((scifact, engines["scifact"]), (cranfield, engines["cranfield"])):
                    variant = shipped_index(ds, out=OUT / "variants" / name, seed=(corpus.index_dir, corpus.queue_path),
                                            notice=lambda m: print(f"    {m}", flush=True), **{**BASELINE, **changes})
                    pair.append((variant, open_engine(variant)))
                built[name] = tuple(pair)
            (variant, engine), (cran_variant, cran_engine_v) = built[name]
            engine.settings = variant.settings.replace(**{**BASELINE, **changes, **query})
            cran_engine_v.settings = cran_variant.settings.replace(**{**BASELINE, **changes, **query})
            row(label, score(variant, engine, *splits["train"]), score(variant, engine, *splits["test"]),
                score(cran_variant, cran_engine_v, *cran_split)[0])
    finally:
        for pair in built.values():
            for _, engine in pair:
                engine.close()
    results["sweep"] = table
    print("\n" + md_table(["lever (SciFact nDCG@10)", "train", "train diff ± paired s.e.", "test",
                           "Cranfield"], rows), flush=True)


# --------------------------------------------------------------------------- 3. calibration


def calibration(corpus, engine, results: dict) -> None:
    from rq.rank.calibration import coverage

    def features(split: str, mode: str, k: int = 10):
        """(best passage cosine, coverage) of each of the top ``k`` results, and whether it is relevant:
        the same computation as rq.rank.search._resource_hits."""
        queries, qrels = corpus.ds.split(split)
        x, y = [], []
        for qid, text in queries.items():
            ranked = engine.rank(text, mode)
            n = min(k, len(ranked))
            covered = coverage(engine.loaded.keywords, text, ranked.passages[:n])
            for i in range(n):
                doc = corpus.doc_of[engine.resource_ids[int(ranked.rows[i])]]
                x.append((np.nan_to_num(ranked.dense[i]), covered[i]))
                y.append(1.0 if qrels[qid].get(doc, 0) > 0 else 0.0)
        return np.array(x), np.array(y)

    models, reliability = {}, {}
    for mode in MODES:
        columns = [1] if mode == "keyword" else [0, 1]
        x, y = features("train", mode)
        w = _logistic(x[:, columns], y)
        coef = [float(w[0]), 0.0, 0.0]
        for j, c in enumerate(columns):
            coef[1 + c] = float(w[1 + j])
        models[mode] = [round(c, 3) for c in coef]
        xt, yt = features("test", mode)
        p = 1.0 / (1.0 + np.exp(-(models[mode][0] + xt @ np.array(models[mode][1:]))))
        bins = []
        for lo, hi in ((0, 0.1), (0.1, 0.2), (0.2, 0.35), (0.35, 0.5), (0.5, 0.7), (0.7, 1.01)):
            m = (p >= lo) & (p < hi)
            bins.append({"range": f"{int(lo * 100)}-{min(int(hi * 100), 100)}", "results": int(m.sum()),
                         "predicted": float(p[m].mean()) if m.any() else None,
                         "observed": float(yt[m].mean()) if m.any() else None})
        reliability[mode] = bins
        print(f"\n{mode}: train base rate {y.mean():.3f}, model {models[mode]}; test reliability:")
        print(md_table(["estimate", "results", "mean estimate", "share relevant"],
                       [[b["range"], b["results"], b["predicted"] if b["predicted"] is not None else "–",
                         b["observed"] if b["observed"] is not None else "–"] for b in bins]), flush=True)
    print("\nMODELS = {")
    for mode, coef in models.items():
        print(f'    "{mode}": ({coef[0]}, {coef[1]}, {coef[2]}),')
    print("}")
    results["calibration"] = {"models": models, "reliability_test": reliability}


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Logistic regression by Newton's method, a small ridge for stability: [intercept, weights]."""
    a = np.c_[np.ones(len(x)), x]
    w = np.zeros(a.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-a @ w))
        grad = a.T @ (p - y) + l2 * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


# --------------------------------------------------------------------------- HNSW and thread choices


def index_sweep(pvecs: np.ndarray, qvecs: np.ndarray) -> None:
    """Exact search against HNSW on the index's passage vectors, and exact search cost by size:
    what vectors.py's HNSW_EF_* and hnsw_above rest on."""
    from rq.index.vectors import VectorIndex

    print("\n### Vector index: exact vs HNSW (SciFact passages; recall@10 against exact search)\n")
    exact = VectorIndex.build(pvecs, np.arange(len(pvecs)), kind="flat")
    _, truth = exact.search(qvecs, 10)
    rows = []
    for ef_c in (40, 200):
        start = time.perf_counter()
        hnsw = VectorIndex.build(pvecs, np.arange(len(pvecs)), kind="hnsw", ef_construction=ef_c)
        build_s = time.perf_counter() - start
        for ef_s in (16, 32, 64, 128, 256):
            hnsw.ef_search = ef_s
            _, found = hnsw.search(qvecs, 10)
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
            ms = _single_query_ms(hnsw, qvecs[:200])
            rows.append([ef_c, ef_s, f"{build_s:.1f}", recall, f"{ms:.3f}"])
    print(md_table(["efConstruction", "efSearch", "build s", "recall@10", "ms/query (1 thread)"], rows))

    print("\n### Exact search cost by collection size (tiled SciFact vectors + noise, k=300, one query at a time)\n")
    rng = np.random.default_rng(0)
    rows = []
    for n in (10_000, 50_000, 100_000, 200_000):
        reps = -(-n // len(pvecs))
        big = np.tile(pvecs, (reps, 1))[:n] + rng.normal(0, 0.02, (n, pvecs.shape[1])).astype(np.float32)
        big /= np.linalg.norm(big, axis=1, keepdims=True)
        flat = VectorIndex.build(big, np.arange(n), kind="flat")
        row = [n]
        for threads in (1, 2):
            row.append(f"{_single_query_ms(flat, qvecs[:100], threads=threads, k=300):.2f}")
        start = time.perf_counter()
        hnsw = VectorIndex.build(big, np.arange(n), kind="hnsw")
        row.append(f"{time.perf_counter() - start:.1f}")
        row.append(f"{_single_query_ms(hnsw, qvecs[:100], k=300):.2f}")
        rows.append(row)
        del big, flat, hnsw
    print(md_table(["vectors", "flat ms (1 thread)", "flat ms (2 threads)", "HNSW build s", "HNSW ms"], rows))


def _single_query_ms(index, qvecs: np.ndarray, threads: int | None = None, k: int = 10) -> float:
    import faiss

    times = []
    for q in qvecs:
        if threads is None:
            start = time.perf_counter()
            index.search(q, k)
        else:  # bypass the wrapper's thread choice to measure the alternative
            faiss.omp_set_num_threads(threads)
            start = time.perf_counter()
            index._index.search(q[None, :], k)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


# --------------------------------------------------------------------------- cold start, before and after


def cold_default(old_src: Path, repeat: int) -> dict:
    """Cold `rq search "real-time recsys" -k 5` on the embedded default queue, this checkout's rq
    against the one whose src/ is ``old_src`` (e.g. `git archive <commit> src | tar -x -C /tmp/old`),
    alternating, each on its own copy of an index built on an untimed first run."""
    import statistics
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    sides = {"before": Path(old_src).resolve(), "after": root / "src"}
    tmp = Path(tempfile.mkdtemp(prefix="rq-cold-"))
    cmd = [sys.executable, "-m", "rq", "search", "real-time recsys", "-k", "5"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}
    envs = {side: {**env, "PYTHONPATH": str(src), "RQ_INDEX": str(tmp / side)} for side, src in sides.items()}
    for side in sides:  # untimed: builds each side's index, warms the page cache
        subprocess.run(cmd, env=envs[side], cwd=tmp, capture_output=True, check=True)
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(repeat):
        for side in sides:
            start = time.perf_counter()
            subprocess.run(cmd, env=envs[side], cwd=tmp, capture_output=True, check=True)
            times[side].append(time.perf_counter() - start)
    return {side: {"median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3),
                   "max_s": round(max(t), 3)} for side, t in times.items()} | {"runs": repeat, "load": loadavg()}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sweep", action="store_true", help="each search lever against the settings before issue 13")
    parser.add_argument("--calibrate", action="store_true", help="refit rq.rank.calibration on train")
    parser.add_argument("--speed", action="store_true", help="warm p50/p99 and a cold rq search")
    parser.add_argument("--compare-fp32", action="store_true", help="the torch fp32 comparison row")
    parser.add_argument("--cold-before", type=Path, help="src/ of an older rq: cold search on the embedded "
                        "default, before against after")
    parser.add_argument("--repeat", type=int, default=9, help="cold runs of each side (--cold-before)")
    parser.add_argument("--index-sweep", action="store_true", help="exact vs HNSW on the SciFact passages")
    args = parser.parse_args(argv)
    beir = args.data / "beir"
    if not (beir / "scifact" / "corpus.jsonl").exists():
        print(f"no BEIR data under {beir}; pass --data", file=sys.stderr)
        return 2
    results: dict = {"cpus": os.cpu_count(), "load_start": loadavg()}
    say = lambda m: print(f"  {m}", flush=True)  # noqa: E731
    print(f"# rq retrieval benchmark: the shipped path\n\n{os.cpu_count()} CPUs, load {loadavg()}\n", flush=True)

    scifact = load_beir(beir / "scifact", ["train", "test"])
    cranfield = load_beir(beir / "cranfield", ["test"])
    # Cached vectors are copied from any index of the same corpus built before (none is needed).
    seeds = {ds.name: [(OUT / sub / ds.name / "index", OUT / sub / ds.name / "queue.md")
                       for sub in ("variants/dense_window_words64", "baseline", ".")] for ds in (scifact, cranfield)}
    seeds["scifact"].append(BENCH_SPEED_INDEX)
    started = time.perf_counter()
    sci = shipped_index(scifact, seed=seeds["scifact"], notice=say)
    cran = shipped_index(cranfield, seed=seeds["cranfield"], notice=say)
    results["indexes"] = {c.ds.name: {"passages": c.report.passages, "resources": c.report.resources,
                                      "embedded": c.report.embedded, "seconds": round(c.report.seconds, 1)}
                          for c in (sci, cran)}
    print(f"indexes ready in {time.perf_counter() - started:.0f} s: {results['indexes']}", flush=True)
    engines = {"scifact": (sci, open_engine(sci)), "cranfield": (cran, open_engine(cran))}

    print("\n## The shipped path\n", flush=True)
    shipped_table({("SciFact", "train"): engines["scifact"], ("SciFact", "test"): engines["scifact"],
                   ("Cranfield", "test"): engines["cranfield"]}, results)

    if args.sweep:
        print("\n## Levers (chosen on SciFact train; test and Cranfield reported, never used to choose)\n",
              flush=True)
        sweep(scifact, cranfield, seeds, results)
    if args.calibrate:
        print("\n## Calibration of the relevance estimate (fitted on train, checked on test)", flush=True)
        calibration(sci, engines["scifact"][1], results)
    if args.speed:
        print("\n## Speed (SciFact index)\n", flush=True)
        queries = list(scifact.split("test")[0].values())
        engine = open_engine(sci, cached=False)
        try:
            results["warm"] = warm_latency(engine, queries)
        finally:
            engine.close()
        results["cold"] = cold_search(sci, COLD_QUERY)
        print(f"warm search_with, k=10, {results['warm']['n']} test queries: p50 {results['warm']['p50_ms']} ms, "
              f"p99 {results['warm']['p99_ms']} ms (load {results['warm']['load']})")
        print(f"cold `rq search` on the SciFact index: median {results['cold']['median_s']} s "
              f"(min {results['cold']['min_s']}, max {results['cold']['max_s']}, {results['cold']['runs']} runs, "
              f"load {results['cold']['load']})", flush=True)
    if args.cold_before:
        results["cold_default"] = cold_default(args.cold_before, args.repeat)
        print(f"\ncold `rq search \"real-time recsys\" -k 5`, embedded default: {results['cold_default']}", flush=True)
    if args.compare_fp32:
        print("\n## Comparison (not the shipped path): torch fp32 passages and queries\n", flush=True)
        exact = shipped_index(scifact, out=OUT / "compare-torch-fp32", notice=say, embed_backend="torch")
        engine = open_engine(exact)
        try:
            shipped_table({("SciFact torch fp32", "test"): (exact, engine)}, results)
        finally:
            engine.close()
    if args.index_sweep:
        engine = engines["scifact"][1]
        qvecs = np.stack([engine.embedder.encode_query(q) for q in scifact.split("test")[0].values()])
        index_sweep(np.array(engine.loaded.vectors.matrix()), qvecs)
    for _, engine in engines.values():
        engine.close()
    results["load_end"] = loadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "retrieval.json").write_text(json.dumps(results, indent=2))
    print(f"\nresults in {OUT / 'retrieval.json'}; load at the end {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
