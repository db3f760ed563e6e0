#!/usr/bin/env python
"""`rq serve` (issue 15): warm API latency, the command line through the engine, memory, load.

    python benchmarks/bench_serve.py [--repeat 15] [--clients 20] [--seconds 30]

On the SciFact index (5,183 abstracts) that benchmarks/shipped.py builds through the shipped
path (`shipped_index`; ~25 minutes the first time on two cores, then reused), with the shipped
defaults (ONNX query encoder):

1. Warm API latency, p50/p99: a real `rq serve` on 127.0.0.1 (a subprocess, default settings),
   asked over HTTP with keep-alive by one client, one request at a time: /api/search for each
   of the 300 SciFact test queries, /api/next (n=10; 20 abstracts marked read first, with
   the same edit as `rq done`) and /api/related (n=5) for 100 different resources.
2. `rq search QUERY` wall time from a fresh process, through the running engine against
   in-process (the engine file hidden between runs), round-robin, `--repeat` runs each, with
   and without --json; run as the installed console script runs (`from rq.cli.launch import
   main`). Also what the client path imports (python -X importtime).
3. The engine process's memory (VmRSS now, VmHWM peak) after all of the above.
4. `--clients` concurrent clients (threads, keep-alive) sending /api/search for `--seconds`:
   requests per second, latency percentiles, and errors (any non-200 or failed request).

Everything runs on the same machine as the engine (2 cores here): the clients' own CPU is
taken from the engine's, so the load figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from shipped import DATA, ROOT, load_beir, shipped_index  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "bench_serve.json"
READ = 20  # abstracts marked read, so `next` has something to learn from


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def env_of() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}  # the shipped defaults
    env.update(PYTHONPATH=str(ROOT / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def mark_some_read(corpus) -> None:
    from rq.archive.marks import mark
    from rq.queue.parse import read_queue

    queue = read_queue(corpus.queue_path)
    for resource in queue.resources[:READ]:
        mark(corpus.settings, resource.id, "read")


def latency(client, path: str, params: list[dict]) -> dict:
    times = []
    for p in params:
        start = time.perf_counter()
        answer = client.get(path, params=p)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    return {"n": len(times), "p50_ms": round(pct(times, 50), 1), "p99_ms": round(pct(times, 99), 1),
            "mean_ms": round(statistics.fmean(times), 1)}


def cli_walls(corpus, query: str, repeat: int, engine_file: Path) -> dict:
    """Fresh processes, as the console script runs rq; round-robin through engine / in-process."""
    script = Path(tempfile.mkdtemp()) / "rq"
    script.write_text("import sys\nfrom rq.cli.launch import main\nsys.exit(main())\n")
    env = env_of()
    hidden = engine_file.with_name("serve.json.hidden")
    cases = {}
    for way in ("engine", "in-process"):
        for fmt in ((), ("--json",), ("show",)):
            cases[(way, fmt)] = []
    base = [sys.executable, str(script), "search", query, "-n", "10", "--queue", str(corpus.queue_path),
            "--index", str(corpus.index_dir)]
    show = [sys.executable, str(script), "show", corpus_first_id(corpus), "--queue", str(corpus.queue_path),
            "--index", str(corpus.index_dir)]
    outputs = {}
    for i in range(repeat + 1):
        for (way, fmt), times in cases.items():
            if way == "in-process":
                engine_file.rename(hidden)
            try:
                start = time.perf_counter()
                # ("show",): `rq show ID --json`, an answer the engine makes in a few ms: the client's floor.
                command = show + ["--json"] if fmt == ("show",) else base + list(fmt)
                proc = subprocess.run(command + ["-v"], capture_output=True, text=True, env=env, cwd=ROOT)
                took = time.perf_counter() - start
            finally:
                if way == "in-process":
                    hidden.rename(engine_file)
            assert proc.returncode == 0, proc.stderr
            assert ("answered by the engine" in proc.stderr) == (way == "engine"), proc.stderr
            outputs.setdefault((way, fmt), proc.stdout)
            if i:  # the first round warms the page cache
                times.append(took)
    same = all(outputs[("engine", fmt)] == outputs[("in-process", fmt)] for fmt in ((), ("--json",), ("show",)))
    result = {f"{way}{' ' + ' '.join(fmt) if fmt else ''}": {"median_s": round(statistics.median(t), 3),
                                                    "min_s": round(min(t), 3), "max_s": round(max(t), 3)}
              for (way, fmt), t in cases.items()}
    result["identical_stdout"] = same
    result["imports"] = client_imports(base + ["--json"], env)
    return result


def corpus_first_id(corpus) -> str:
    from rq.queue.parse import read_queue

    return read_queue(corpus.queue_path).resources[0].id


def client_imports(command: list[str], env: dict) -> dict:
    """What the client path imports before it has the engine's answer printed."""
    proc = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    top = [row for row in (line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:"))
           if row[1].strip().isdigit()]
    modules = {row[2].strip() for row in top}
    # Top-level imports have one space before their name; a cumulative time includes its children.
    total_us = sum(int(row[1]) for row in top if len(row[2]) - len(row[2].lstrip()) == 1)
    heavy = [m for m in ("numpy", "faiss", "torch", "onnxruntime", "typer", "rich", "fastapi") if m in modules]
    return {"modules": len(modules), "top_level_import_ms": round(total_us / 1000, 1), "heavy": heavy}


def memory(pid: int) -> dict:
    values = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(line.split()[1]) / 1024)
    return values


