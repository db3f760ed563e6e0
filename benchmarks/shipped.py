"""The shipped search path, driven on a BEIR corpus: what `rq index` builds and `rq search` ranks.

A corpus becomes what rq ingests: a queue file with one item per document (its title, and a
made-up link ``https://<corpus>.invalid/doc/<doc id>`` that maps back to the document) and
an archive holding each document's text as if fetched (``Archive.put_document``, as ingest
stores one). The index is built by ``rq.index.build.build_index`` with the settings given
(the shipped defaults unless overridden: ONNX int8 passages, the per-resource title/note/
section passage, every passage scored), and queries are ranked by
``rq.rank.search.search_with`` (the function `rq search` calls) on a ``SearchEngine``
held open, or by the engine's ``rank`` for the full depth that Recall@100 needs.

Entry points:

* ``load_beir(folder, splits) -> Dataset``: corpus, queries and qrels.
* ``shipped_index(ds, **overrides) -> Corpus``: the queue and index folder under
  ``benchmarks/out/shipped/<corpus>/`` (or ``out``), built (or brought up to date) with
  ``build_index``; only passages whose vectors are not in the archive are embedded, so a
  rerun, or a change of an index setting, costs a rebuild but not a re-embedding. ``seed=``
  (an (index folder, queue file) pair, or a list of them) copies cached vectors from other
  index folders of the same corpus (e.g. bench_speed's).
* ``open_engine(corpus, **query_settings) -> SearchEngine``: the loaded index; its
  ``settings`` may be replaced between runs for query-time settings.
* ``rank_runs(engine, corpus, queries, mode) -> {qid: {doc_id: score}}``: the top 100
  resources of ``engine.rank`` per query, mapped back to document ids.
* ``evaluate(runs, qrels) -> {"ndcg@10", "recall@100", "queries"}`` (trec_eval's
  definitions; ``cross_check`` compares with pytrec_eval when it is installed).
* ``warm_latency(engine, queries, k) -> {"p50_ms", "p99_ms", "n", "load"}``: wall time of
  ``search_with`` (encode, both rankers, fusion, roll-up, the k hits with their passages).
* ``cold_search(corpus, query, repeat) -> {"median_s", "min_s", "max_s", "runs", "load"}``:
  a real ``rq search`` subprocess on the index folder.
* ``CachedQueries(embedder, path)``: the shipped query encoder with its answers kept on disk,
  so sweeps over query-time settings encode each query once.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = ROOT / "benchmarks" / "out" / "shipped"
DATA = ROOT.parent / "shared" / "data"
DEPTH = 100  # resources per query kept for Recall@100


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    name: str
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> gain

    def split(self, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
        """The queries of ``split`` that have a judged document, and their qrels."""
        qrels = self.qrels[split]
        return {q: self.queries[q] for q in sorted(qrels)}, qrels


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


# --------------------------------------------------------------------------- the corpus as rq sees it


@dataclass
class Corpus:
    ds: Dataset
    settings: object  # rq.settings.Settings the index was built with
    queue_path: Path
    index_dir: Path
    doc_of: dict[str, str]  # resource id -> document id
    report: object = None  # the IndexReport of the last build_index


def doc_url(corpus_name: str, doc_id: str) -> str:
    return f"https://{corpus_name}.invalid/doc/{doc_id}"


def write_queue(ds: Dataset, path: Path) -> None:
    """One unread item per document, its title as the link text, in one section."""
    lines = [f"# {ds.name} corpus as a reading queue", "", "## Papers", ""]
    for doc_id, title in zip(ds.doc_ids, ds.titles):
        clean = " ".join(title.replace("[", "(").replace("]", ")").split()) or f"Document {doc_id}"
        lines.append(f"- [ ] [{clean}]({doc_url(ds.name, doc_id)})")
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def shipped_index(ds: Dataset, out: Path = OUT, seed: tuple[Path, Path] | list | None = None, notice=None,
                  progress=None, **overrides) -> Corpus:
    """The corpus queued, archived and indexed by rq's own functions (see the module docstring)."""
    from rq.archive.session import open_for, sync_queue
    from rq.extract.document import Extracted
    from rq.index.build import build_index
    from rq.settings import Settings

    folder = out / ds.name
    queue_path, index_dir = folder / "queue.md", folder / "index"
    write_queue(ds, queue_path)
    settings = Settings(queue=queue_path, index=index_dir, **overrides)
    texts = dict(zip(ds.doc_ids, zip(ds.titles, ds.texts)))
    _, queue, archive = open_for(settings)
    try:
        sync_queue(archive, queue)
        doc_of = {r.id: r.url.rsplit("/", 1)[1] for r in queue.resources}
        have = archive.text_shas()
        for resource in queue.resources:
            if resource.id in have:
                continue
            title, text = texts[doc_of[resource.id]]
            # No raw body is stored: search reads only the extracted text.
            archive.put_document(resource.id, "0" * 64, Extracted("text", text, title, None, None, None,
                                                                 "utf-8", None, ""))
        for pair in ([seed] if isinstance(seed, tuple) else seed or []):
            if (pair[0] / "manifest.json").exists() and pair[0].resolve() != index_dir.resolve():
                _seed_vectors(archive, pair, queue, settings)
    finally:
        archive.close()
    report = build_index(settings, notice=notice, progress=progress)
    return Corpus(ds, settings, queue_path, index_dir, doc_of, report)


