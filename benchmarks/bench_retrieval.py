#!/usr/bin/env python
"""Retrieval quality and speed of rq's search layer on BEIR SciFact and Cranfield.

    python benchmarks/bench_retrieval.py [--data ../shared/data] [--out benchmarks/out]

1. Chunking, BM25 settings and fusion (method, normalisation, alpha) are chosen on
   the SciFact TRAIN queries only; every sweep is printed.
2. The chosen settings are reported on the 300 SciFact TEST queries (nDCG@10,
   Recall@100) for dense, keyword and hybrid, next to dense on whole documents
   truncated by the model (the MTEB protocol, published at 0.6451).
3. The same settings run unchanged on Cranfield (held out: never tuned on).
4. Build time, embedding throughput, warm end-to-end query latency and peak memory.

Corpus embeddings are cached under --out keyed by model id and a hash of the
passage texts, so a re-run only embeds what it has not seen.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rq.index.chunk import split_passages  # noqa: E402
from rq.index.encoders.torch_encoder import Embedder  # noqa: E402
from rq.rank.fusion import aggregate, fuse  # noqa: E402
from rq.index.keyword import KeywordIndex, stemmer_available  # noqa: E402
from rq.index.vectors import VectorIndex  # noqa: E402

DEPTH = 100  # resources kept per ranker before fusion, and scored by Recall@100
PASSAGE_DEPTH = 300  # passages fetched so that ~100 distinct resources remain after roll-up


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    name: str
    doc_ids: list[str]  # resource id i <-> doc_ids[i]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> gain


def load_beir(folder: Path, splits: list[str]) -> Dataset:
    doc_ids, titles, texts = [], [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            doc_ids.append(str(doc["_id"]))
            titles.append(doc.get("title") or "")
            texts.append(doc.get("text") or "")
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split in splits:
        table: dict[str, dict[str, int]] = {}
        with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter="\t")
            next(reader)  # header
            for qid, did, score in reader:
                table.setdefault(qid, {})[did] = int(score)
        qrels[split] = table
    return Dataset(folder.name, doc_ids, titles, texts, queries, qrels)


# --------------------------------------------------------------------------- metrics


def _trec_order(run: dict[str, float]) -> list[str]:
    """trec_eval's ranking: score descending, ties by document id descending."""
    return [d for d, _ in sorted(run.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at(run: dict[str, float], rels: dict[str, int], k: int = 10) -> float:
    """nDCG@k as trec_eval's ndcg_cut (used by BEIR/MTEB): linear gains, log2(rank + 1) discount."""
    ranked = _trec_order(run)[:k]
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(run: dict[str, float], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    ranked = _trec_order(run)[:k]
    return len(relevant.intersection(ranked)) / len(relevant)


def evaluate(runs: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over queries that have a relevant document in the qrels."""
    judged = [q for q, rels in qrels.items() if any(g > 0 for g in rels.values())]
    ndcg = [ndcg_at(runs.get(q, {}), qrels[q]) for q in judged]
    rec = [recall_at(runs.get(q, {}), qrels[q]) for q in judged]
    return {"ndcg@10": float(np.mean(ndcg)), "recall@100": float(np.mean(rec)), "queries": len(judged)}


def cross_check(runs, qrels, ours: dict[str, float]) -> str:
    """Compare with pytrec_eval when it happens to be importable (it is not a dependency)."""
    try:
        import pytrec_eval
    except ImportError:
        return "pytrec_eval not installed: no cross-check"
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    per_query = evaluator.evaluate({q: {d: float(s) for d, s in r.items()} for q, r in runs.items()})
    theirs = np.mean([v["ndcg_cut_10"] for v in per_query.values()])
    rec = np.mean([v["recall_100"] for v in per_query.values()])
    return (f"pytrec_eval nDCG@10 {theirs:.6f} vs ours {ours['ndcg@10']:.6f}; "
            f"Recall@100 {rec:.6f} vs {ours['recall@100']:.6f}")


def to_runs(ds: Dataset, qids: list[str], rankings: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    return {
        q: {ds.doc_ids[int(r)]: float(s) for r, s in zip(ids[:DEPTH], scores[:DEPTH])}
        for q, (ids, scores) in zip(qids, rankings)
    }


# --------------------------------------------------------------------------- passages and embeddings


@dataclass(frozen=True)
class Chunking:
    name: str
    max_words: int | None  # None: the whole document, truncated by the model (MTEB protocol)
    overlap: int = 0


def make_passages(ds: Dataset, chunking: Chunking, embedder: Embedder) -> tuple[list[str], np.ndarray]:
    """Passage texts and passage -> resource array (passages come resource by resource)."""
    passages: list[str] = []
    owner: list[int] = []
    for i, (title, text) in enumerate(zip(ds.titles, ds.texts)):
        if chunking.max_words is None:
            parts = [f"{title} {text}".strip()]
        else:
            parts = split_passages(title, text, chunking.max_words, chunking.overlap,
                                   count_pieces=embedder.count_pieces, max_pieces=embedder.max_pieces)
            parts = parts or [title]  # empty text: the title stands in (rq uses title/note/section)
        passages.extend(parts)
        owner.extend([i] * len(parts))
    return passages, np.asarray(owner, dtype=np.int64)


def embed_cached(embedder: Embedder, texts: list[str], out: Path, label: str) -> tuple[np.ndarray, dict]:
    digest = hashlib.sha256(("\x1e".join([embedder.model_id, *texts])).encode()).hexdigest()[:16]
    stem = out / f"emb-{embedder.model_id.replace('/', '_')}-{digest}"
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.exists() and meta_path.exists():
        return np.load(npy), json.loads(meta_path.read_text())
    print(f"  embedding {len(texts)} texts for {label} (cached afterwards as {npy.name}) ...", flush=True)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.time() - last[0] > 30 or done == total:
            last[0] = time.time()
            print(f"    {done}/{total}", flush=True)

    start = time.perf_counter()
    vectors = embedder.encode(texts, progress=progress)
    seconds = time.perf_counter() - start
    meta = {"label": label, "texts": len(texts), "seconds": seconds, "model_id": embedder.model_id}
    out.mkdir(parents=True, exist_ok=True)
    np.save(npy, vectors)
    meta_path.write_text(json.dumps(meta))
    return vectors, meta


# --------------------------------------------------------------------------- rankers on precomputed scores


def dense_resource_scores(query_vecs: np.ndarray, passage_vecs: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Exact max-passage cosine of every resource for every query, shape (queries, resources)."""
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    out = np.empty((len(query_vecs), len(starts)), dtype=np.float32)
    for lo in range(0, len(query_vecs), 256):
        sims = query_vecs[lo : lo + 256] @ passage_vecs.T
        out[lo : lo + 256] = np.maximum.reduceat(sims, starts, axis=1)
    return out


def top(scores: np.ndarray, k: int, positive_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(idx) > k:
        idx = idx[np.argpartition(-scores[idx], k - 1)[:k]]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx.astype(np.int64), scores[idx]


def keyword_resource_scores(index: KeywordIndex, queries: list[str], owner: np.ndarray | None, n_res: int) -> np.ndarray:
    """BM25 of every resource (max over its passages when the index holds passages)."""
    out = np.zeros((len(queries), n_res), dtype=np.float32)
    for i, q in enumerate(queries):
        s = index.score_all(q)
        if owner is None:
            out[i] = s
        else:
            np.maximum.at(out[i], owner, s)
    return out


def fused_rankings(dense: np.ndarray, keyword: np.ndarray, **fusion) -> list[tuple[np.ndarray, np.ndarray]]:
    rankings = []
    for d_row, k_row in zip(dense, keyword):
        rankings.append(fuse(top(d_row, DEPTH), top(k_row, DEPTH, positive_only=True), **fusion))
    return rankings


def score_matrix_rankings(matrix: np.ndarray, positive_only: bool = False):
    return [top(row, DEPTH, positive_only) for row in matrix]


# --------------------------------------------------------------------------- sweeps on train


FUSIONS = (
    [{"method": "convex", "norm": n, "alpha": round(a, 2)} for n in ("tmm", "minmax", "zscore")
     for a in np.arange(0.1, 0.95, 0.05)]
    + [{"method": "rrf", "rrf_k": k, "alpha": round(a, 2)} for k in (10, 30, 60, 100)
       for a in (0.3, 0.4, 0.5, 0.6, 0.7)]
)
BM25_GRID = [
    {"k1": k1, "b": b, "stopwords": sw, "stem": stem}
    for stem in ((False, True) if stemmer_available() else (False,))
    for sw in (True, False)  # with or without rq.words.STOPWORDS
    for k1, b in ((0.9, 0.4), (1.2, 0.75), (1.5, 0.75))
]


def label(fusion: dict) -> str:
    if fusion["method"] == "rrf":
        return f"rrf k={fusion['rrf_k']} alpha={fusion['alpha']}"
    return f"convex {fusion['norm']} alpha={fusion['alpha']}"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(f"{c:.4f}" if isinstance(c, float) else str(c) for c in row) + " |")
    return "\n".join(lines)


def sweep(ds: Dataset, embedder: Embedder, out: Path, chunkings: list[Chunking]) -> dict:
    qrels = ds.qrels["train"]
    qids = sorted(qrels)
    texts = [ds.queries[q] for q in qids]
    qvecs, _ = embed_cached(embedder, texts, out, f"{ds.name} train queries")
    n_res = len(ds.doc_ids)

    print("\n### BM25 settings (SciFact train, keyword alone, index over whole documents)\n")
    rows, best_bm25 = [], None
    doc_texts = [f"{t} {x}".strip() for t, x in zip(ds.titles, ds.texts)]
    for params in BM25_GRID:
        index = KeywordIndex.build(doc_texts, np.arange(n_res), **params)
        matrix = keyword_resource_scores(index, texts, None, n_res)
        m = evaluate(to_runs(ds, qids, score_matrix_rankings(matrix, True)), qrels)
        rows.append([params["k1"], params["b"], params["stopwords"], params["stem"], m["ndcg@10"], m["recall@100"]])
        if best_bm25 is None or m["ndcg@10"] > best_bm25[0]:
            best_bm25 = (m["ndcg@10"], params)
    print(md_table(["k1", "b", "stopwords", "stem", "nDCG@10", "R@100"], rows))
    bm25 = best_bm25[1]
    print(f"\nchosen BM25: {bm25}")

    print("\n### Chunking x keyword unit x fusion (SciFact train; best fusion per row)\n")
    rows, results = [], []
    doc_index = KeywordIndex.build(doc_texts, np.arange(n_res), **bm25)
    kw_docs = keyword_resource_scores(doc_index, texts, None, n_res)
    for chunking in chunkings:
        passages, owner = make_passages(ds, chunking, embedder)
        pvecs, _ = embed_cached(embedder, passages, out, f"{ds.name} corpus {chunking.name}")
        dense = dense_resource_scores(qvecs, pvecs, owner)
        m_dense = evaluate(to_runs(ds, qids, score_matrix_rankings(dense)), qrels)
        units = {"documents": kw_docs}
        if chunking.max_words is not None:
            p_index = KeywordIndex.build(passages, np.arange(len(passages)), **bm25)
            units["passages"] = keyword_resource_scores(p_index, texts, owner, n_res)
        for unit, kw in units.items():
            m_kw = evaluate(to_runs(ds, qids, score_matrix_rankings(kw, True)), qrels)
            per_fusion = []
            for fusion in FUSIONS:
                m = evaluate(to_runs(ds, qids, fused_rankings(dense, kw, **fusion)), qrels)
                per_fusion.append((m["ndcg@10"], m["recall@100"], fusion))
                results.append({"chunking": chunking, "unit": unit, "fusion": fusion, **m})
            best = max(per_fusion, key=lambda r: r[0])
            rows.append([chunking.name, len(passages), unit, m_dense["ndcg@10"], m_kw["ndcg@10"],
                         best[0], best[1], label(best[2])])
    print(md_table(["chunking", "passages", "keyword unit", "dense", "keyword", "hybrid", "hybrid R@100",
                    "best fusion"], rows))

    chosen = max(results, key=lambda r: r["ndcg@10"])
    print(f"\nchosen on train: chunking {chosen['chunking'].name}, keyword over {chosen['unit']}, "
          f"{label(chosen['fusion'])} (train nDCG@10 {chosen['ndcg@10']:.4f})")

    print("\n### Fusion sweep for the chosen chunking and keyword unit (SciFact train nDCG@10)\n")
    same = [r for r in results if r["chunking"] == chosen["chunking"] and r["unit"] == chosen["unit"]]
    by_norm: dict[str, dict[float, float]] = {}
    for r in same:
        f = r["fusion"]
        key = f"rrf k={f['rrf_k']}" if f["method"] == "rrf" else f"convex {f['norm']}"
        by_norm.setdefault(key, {})[f["alpha"]] = r["ndcg@10"]
    alphas = sorted({a for v in by_norm.values() for a in v})
    print(md_table(["fusion"] + [f"a={a}" for a in alphas],
                   [[k] + [v.get(a, "") for a in alphas] for k, v in by_norm.items()]))
    return {"bm25": bm25, "chunking": chosen["chunking"], "unit": chosen["unit"], "fusion": chosen["fusion"]}


# --------------------------------------------------------------------------- held-out evaluation with rq's classes


@dataclass
class Engine:
    """The search path as rq runs it: model, FAISS over passages, BM25, fusion, roll-up."""

    embedder: Embedder
    vectors: VectorIndex
    keyword: KeywordIndex
    owner: np.ndarray  # passage id -> resource id
    keyword_owner: np.ndarray | None  # keyword id -> resource id (None: keyword ids are resource ids)
    fusion: dict

    def dense(self, qvec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D, I = self.vectors.search(qvec, PASSAGE_DEPTH)
        res, scores, _ = aggregate(I[0], D[0], self.owner)
        return res[:DEPTH], scores[:DEPTH]

    def lexical(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        if self.keyword_owner is None:
            return self.keyword.search(query, DEPTH)
        ids, scores = self.keyword.search(query, PASSAGE_DEPTH)
        res, scores, _ = aggregate(ids, scores, self.keyword_owner)
        return res[:DEPTH], scores[:DEPTH]

    def hybrid(self, query: str, qvec: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if qvec is None:
            qvec = self.embedder.encode_query(query)
        return fuse(self.dense(qvec), self.lexical(query), **self.fusion)


def build_engine(ds: Dataset, embedder: Embedder, out: Path, chosen: dict, kind: str = "flat") -> tuple[Engine, dict]:
    timings = {}
    start = time.perf_counter()
    passages, owner = make_passages(ds, chosen["chunking"], embedder)
    timings["chunk_s"] = time.perf_counter() - start
    pvecs, meta = embed_cached(embedder, passages, out, f"{ds.name} corpus {chosen['chunking'].name}")
    timings["embed_s"] = meta["seconds"]
    timings["passages"] = len(passages)
    start = time.perf_counter()
    vectors = VectorIndex.build(pvecs, np.arange(len(passages)), kind=kind)
    timings["vector_index_s"] = time.perf_counter() - start
    start = time.perf_counter()
    if chosen["unit"] == "documents":
        texts = [f"{t} {x}".strip() for t, x in zip(ds.titles, ds.texts)]
        keyword = KeywordIndex.build(texts, np.arange(len(texts)), **chosen["bm25"])
        keyword_owner = None
    else:
        keyword = KeywordIndex.build(passages, np.arange(len(passages)), **chosen["bm25"])
        keyword_owner = owner
    timings["keyword_index_s"] = time.perf_counter() - start
    return Engine(embedder, vectors, keyword, owner, keyword_owner, chosen["fusion"]), timings


def held_out(ds: Dataset, split: str, engine: Engine, out: Path, baseline: np.ndarray | None) -> dict:
    qrels = ds.qrels[split]
    qids = sorted(qrels)
    texts = [ds.queries[q] for q in qids]
    qvecs, _ = embed_cached(engine.embedder, texts, out, f"{ds.name} {split} queries")
    rows = {}
    if baseline is not None:
        base_index = VectorIndex.build(baseline, np.arange(len(baseline)), kind="flat")
        D, I = base_index.search(qvecs, DEPTH)
        rankings = [(i, d) for d, i in zip(D, I)]
        runs = to_runs(ds, qids, rankings)
        rows["dense, whole doc truncated at 256 pieces (MTEB protocol)"] = (evaluate(runs, qrels), runs)
    for name, rank in (
        ("dense (passages, max-passage)", lambda q, v: engine.dense(v)),
        ("keyword (BM25)", lambda q, v: engine.lexical(q)),
        ("hybrid", lambda q, v: engine.hybrid(q, v)),
    ):
        runs = to_runs(ds, qids, [rank(q, v[None, :]) for q, v in zip(texts, qvecs)])
        rows[name] = (evaluate(runs, qrels), runs)
    for name, (m, runs) in rows.items():
        print(f"  {name}: {cross_check(runs, qrels, m)}")
    return {name: m for name, (m, _) in rows.items()}


def latency(engine: Engine, queries: list[str], repeat: int = 1) -> dict:
    """Warm end-to-end time of one query at a time: embed + dense + keyword + fusion + roll-up."""
    for q in queries[:10]:  # warm-up: first calls pay lazy imports and allocations
        engine.hybrid(q)
    times = []
    for _ in range(repeat):
        for q in queries:
            start = time.perf_counter()
            engine.hybrid(q)
            times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}


def throughput(ds: Dataset, embedder: Embedder, chunking: Chunking, n_docs: int) -> dict:
    """Fresh (uncached) embedding speed on the first ``n_docs`` documents."""
    sample = Dataset(ds.name, ds.doc_ids[:n_docs], ds.titles[:n_docs], ds.texts[:n_docs], {}, {})
    passages, _ = make_passages(sample, chunking, embedder)
    start = time.perf_counter()
    embedder.encode(passages)
    seconds = time.perf_counter() - start
    return {"docs_s": n_docs / seconds, "passages_s": len(passages) / seconds, "seconds": seconds,
            "docs": n_docs, "passages": len(passages)}


# --------------------------------------------------------------------------- HNSW and thread choices


def index_sweep(pvecs: np.ndarray, qvecs: np.ndarray) -> None:
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


def _single_query_ms(index: VectorIndex, qvecs: np.ndarray, threads: int | None = None, k: int = 10) -> float:
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


# --------------------------------------------------------------------------- main


# Word budgets; every passage is also capped at the model's 254 word pieces (title included),
# so "200w" means "as much as the window holds" on scientific text (~1.6 pieces per word).
CHUNKINGS = [
    Chunking("whole doc (truncated)", None),
    Chunking("200w/32", 200, 32),
    Chunking("128w/32", 128, 32),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--index-sweep", action="store_true", help="also time exact vs HNSW search")
    parser.add_argument("--threads", type=int, default=0, help="torch/FAISS threads (0: all cores)")
    parser.add_argument("--sample-docs", type=int, default=500,
                        help="documents embedded afresh to time throughput")
    args = parser.parse_args(argv)
    beir = args.data / "beir"
    if not (beir / "scifact" / "corpus.jsonl").exists():
        print(f"no BEIR data under {beir}; pass --data", file=sys.stderr)
        return 2

    embedder = Embedder("all-MiniLM-L6-v2", threads=args.threads)
    print(f"# rq retrieval benchmark\n\nmodel {embedder.model_id}, {os.cpu_count()} CPUs, "
          f"torch threads {embedder.threads}, PyStemmer {'yes' if stemmer_available() else 'no'}, "
          f"load average at start {os.getloadavg()[0]:.2f}")

    scifact = load_beir(beir / "scifact", ["train", "test"])
    chosen = sweep(scifact, embedder, args.out, CHUNKINGS)

    results: dict[str, dict] = {}
    print("\n## Held out\n")
    baseline_passages, _ = make_passages(scifact, CHUNKINGS[0], embedder)
    baseline, _ = embed_cached(embedder, baseline_passages, args.out, "scifact corpus whole doc (truncated)")
    engine, timings = build_engine(scifact, embedder, args.out, chosen)
    results["SciFact test"] = held_out(scifact, "test", engine, args.out, baseline)

    cranfield = load_beir(beir / "cranfield", ["test"])
    c_passages, _ = make_passages(cranfield, CHUNKINGS[0], embedder)
    c_baseline, _ = embed_cached(embedder, c_passages, args.out, "cranfield corpus whole doc (truncated)")
    c_engine, _ = build_engine(cranfield, embedder, args.out, chosen)
    results["Cranfield (held out)"] = held_out(cranfield, "test", c_engine, args.out, c_baseline)

    rows = []
    for dataset, table in results.items():
        for name, m in table.items():
            rows.append([dataset, name, m["ndcg@10"], m["recall@100"], m["queries"]])
    print("\n" + md_table(["dataset", "ranker", "nDCG@10", "Recall@100", "queries"], rows))

    print("\n## Speed (SciFact)\n")
    test_queries = [scifact.queries[q] for q in sorted(scifact.qrels["test"])]
    lat = latency(engine, test_queries)
    fresh = throughput(scifact, embedder, chosen["chunking"], args.sample_docs)
    docs_per_s = len(scifact.doc_ids) / timings["embed_s"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(md_table(["measure", "value"], [
        ["documents / passages", f"{len(scifact.doc_ids)} / {timings['passages']}"],
        ["chunking s", f"{timings['chunk_s']:.1f}"],
        ["whole-corpus embedding s (when first embedded; cached after)", f"{timings['embed_s']:.1f}"],
        ["  = docs/s, passages/s", f"{docs_per_s:.1f}, {timings['passages'] / timings['embed_s']:.1f}"],
        [f"fresh embedding of the first {fresh['docs']} docs ({fresh['passages']} passages) s",
         f"{fresh['seconds']:.1f}"],
        ["  = docs/s, passages/s", f"{fresh['docs_s']:.1f}, {fresh['passages_s']:.1f}"],
        ["FAISS flat build s", f"{timings['vector_index_s']:.3f}"],
        ["BM25 build s", f"{timings['keyword_index_s']:.2f}"],
        ["warm query p50 ms (embed+dense+keyword+fusion)", f"{lat['p50_ms']:.1f}"],
        ["warm query p99 ms", f"{lat['p99_ms']:.1f}"],
        ["peak RSS MB", f"{peak_mb:.0f}"],
        ["load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"],
    ]))
    print(f"\nchosen settings: {json.dumps({**chosen, 'chunking': chosen['chunking'].__dict__})}")

    if args.index_sweep:
        passages, _ = make_passages(scifact, chosen["chunking"], embedder)
        pvecs, _ = embed_cached(embedder, passages, args.out, "")
        qvecs = embedder.encode(test_queries)
        index_sweep(pvecs, qvecs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
