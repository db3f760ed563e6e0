#!/usr/bin/env python
"""`rq clusters` at scale: time and memory from 1,000 to 10,000 items.

    python benchmarks/bench_clusters_scale.py [--sizes 1000,2500,5000,10000] [--cli 10000]

Data: the six real lists under ../shared/data/lists pooled (each URL once) and repeated to the
size asked: copy r of a list is filed under its own top heading ("applied-ml 2"), with all of
the list's headings, the empty ones included, so the queue has as many sections, empty and
thin ones as r copies of the lists (1,351 headings at 10,000 items); an item's copy gets the
title "<title> (r)" and the item's vector plus Gaussian noise (sigma 0.03 per dimension,
renormalised: cosine ~0.85 to the original, as bench_scale.py makes copies). Items embedded as
in bench_clusters.py.

Core (one child process per size, default threads): what `rq clusters` computes once the
index's vectors are loaded, with the shipped defaults: cluster(k="auto") with the queue's
sections, name_clusters, and the audit (every heading's vector given). Peak memory is the
child's high-water RSS above what it held before the run (/proc/self/clear_refs).

--cli N: the whole command, end to end, on a Markdown queue of N items written to a temporary
folder: `rq index` (not timed: it embeds every item), then `rq clusters --json` twice (the
first also embeds and caches the headings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import reading_lists as rl  # noqa: E402

SIGMA = 0.03


def build(data: Path, out: Path, n: int) -> dict:
    """n items from the pooled lists, repeated with variation (see the module doc)."""
    lists = rl.load_lists(data / "lists")
    rl.embed_lists(rl.make_embedder(), lists, out)
    from rq.queue.urls import normalize_url

    seen, items = set(), []
    for ds in lists:
        for i, url in enumerate(ds["urls"]):
            if normalize_url(url) not in seen:  # each resource once, as rq counts them
                seen.add(normalize_url(url))
                items.append((ds, i))
    rng = np.random.default_rng(1)
    base = np.stack([ds["vectors"][i] for ds, i in items]).astype(np.float32)
    picks = np.arange(n) % len(items)
    copies = np.arange(n) // len(items)
    vectors = base[picks] + rng.standard_normal((n, base.shape[1])).astype(np.float32) * np.float32(SIGMA)
    vectors[copies == 0] = base[picks[copies == 0]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    out_items = []
    for p, r in zip(picks, copies):
        ds, i = items[p]
        note = ds["texts"][i][len(ds["titles"][i]):].strip()
        out_items.append({"title": ds["titles"][i] + (f" ({r})" if r else ""), "note": note,
                          "url": ds["urls"][i], "copy": int(r), "path": (_top(ds, r), *ds["leaf"][i])})
    headings, every = {}, []
    for r in range(int(copies.max()) + 1):
        for ds in lists:
            top = _top(ds, r)
            # The list's own name heads its sections; its vector: the mean of its headings'.
            headings[(top,)] = np.mean(list(ds["heading_vectors"].values()), axis=0)
            every.append((top,))
            for path in ds["headings"]:
                every.append((top, *path))
                if path in ds["heading_vectors"]:
                    headings[(top, *path)] = ds["heading_vectors"][path]
    return {"items": out_items, "vectors": vectors, "headings": headings, "every": every}


def _top(ds: dict, copy: int) -> str:
    return f"{ds['short']} {copy}" if copy else ds["short"]


def peak_rss_mb() -> float:
    return common.proc_status_mb("VmHWM")


def rss_mb() -> float:
    return common.proc_status_mb("VmRSS")


def child(args) -> int:
    from rq.rank.topics.audit import audit
    from rq.rank.topics.clusters import cluster, topic_sections
    from rq.rank.topics.naming import name_clusters

    world = build(args.data, args.out, args.child)
    items, vectors, headings = world["items"], world["vectors"], world["headings"]
    paths = [it["path"] for it in items]
    titles = [it["title"] for it in items]
    texts = ["\n".join(p for p in (it["title"], it["note"]) if p) for it in items]
    every = world["every"]
    base = rss_mb()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark to now
        fh.write("5")
    times = {}
    start = time.perf_counter()
    clustering = cluster(vectors, "auto", sections=topic_sections(paths))
    times["cluster"] = time.perf_counter() - start
    start = time.perf_counter()
    names = name_clusters(texts, clustering.labels, vectors=vectors)
    times["names"] = time.perf_counter() - start
    start = time.perf_counter()
    result = audit(vectors, clustering.labels, paths, titles, every, headings, names=names, texts=texts)
    times["audit"] = time.perf_counter() - start
    print(json.dumps({"n": len(items), "k": clustering.k, "how": clustering.how, "times": times,
                      "total": sum(times.values()), "peak_mb": peak_rss_mb() - base, "sections": len(every),
                      "thin": len(result.thin), "misfiled": len(result.misfiled), "load": os.getloadavg()[0]}))
    return 0


def write_queue(items: list[dict], every: list[tuple], path: Path) -> None:
    by_path: dict[tuple, list[dict]] = {p: [] for p in every}
    for it in items:
        by_path.setdefault(it["path"], []).append(it)
    lines, open_path = [], ()
    for p, members in by_path.items():
        for depth in range(len(p)):
            if p[:depth + 1] != open_path[:depth + 1]:
                lines.append(f"\n{'#' * min(6, depth + 1)} {p[depth]}\n")
        open_path = p
        for it in members:
            url = _copy_url(it["url"], it["copy"])
            note = f" - {' '.join(it['note'].split())}" if it["note"] else ""
            title = it["title"].replace("[", "(").replace("]", ")")
            lines.append(f"- [ ] [{title}]({url}){note}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _copy_url(url: str, copy: int) -> str:
    """The URL of copy ``copy`` of an item: a query parameter before any fragment."""
    if not copy:
        return url
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}rq_copy={copy}{hash_}{fragment}"


def cli(args) -> dict:
    world = build(args.data, args.out, args.cli)
    folder = Path(tempfile.mkdtemp(prefix="rq-scale-"))
    queue = folder / "queue.md"
    write_queue(world["items"], world["every"], queue)
    env = {**os.environ, "RQ_QUEUE": str(queue), "RQ_INDEX": str(folder / "index"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(rl.ROOT / "src")}
    rq = [sys.executable, "-m", "rq"]
    start = time.perf_counter()
    proc = subprocess.run([*rq, "index"], env=env, capture_output=True, text=True)
    index_s = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"rq index failed: {proc.stderr[-2000:]}")
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        proc = subprocess.run([*rq, "clusters", "--json"], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"rq clusters failed: {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout)
        runs.append({"seconds": seconds, "resources": report["resources"], "k": report["k"],
                     "load": os.getloadavg()[0]})
    return {"queue": str(queue), "index_seconds": index_s, "clusters": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=rl.ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=rl.ROOT / "benchmarks" / "out")
    parser.add_argument("--sizes", default="1000,2500,5000,10000")
    parser.add_argument("--cli", type=int, default=0, help="also time `rq clusters` end to end on this many items")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.data / "lists").is_dir():
        print(f"no reading lists under {args.data / 'lists'}; pass --data", file=sys.stderr)
        return 2
    if args.child:
        return child(args)
    print("# rq clusters at scale (core: cluster + names + audit, shipped defaults)\n")
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--data", str(args.data),
                               "--out", str(args.out)], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        t = r["times"]
        rows.append([f"{r['n']:,}", r["sections"], r["thin"], r["k"], f"{t['cluster']:.2f}", f"{t['names']:.2f}",
                     f"{t['audit']:.2f}", f"**{r['total']:.2f}**", f"{r['peak_mb']:.0f}", f"{r['load']:.1f}"])
        print(f"  {r['n']:,}: {r['how']}", file=sys.stderr, flush=True)
    print(rl.md_table(["items", "headings", "empty or thin sections", "auto k", "cluster s", "names s", "audit s",
                       "total s",
                       "peak RSS above start, MB", "load (1 min)"], rows) + "\n")
    if args.cli:
        result = cli(args)
        print(f"## `rq clusters --json` end to end, {args.cli:,} items\n")
        print(f"`rq index` took {result['index_seconds']:.0f} s (embedding every item; not part of the figure).\n")
        for i, run in enumerate(result["clusters"], 1):
            print(f"- run {i}: **{run['seconds']:.1f} s**, {run['resources']:,} resources, k={run['k']}, "
                  f"load {run['load']:.1f}" + (" (embeds and caches the headings)" if i == 1 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
