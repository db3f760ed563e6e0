#!/usr/bin/env python
"""Snippet choice on SciFact test, through the shipped search path.

    python benchmarks/bench_snippets.py [--seed ARCHIVE.sqlite] [--limit N]

The corpus is queued, archived and indexed by rq's own functions (benchmarks/shipped.py)
with the shipped defaults, and each of the 300 test queries is searched with
``rq.rank.search.search_with`` (what `rq search` runs), k = 10. For every hit that is a
relevant document (qrels score > 0), the document's sentences are judged independently of
the snippet picker:

* meaning: the sentence of the document (its BEIR text, split here at ". " before a capital)
  whose vector is closest to the query's, both encoded by the shipped query encoder;
* words: the sentences holding the most distinct query words (rq.words.content_words:
  lower-cased, no stopwords, no stemming, no weights), when any holds one.

A judged sentence counts as shown when the text shown for the hit holds a contiguous run of
it of at least 80% of its characters, or 200 characters (a sentence longer than the
window). Compared: the snippet `rq search` shows now (rq.rank.snippets, at most 300
characters) and before (the first 360 characters of the chosen passage: what
rq.rank.passages.display_passage gave for it). Also reported: how often the chosen passage
was the queue's own (title) passage although the page text is archived, and what the
snippets cost (time per 10-hit search) and would cost with a vector per sentence.

``--seed`` copies cached passage vectors from another SciFact archive (read-only) so the
index is built without embedding every passage again. Prints Markdown; writes only under
benchmarks/out/snippets/.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
import time
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shipped  # noqa: E402  (puts src/ on sys.path)

OUT = shipped.ROOT / "benchmarks" / "out" / "snippets"
JUDGE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


def seed_vectors(settings, archive_path: Path) -> int:
    """Copy the embeddings table of another SciFact archive into this corpus's archive."""
    from rq.archive.session import open_for

    source = sqlite3.connect(f"file:{archive_path}?mode=ro&immutable=1", uri=True)
    rows = source.execute("SELECT model, hash, vector FROM embeddings").fetchall()
    source.close()
    _, _, archive = open_for(settings)
    try:
        by_model: dict[str, list] = {}
        for model, digest, vector in rows:
            by_model.setdefault(model, []).append((digest, vector))
        for model, items in by_model.items():
            have = archive.cached_vectors(model, [d for d, _ in items])
            archive.cache_vectors(model, [(d, v) for d, v in items if d not in have])
    finally:
        archive.close()
    return len(rows)


def shown(sentence: str, text: str) -> bool:
    sentence, text = " ".join(sentence.split()), " ".join(text.split())
    if not sentence:
        return False
    run = SequenceMatcher(None, sentence, text, autojunk=False).find_longest_match(0, len(sentence), 0, len(text))
    return run.size >= min(0.8 * len(sentence), 200)


