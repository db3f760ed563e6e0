#!/usr/bin/env python
"""Start-up, embedding throughput and scale of rq, side by side in one run.

    python benchmarks/bench_speed.py [--repeat 7] [--sample 400] [--data ../shared/data]

1. Cold start: wall time of fresh processes, each command ``--repeat`` times in
   round-robin order (so a burst of load on the shared machine hits all of them),
   median and min-max: ``python -c "import sentence_transformers"`` (the reference),
   ``rq --help``, and ``rq search`` on a copy of the embedded default's index and on a
   5,183-document SciFact index, and ``rq next`` / ``rq related`` on the default. Every
   command is timed as installed (the ``rq`` console script); one extra untimed run of
   each goes through a wrapper that reports which heavy modules it imported.
2. Embedding throughput of each path on the same SciFact abstracts, in one process, in
   alternating rounds: sentence-transformers fp32 (torch), ONNX fp32, ONNX int8; and the
   SciFact test nDCG@10 each gives with exact search over whole abstracts truncated by
   the model (the MTEB protocol; published 0.6451). Queries go through each path's own
   ``encode_query`` (fp32 for both ONNX rows).
3. Warm single-query embedding latency per path and thread count.
4. The 1,000,000-vector figures of benchmarks/bench_scale.py (read from its JSON; it
   runs for ~30 minutes, so it is a separate command).

The SciFact index is built once under benchmarks/out/ with rq's own API: a generated
queue file (one item per document, links under https://scifact.invalid/ that are never
fetched), the abstracts stored with Archive.put_document (no raw bodies are stored),
then rq.index.build.build_index as `rq index` runs it (exporting the model to ONNX and
embedding with the int8 graph, the defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = ROOT / "benchmarks" / "out"
MODEL = "all-MiniLM-L6-v2"
QUERY = "does vitamin D deficiency increase the risk of tuberculosis"
BIN = Path(sys.executable).parent
# rq's CLI, reporting at exit which heavy modules the command imported (untimed runs only).
PROBE = """
import atexit, sys
def _heavy():
    heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "bm25s", "scipy", "sklearn")
                   if m in sys.modules)
    sys.stderr.write("BENCH-HEAVY " + ",".join(heavy) + "\\n")