def hammer(base: str, queries: list[str], clients: int, seconds: float) -> dict:
    import httpx

    ok, errors, times, lock = [0], [], [], threading.Lock()
    end = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            i = k
            while time.monotonic() < end:
                start = time.perf_counter()
                try:
                    answer = http.get("/api/search", params={"q": queries[i % len(queries)], "n": 10})
                    good = answer.status_code == 200
                    problem = None if good else f"HTTP {answer.status_code}"
                except Exception as exc:  # counted, not raised: the figure is how many failed
                    good, problem = False, type(exc).__name__
                took = (time.perf_counter() - start) * 1000
                with lock:
                    if good:
                        ok[0] += 1
                        times.append(took)
                    else:
                        errors.append(problem)
                i += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    return {"clients": clients, "seconds": round(wall, 1), "requests": ok[0], "errors": len(errors),
            "error_kinds": sorted(set(errors)), "per_s": round(ok[0] / wall, 1),
            "p50_ms": round(pct(times, 50), 1) if times else None, "p99_ms": round(pct(times, 99), 1) if times else None}


def main(argv: list[str] | None = None) -> int:
    import httpx

    sys.path.insert(0, str(ROOT / "tests"))
    from support.serving import Engine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)

    ds = load_beir(DATA / "beir" / "scifact", ["test"])
    corpus = shipped_index(ds)
    mark_some_read(corpus)
    queries = list(ds.split("test")[0].values())
    engine = Engine.start(corpus.queue_path, corpus.index_dir, env_of(), timeout=900)
    results: dict = {"load_start": loadavg(), "resources": len(ds.doc_ids),
                     "passages": json.loads((corpus.index_dir / "manifest.json").read_text())["passages"]}
    try:
        with httpx.Client(base_url=engine.base, timeout=60) as http:
            for q in queries[:10]:
                http.get("/api/search", params={"q": q})
            ids = [v["id"] for v in http.get("/api/items").json()][:100]
            results["api"] = {
                "search": latency(http, "/api/search", [{"q": q, "n": 10} for q in queries]),
                "next": latency(http, "/api/next", [{"n": 10}] * 100),
                "related": latency(http, "/api/related", [{"ref": rid, "n": 5} for rid in ids]),
            }
        print(json.dumps(results["api"]), flush=True)
        results["cli"] = cli_walls(corpus, queries[0], args.repeat, engine.index / "serve.json")
        print(json.dumps(results["cli"]), flush=True)
        results["memory_after_latency_mb"] = memory(engine.proc.pid)
        results["load"] = hammer(engine.base, queries, args.clients, args.seconds)
        results["memory_mb"] = memory(engine.proc.pid)
        results["load_end"] = loadavg()
    finally:
        engine.stop()
    results["engine_log_errors"] = sum(1 for line in engine.log().splitlines() if " 500 " in line or "error" in line)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