def _seed_vectors(archive, seed: tuple[Path, Path], queue, settings) -> None:
    """Copy the vectors another index folder of this corpus (``seed``: its folder and its queue
    file; bench_speed's SciFact index, say) has cached, so this one embeds only passages that
    one never had."""
    from rq.archive.db import open_archive_to_read
    from rq.index.chunk import passage_hash
    from rq.index.manifest import read_manifest
    from rq.index.passages import profile_text
    from rq.paths import locate
    from rq.settings import Settings

    seed_dir, seed_queue = seed
    manifest = read_manifest(seed_dir) if (seed_dir / "manifest.json").exists() else None
    if manifest is None:
        return
    source = open_archive_to_read(seed_dir, locate(Settings(queue=seed_queue, index=seed_dir)).queue_key)
    try:
        rows = [(r["resource_id"], r["ord"], r["source"], r["text"], r["hash"]) for r in source.passages()]
        hashes = [row[4] for row in rows] + [passage_hash(profile_text(r)) for r in queue.resources]
        if settings.dense_window_words:  # the windows this index will cut from those passages
            from rq.index.encoders.factory import make_embedder
            from rq.index.passages import window_rows

            hashes += [h for _, _, h in window_rows(rows, settings, make_embedder(settings))]
        for key in {manifest.model, manifest.vectors or manifest.model}:
            have = archive.cached_vectors(key, hashes)
            found = source.cached_vectors(key, [h for h in hashes if h not in have])
            if found:
                archive.cache_vectors(key, list(found.items()))
    finally:
        source.close()


# --------------------------------------------------------------------------- ranking


class CachedQueries:
    """The shipped query encoder, its vectors kept in ``path`` (an .npz) across runs."""

    def __init__(self, embedder, path: Path):
        self._embedder = embedder
        self.path = path
        self._cache: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self._cache = dict(zip(data["texts"].tolist(), data["vectors"]))
        self._dirty = False

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode_query(self, text: str) -> np.ndarray:
        vector = self._cache.get(text)
        if vector is None:
            vector = self._cache[text] = np.asarray(self._embedder.encode_query(text), dtype=np.float32)
            self._dirty = True
        return vector

    def save(self) -> None:
        if self._dirty:
            texts = list(self._cache)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, texts=np.array(texts), vectors=np.stack([self._cache[t] for t in texts]))
            self._dirty = False


def open_engine(corpus: Corpus, cached: bool = True, **query_settings):
    """A SearchEngine on the corpus's index, with the query encoder cached on disk when ``cached``."""
    from rq.index.encoders.factory import make_embedder
    from rq.rank.engine import SearchEngine

    settings = corpus.settings.replace(**query_settings)
    embedder = make_embedder(settings)
    if cached:
        embedder = CachedQueries(embedder, corpus.index_dir.parent / f"queries-{embedder.model_id}.npz")
    return SearchEngine(settings, embedder=embedder)


def rank_runs(engine, corpus: Corpus, queries: dict[str, str], mode: str = "hybrid",
              depth: int = DEPTH) -> dict[str, dict[str, float]]:
    """Top ``depth`` documents per query, as ``engine.rank`` orders them (the order `rq search`
    shows; scores are made strictly decreasing so trec_eval's tie rule cannot reorder them)."""
    runs = {}
    ids = engine.resource_ids
    for qid, text in queries.items():
        ranked = engine.rank(text, mode)
        top = ranked.rows[:depth]
        runs[qid] = {corpus.doc_of[ids[int(r)]]: float(depth - i) for i, r in enumerate(top)}
    saver = getattr(engine.embedder, "save", None)
    if saver:
        saver()
    return runs


# --------------------------------------------------------------------------- time


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def warm_latency(engine, queries: list[str], k: int = 10, repeat: int = 1) -> dict:
    """Wall time of ``search_with`` per query, one at a time, after ten warm-up queries.
    Use an engine opened with ``cached=False``: query encoding is part of the time."""
    from rq.rank.search import search_with

    for q in queries[:10]:
        search_with(engine, q, k)
    times = []
    for _ in range(repeat):
        for q in queries:
            start = time.perf_counter()
            search_with(engine, q, k)
            times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "n": len(ms), "load": loadavg()}


def cold_search(corpus: Corpus, query: str, repeat: int = 5) -> dict:
    """Wall time of a fresh ``rq search QUERY -k 10`` process on the corpus's index folder (one
    untimed run first, so the page cache is warm), run with this checkout's rq."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for key in [k for k in env if k.startswith("RQ_")]:
        del env[key]  # the shipped defaults, not the caller's
    script = Path(sys.executable).parent / "rq"
    rq = [str(script)] if script.exists() else [sys.executable, "-m", "rq"]
    cmd = rq + ["search", query, "-k", "10", "--queue", str(corpus.queue_path), "--index", str(corpus.index_dir)]
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "runs": repeat, "load": loadavg()}