atexit.register(_heavy)
sys.argv = ["rq"] + sys.argv[1:]
from rq.cli.app import main
main()
"""


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- indexes


def default_index_copy() -> Path | None:
    """A copy of the checkout's index/ (the embedded default queue's), so the benchmark never
    writes into the folder other work uses."""
    source = ROOT / "index"
    target = OUT / "bench-default-index"
    if not (source / "manifest.json").is_file():
        return None
    if not (target / "manifest.json").is_file():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"), dirs_exist_ok=True)
    return target


def scifact_queue(ds, path: Path) -> None:
    lines = ["# SciFact corpus as a reading queue", "", "## Papers", ""]
    for doc_id, title in zip(ds.doc_ids, ds.titles):
        clean = " ".join(title.replace("[", "(").replace("]", ")").split()) or f"Document {doc_id}"
        lines.append(f"- [ ] [{clean}](https://scifact.invalid/doc/{doc_id})")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_scifact_index(data: Path) -> tuple[Path, Path, dict]:
    """Queue file and index folder for the 5,183 SciFact abstracts (built once, then reused)."""
    from bench_retrieval import load_beir

    from rq.extract.document import Extracted
    from rq.index.build import build_index, read_manifest
    from rq.archive.session import open_for, sync_queue
    from rq.index.encoders.sidecar import read_sidecar
    from rq.index.encoders.store import export_dir
    from rq.settings import Settings

    queue_path = OUT / "scifact-queue.md"
    index_dir = OUT / "scifact-index"
    manifest = read_manifest(index_dir)
    if manifest is not None and manifest.resources == 5183:
        return queue_path, index_dir, {"built": False, "passages": manifest.passages}
    ds = load_beir(data / "beir" / "scifact", ["test"])
    OUT.mkdir(parents=True, exist_ok=True)
    scifact_queue(ds, queue_path)
    settings = Settings(queue=queue_path, index=index_dir)
    started = time.perf_counter()
    _, queue, archive = open_for(settings)
    try:
        sync_queue(archive, queue)
        docs = {doc_id: (title, text) for doc_id, title, text in zip(ds.doc_ids, ds.titles, ds.texts)}
        assert len(queue.resources) == len(docs), (len(queue.resources), len(docs))
        for resource in queue.resources:
            title, text = docs[resource.url.rstrip("/").rsplit("/", 1)[1]]
            doc = Extracted("text", text, title, None, None, None, "utf-8", None, "")
            # No raw body is stored: search reads only the extracted text.
            archive.put_document(resource.id, "0" * 64, doc)
    finally:
        archive.close()
    archived_s = time.perf_counter() - started
    report = build_index(settings, notice=lambda m: print(f"  {m}", flush=True))
    return queue_path, index_dir, {"built": True, "archive_s": round(archived_s, 1),
                                   "index_s": round(report.seconds, 1), "passages": report.passages,
                                   "embedded": report.embedded,
                                   "export_s": (read_sidecar(export_dir(settings)) or {}).get("export_seconds")}


def ensure_exported(index_dir: Path, queue: Path | None = None) -> float:
    """`rq index` on an index: exports the model when this machine has no usable export yet."""
    started = time.perf_counter()
    extra = ["--queue", str(queue)] if queue else []
    subprocess.run([str(BIN / "rq"), "index", "--index", str(index_dir), *extra], check=True, capture_output=True)
    return round(time.perf_counter() - started, 2)


# --------------------------------------------------------------------------- cold start


def cold_start(commands: dict[str, list[str]], repeat: int) -> dict[str, dict]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    notes: dict[str, str] = {}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name, cmd in commands.items():  # one untimed run each: page cache warm, failures shown early
        if cmd[0].endswith("/rq"):  # the same command through the probe that reports imports
            cmd = [sys.executable, "-c", PROBE, *cmd[1:]]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
        heavy = [line.split(" ", 1)[1] if " " in line else "" for line in done.stderr.splitlines()
                 if line.startswith("BENCH-HEAVY")]
        if heavy:
            notes[name] = "imports " + (heavy[-1] or "none of torch/transformers/sentence-transformers/"
                                                     "bm25s/scipy/sklearn")
        hits = [line for line in done.stdout.splitlines() if line.strip()]
        notes[name] = (notes.get(name, "") + f"; {len(hits)} output lines").lstrip("; ")
    for _ in range(repeat):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT, check=True)
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3), "max_s": round(max(t), 3),
                   "runs": len(t), "note": notes.get(name, "")} for name, t in times.items()}


# --------------------------------------------------------------------------- throughput and quality


def throughput_and_quality(data: Path, index_dir: Path, sample: int, rounds: int, fresh: bool) -> dict:
    import hashlib

    import numpy as np
    from bench_retrieval import evaluate, load_beir, top

    from rq.index.encoders.torch_encoder import Embedder
    from rq.index.encoders.store import export_dir, load_export
    from rq.settings import Settings

    ds = load_beir(data / "beir" / "scifact", ["test"])
    texts = [f"{t} {x}".strip() for t, x in zip(ds.titles, ds.texts)]
    qrels = ds.qrels["test"]
    qids = sorted(qrels)
    queries = [ds.queries[q] for q in qids]
    torch_path = Embedder(MODEL)
    paths = {
        "sentence-transformers fp32 (torch)": torch_path,
        "ONNX fp32": load_export(export_dir(Settings()), Settings(embed_bulk="fp32")),
        "ONNX int8": load_export(export_dir(Settings()), Settings(embed_bulk="int8")),
    }
    for embedder in paths.values():  # load weights and sessions outside the timed part
        embedder.encode(["warm up"])
    rng = np.random.default_rng(0)
    pick = rng.choice(len(texts), min(sample, len(texts)), replace=False)
    subset = [texts[i] for i in pick]
    speed: dict[str, list[float]] = {name: [] for name in paths}
    print(f"  throughput: {len(subset)} abstracts x {rounds} rounds per path (load {loadavg()})", flush=True)
    for _ in range(rounds):
        for name, embedder in paths.items():
            start = time.perf_counter()
            embedder.encode(subset, batch_size=32)
            speed[name].append(len(subset) / (time.perf_counter() - start))
    print(f"  done (load {loadavg()})", flush=True)

    def ndcg(passages: np.ndarray, qvecs: np.ndarray) -> float:
        scores = qvecs @ passages.T
        runs = {}
        for q, row in zip(qids, scores):
            idx, sc = top(row, 100)
            runs[q] = {ds.doc_ids[int(i)]: float(s) for i, s in zip(idx, sc)}
        return evaluate(runs, qrels)["ndcg@10"]

    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]
    rows = {}
    reference = None
    for name, embedder in paths.items():
        tag = {"sentence-transformers fp32 (torch)": "torch", "ONNX fp32": "onnx-fp32", "ONNX int8": "onnx-int8"}[name]
        cache = OUT / f"speed-{tag}-{embedder.model_id.replace('/', '_')}-{digest}.npy"
        if tag == "torch" and not cache.exists() and not fresh:
            # The same Embedder over the same texts, cached by benchmarks/common.py's embed_cached.
            shared = hashlib.sha256("\x1e".join([embedder.model_id, *texts]).encode()).hexdigest()[:16]
            shared_path = OUT / f"emb-{embedder.model_id.replace('/', '_')}-{shared}.npy"
            if shared_path.exists():
                cache = shared_path
        if cache.exists() and not fresh:
            vectors, full_s = np.load(cache), None
        else:
            print(f"  embedding all {len(texts)} abstracts with {name} (cached as {cache.name}) ...", flush=True)
            start = time.perf_counter()
            vectors = embedder.encode(texts, batch_size=32)
            full_s = time.perf_counter() - start
            np.save(cache, vectors)
        qvecs = np.stack([embedder.encode_query(q) for q in queries])
        if reference is None:
            reference = vectors
        cos = (vectors * reference).sum(axis=1)
        rows[name] = {"passages_per_s": round(statistics.median(speed[name]), 1),
                      "rounds": [round(s, 1) for s in speed[name]],
                      "full_corpus_s": round(full_s, 1) if full_s else None,
                      "ndcg@10": round(ndcg(vectors, qvecs), 4),
                      "cos_to_torch_min": round(float(cos.min()), 5), "cos_to_torch_mean": round(float(cos.mean()), 5)}
    base = rows["sentence-transformers fp32 (torch)"]
    for row in rows.values():
        row["speed_x"] = round(row["passages_per_s"] / base["passages_per_s"], 2)
        row["ndcg_drop"] = round(base["ndcg@10"] - row["ndcg@10"], 4)
    return {"sample": len(subset), "rows": rows, "load_average": loadavg()}


def query_latency(data: Path, index_dir: Path, n: int = 200) -> dict:
    import numpy as np
    from bench_retrieval import load_beir

    from rq.index.encoders.torch_encoder import Embedder
    from rq.index.encoders.onnx_encoder import OnnxEmbedder
    from rq.index.encoders.store import export_dir
    from rq.settings import Settings

    ds = load_beir(data / "beir" / "scifact", ["test"])
    queries = [ds.queries[q] for q in sorted(ds.qrels["test"])][:n]
    paths = {"sentence-transformers (torch, 2 threads)": Embedder(MODEL)}
    for threads in (1, 2):
        paths[f"ONNX fp32, {threads} intra-op thread{'s' if threads > 1 else ''}"] = OnnxEmbedder(
            export_dir(Settings()), MODEL, query_threads=threads)
    out = {}
    for name, embedder in paths.items():
        for q in queries[:10]:
            embedder.encode_query(q)
        ms = []
        for q in queries:
            start = time.perf_counter()
            embedder.encode_query(q)
            ms.append((time.perf_counter() - start) * 1000)
        out[name] = {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}
    return {"queries": len(queries), "rows": out, "load_average": loadavg()}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each cold-start command")
    parser.add_argument("--sample", type=int, default=400, help="abstracts per throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per path")
    parser.add_argument("--fresh", action="store_true", help="embed the full corpus again for nDCG")
    parser.add_argument("--skip", default="", help="comma list of sections to skip: cold,throughput,latency")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    OUT.mkdir(parents=True, exist_ok=True)
    # Sections skipped in this run keep their figures from the last run that measured them.
    previous = OUT / "speed.json"
    results: dict = json.loads(previous.read_text()) if previous.exists() else {}
    results.update({"load_average_start": loadavg(), "cpus": os.cpu_count()})
    print(f"# rq speed benchmark\n\n{os.cpu_count()} CPUs, load average {loadavg()}\n", flush=True)

    print("## Indexes", flush=True)
    queue_path, scifact_index, built = build_scifact_index(args.data)
    default_index = default_index_copy()
    export_default = ensure_exported(default_index) if default_index else None
    export_scifact = ensure_exported(scifact_index, queue_path)
    results["indexes"] = {"scifact": {**built, "path": str(scifact_index)},
                          "default": str(default_index),
                          "export_s": {"default": export_default, "scifact": export_scifact}}
    print(f"  SciFact index {scifact_index}: {built}; default index copy {default_index}", flush=True)

    if "cold" not in skip:
        print(f"\n## Cold start ({args.repeat} runs each, round-robin; load {loadavg()})\n", flush=True)
        py = [sys.executable]
        commands = {"python -c 'import sentence_transformers' (reference)": py + ["-c", "import sentence_transformers"],
                    "rq --help": [str(BIN / "rq"), "--help"]}
        targets = [("embedded default", default_index, []), ("SciFact 5,183 docs", scifact_index,
                                                             ["--queue", str(queue_path)])]
        for label, index_dir, extra in targets:
            if index_dir is None:
                continue
            args_search = ["search", QUERY, "-k", "5", "--index", str(index_dir), *extra]
            commands[f"rq search, {label}"] = [str(BIN / "rq"), *args_search]
        if default_index is not None:
            commands["rq next, embedded default"] = [str(BIN / "rq"), "next", "--index", str(default_index)]
            commands["rq related TEXT, embedded default"] = [str(BIN / "rq"), "related", "--text",
                                                             "feature stores", "--index", str(default_index)]
        cold = cold_start(commands, args.repeat)
        results["cold_start"] = {"rows": cold, "load_average": loadavg()}
        print(md_table(["command", "median s", "min s", "max s", "note"],
                       [[k, v["median_s"], v["min_s"], v["max_s"], v["note"]] for k, v in cold.items()]))
        print(f"\nload average after: {loadavg()}", flush=True)

    if "throughput" not in skip:
        print("\n## Embedding throughput and quality (SciFact abstracts, MTEB protocol)\n", flush=True)
        tq = throughput_and_quality(args.data, scifact_index, args.sample, args.rounds, args.fresh)
        results["throughput"] = tq
        print(md_table(["path", "passages/s (median)", "rounds", "x torch", "nDCG@10", "drop", "cos to torch min/mean"],
                       [[k, v["passages_per_s"], v["rounds"], v["speed_x"], v["ndcg@10"], v["ndcg_drop"],
                         f"{v['cos_to_torch_min']}/{v['cos_to_torch_mean']}"] for k, v in tq["rows"].items()]))
        print(f"\nload average after: {tq['load_average']}", flush=True)

    if "latency" not in skip:
        print("\n## Warm single-query embedding latency (SciFact test queries)\n", flush=True)
        lat = query_latency(args.data, scifact_index)
        results["query_latency"] = lat
        print(md_table(["path", "p50 ms", "p99 ms"], [[k, v["p50_ms"], v["p99_ms"]] for k, v in lat["rows"].items()]))
        print(f"\nload average after: {lat['load_average']}", flush=True)

    print("\n## Scale (benchmarks/bench_scale.py)\n")
    for path in sorted(OUT.glob("scale-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        scale = json.loads(path.read_text())
        results.setdefault("scale", {})[scale["n"]] = scale
        print(f"{scale['n']:,} x {scale['dim']}: {scale['kind']} (M={scale['m']}, efConstruction="
              f"{scale['ef_construction']}), build {scale['build_s']} s, RSS +{scale['rss_index_mb']} MB, file "
              f"{scale['index_file_mb']} MB, load {scale['load_s']} s, "
              f"exact one query {scale['exact_one_query_ms']} ms")
        print(md_table(["efSearch", "queries", "k", "recall@10", "p50 ms", "p99 ms"],
                       [[r["ef_search"], r["queries"], r["k"], r["recall@10"], r["p50_ms"], r["p99_ms"]]
                        for r in scale["searches"]]))
        print()
    results["load_average_end"] = loadavg()
    (OUT / "speed.json").write_text(json.dumps(results, indent=2))
    print(f"results in {OUT / 'speed.json'}; load average at the end {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