def judge(query: str, doc_text: str, qvec: np.ndarray, embedder) -> dict:
    from rq.words import content_words

    sentences = [s.strip() for s in JUDGE_SPLIT.split(" ".join(doc_text.split())) if s.strip()]
    vectors = np.stack([embedder.encode_query(s) for s in sentences])
    by_meaning = sentences[int(np.argmax(vectors @ qvec))]
    wanted = set(content_words(query))
    overlap = [len(wanted & set(content_words(s))) for s in sentences]
    by_words = [s for s, n in zip(sentences, overlap) if n == max(overlap)] if max(overlap) else []
    return {"meaning": by_meaning, "words": by_words, "chars": len(" ".join(doc_text.split()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=Path, help="an archive.sqlite of SciFact to copy cached vectors from")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test queries (0: all)")
    parser.add_argument("--latency-only", action="store_true", help="only the warm search times (A/B)")
    args = parser.parse_args()

    from rq.rank.passages import display_passage
    from rq.rank.search import search_with
    from rq.rank.snippets import hit_snippets
    from rq.settings import Settings

    ds = shipped.load_beir(shipped.DATA / "beir" / "scifact", ["test"])
    queries, qrels = ds.split("test")
    if args.limit:
        queries = dict(list(queries.items())[:args.limit])
    folder = OUT / ds.name
    if args.seed:
        shipped.write_queue(ds, folder / "queue.md")
        n = seed_vectors(Settings(queue=folder / "queue.md", index=folder / "index"), args.seed)
        print(f"seeded {n} cached vectors from {args.seed}", file=sys.stderr)
    started = time.perf_counter()
    corpus = shipped.shipped_index(ds, out=OUT)
    print(f"index ready in {time.perf_counter() - started:.0f} s: {corpus.report}", file=sys.stderr)

    if args.latency_only:
        print_ab(warm_ab(corpus, list(queries.values())[:100]))
        return
    engine = shipped.open_engine(corpus, cached=False)
    embedder = engine.embedder
    text_of = dict(zip(ds.doc_ids, ds.texts))
    rows_of = {rid: i for i, rid in enumerate(engine.resource_ids)}
    variants = {"before": "before: first 360 chars of the chosen passage (display_passage)",
                "around0": "snippet from the chosen passage alone",
                "now": "now: `rq search` (snippet from the chosen passage and one on each side)",
                "around2": "snippet from the chosen passage and two on each side"}
    counts = {key: {"meaning": 0, "words": 0, "chars": 0} for key in variants}
    pairs = words_pairs = doc_chars = hits = meta_chosen = meta_shown = 0
    cpu_ms, wall_ms, encode_ms, encoded = [], [], [], []
    for n, (qid, query) in enumerate(queries.items(), start=1):
        response = search_with(engine, query, 10)
        ranked = engine.rank(query)
        chosen = dict(zip(ranked.rows.tolist(), ranked.passages.tolist()))
        picks = [(rows_of[h.id], chosen[rows_of[h.id]], h.has_text) for h in response.hits]
        rows = engine.archive.passages_by_id([p for _, p, _ in picks])
        wall, cpu = time.perf_counter(), time.thread_time()
        hit_snippets(engine.archive, engine.loaded, query, picks)  # what the snippets of one search cost
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        wall_ms.append((time.perf_counter() - wall) * 1000)
        shown_as = {"now": [h.passage for h in response.hits],
                    "before": [display_passage(rows[p]["text"], rows[p]["source"]) for _, p, _ in picks]}
        for key, around in (("around0", 0), ("around2", 2)):
            shown_as[key] = [s.text for s, _ in hit_snippets(engine.archive, engine.loaded, query, picks, around)]
        if n <= 30:  # a vector per sentence: the sentences of the ten chosen passages and their neighbours
            near = engine.archive.passages_by_id(sorted({p + d for _, p, _ in picks for d in (-1, 0, 1) if p + d >= 0}))
            sentences = [s for r in near.values() if r["source"] == "text"
                         for s in JUDGE_SPLIT.split(r["text"].split("\n", 1)[-1])]
            start = time.perf_counter()
            embedder.encode(sentences)
            encode_ms.append((time.perf_counter() - start) * 1000)
            encoded.append(len(sentences))
        qvec = None
        for i, hit in enumerate(response.hits):
            hits += 1
            meta_chosen += rows[picks[i][1]]["source"] == "meta" and hit.has_text
            meta_shown += hit.passage_source == "meta" and hit.has_text
            doc = corpus.doc_of[hit.id]
            if qrels[qid].get(doc, 0) <= 0:
                continue
            if qvec is None:
                qvec = embedder.encode_query(query)
            best = judge(query, text_of[doc], qvec, embedder)
            pairs += 1
            doc_chars += best["chars"]
            words_pairs += bool(best["words"])
            for key in variants:
                text = shown_as[key][i]
                counts[key]["chars"] += len(text)
                counts[key]["meaning"] += shown(best["meaning"], text)
                counts[key]["words"] += any(shown(s, text) for s in best["words"])
        if n % 50 == 0:
            print(f"  {n}/{len(queries)} queries", file=sys.stderr, flush=True)
    engine.close()

    pct = lambda a, b: f"{100 * a / b:.1f} %" if b else "n/a"  # noqa: E731
    print(f"SciFact test, {len(queries)} queries, k = 10: {pairs} (query, relevant document) pairs in the top 10, "
          f"{words_pairs} of them with a sentence holding a query word.\n")
    print("| shown for the hit | best sentence by meaning shown | best sentence by words shown | "
          "mean chars | share of the document |")
    print("|---|---|---|---|---|")
    for key, label in variants.items():
        c = counts[key]
        print(f"| {label} | {pct(c['meaning'], pairs)} | {pct(c['words'], words_pairs)} | "
              f"{c['chars'] / max(1, pairs):.0f} | {pct(c['chars'], doc_chars)} |")
    print(f"\nHits whose chosen passage was the title passage although the text is archived: {meta_chosen} "
          f"of {hits}; shown as the title passage now: {meta_shown}.")
    print(f"Snippets of one 10-hit search (hit_snippets: passages read, sentences scored, marked), "
          f"{len(cpu_ms)} searches: CPU (this thread) p50 {statistics.median(cpu_ms):.1f} ms, p99 {np.percentile(cpu_ms, 99):.1f} "
          f"ms; wall p50 {statistics.median(wall_ms):.1f} ms, p99 {np.percentile(wall_ms, 99):.1f} ms "
          f"(load {shipped.loadavg()}).")
    if encode_ms:
        print(f"Encoding every sentence of the ten chosen passages and their neighbours (a vector per sentence, "
              f"shipped bulk encoder, {statistics.mean(encoded):.0f} sentences on average): "
              f"p50 {statistics.median(encode_ms):.0f} ms over {len(encode_ms)} searches (load {shipped.loadavg()}).")
    print_ab(warm_ab(corpus, list(queries.values())[:100]))


def print_ab(ab: dict) -> None:
    print(f"Warm search_with, k = 10, one query at a time, {ab['n']} queries, A and B alternating (load "
          f"{ab['load']}): with snippets p50 {ab['with'][0]:.1f} ms, p99 {ab['with'][1]:.1f} ms; with the "
          f"first 360 characters of the chosen passage instead p50 {ab['without'][0]:.1f} ms, "
          f"p99 {ab['without'][1]:.1f} ms.")


def warm_ab(corpus, queries: list[str]) -> dict:
    """Wall time of search_with per query with the shipped snippets and with the passage head
    shown before them (rq.rank.search's hook swapped for the run), alternating query by query."""
    from rq.rank import search as search_module
    from rq.rank.passages import display_passage
    from rq.rank.snippets import Snippet, hit_snippets

    def heads(archive, loaded, query, hits, around=1):
        rows = archive.passages_by_id([p for _, p, _ in hits])
        return [(Snippet(display_passage(rows[p]["text"], rows[p]["source"]), []), rows[p]["source"])
                for _, p, _ in hits]

    times = {"with": [], "without": []}
    load_before = shipped.loadavg()
    with shipped.open_engine(corpus, cached=False) as engine:
        for q in queries[:10]:
            search_module.search_with(engine, q, 10)
        try:
            for q in queries:
                for key, hook in (("with", hit_snippets), ("without", heads)):
                    search_module.hit_snippets = hook
                    start = time.perf_counter()
                    search_module.search_with(engine, q, 10)
                    times[key].append((time.perf_counter() - start) * 1000)
        finally:
            search_module.hit_snippets = hit_snippets
    return {"n": len(queries), "load": f"{load_before} before, {shipped.loadavg()} after",
            **{k: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for k, v in times.items()}}


if __name__ == "__main__":
    main()
