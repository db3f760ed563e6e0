"""A page of tens of megabytes of text, through the shipped commands: cut, timed, killed, resumed.

Serves one text page of ``--megabytes`` MB (random English words in paragraphs) on 127.0.0.1,
lists it in a queue with a few ordinary pages, and runs the real command line with the shipped
defaults (only ``--allow-private``, to reach 127.0.0.1):

1. ``rq ingest --no-index``: fetch and extract, timed;
2. ``rq index``, SIGKILLed once it has committed its first batch of embeddings;
3. ``rq index`` again: timed; it must embed only what the killed run had not committed, and
   say that the page was cut to ``max_passages_per_resource`` passages;
4. ``rq search`` for a word only in the page's opening, and one only past the cut.

Prints Markdown; exits 1 when a check fails.

    python benchmarks/huge_page.py [--megabytes 23]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the local HTTP server the tests use: tests/support

from support.http import FixtureServer, static  # noqa: E402

_WORDS = ("index passage vector search ranking query model embedding retrieval latency cache "
          "feature signal user item score recall precision learning system data table stream "
          "batch online offline graph node edge cluster topic reader page link queue").split()


def _text(megabytes: float, seed: int) -> bytes:
    rng = random.Random(seed)
    paragraphs, size = ["The opening names zanzibarquux, a word found nowhere else."], 0
    while size < megabytes * 1_000_000:
        paragraph = " ".join(rng.choice(_WORDS) for _ in range(80)) + "."
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    paragraphs.append("The closing names qworpflange, far past the cut.")
    return "\n\n".join(paragraphs).encode()


def _rq(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rq", *args], env=env, capture_output=True, text=True, **kwargs)


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def _kill_after_first_batch(args: list[str], env: dict, db: Path, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rq", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    committed = 0
    while proc.poll() is None and committed == 0 and time.monotonic() - start < timeout:
        time.sleep(0.2)
        committed = _committed(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return _committed(db), time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=23.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    failures: list[str] = []
    server = FixtureServer().start()
    try:
        body = _text(args.megabytes, args.seed)
        lines = ["# Reading", "", "## Dumps", f"* [ ] [Whole wiki as text]({server.route('/dump.txt', static(body, 'text/plain; charset=utf-8'))})"]
        for i in range(3):
            small = _text(0.01, args.seed + 1 + i)
            lines.append(f"* [ ] [Small page {i}]({server.route(f'/small{i}.txt', static(small, 'text/plain'))})")
        with tempfile.TemporaryDirectory(prefix="rq-huge-") as tmp:
            queue, index = Path(tmp) / "reading.md", Path(tmp) / "ix"
            queue.write_text("\n".join(lines) + "\n")
            env = {**os.environ, "RQ_QUEUE": str(queue), "RQ_INDEX": str(index), "HF_HUB_OFFLINE": "1"}
            start = time.monotonic()
            fetched = _rq(["ingest", "--no-index", "--allow-private"], env)
            ingest_s = time.monotonic() - start
            if fetched.returncode != 0:
                failures.append(f"rq ingest exit {fetched.returncode}: {fetched.stderr.strip()[-500:]}")
            committed, killed_after = _kill_after_first_batch(["index"], env, index / "archive.sqlite", 900)
            if committed == 0:
                failures.append("the killed rq index had committed no embeddings")
            start = time.monotonic()
            resumed = _rq(["index", "--json"], env)
            index_s = time.monotonic() - start
            report = {}
            if resumed.returncode != 0:
                failures.append(f"rq index exit {resumed.returncode}: {resumed.stderr.strip()[-500:]}")
            else:
                import json
                report = json.loads(resumed.stdout)
            cut = report.get("cut") or []
            if not cut or cut[0].get("kept") != 500:
                failures.append(f"the page was not reported cut to 500 passages: {cut}")
            if report.get("cached", 0) < committed:
                failures.append(f"the resumed run re-embedded what was committed ({report.get('cached')} < {committed})")
            opening = _rq(["search", "zanzibarquux", "--json"], env)
            past = _rq(["search", "qworpflange", "--json", "--mode", "keyword"], env)
            if "Whole wiki as text" not in opening.stdout:
                failures.append("the page's opening is not found")
            if "Whole wiki as text" in past.stdout:
                failures.append("text past the cut was indexed")
    finally:
        server.stop()

    print(f"## A {len(body) / 1e6:.1f} MB text page through the shipped commands\n")
    print("| step | result |\n|---|---|")
    print(f"| `rq ingest --no-index` | {ingest_s:.1f} s, exit {fetched.returncode} |")
    print(f"| `rq index`, SIGKILLed after its first committed batch | killed at {killed_after:.1f} s, "
          f"{committed} embeddings committed |")
    print(f"| `rq index` again | {index_s:.1f} s, {report.get('embedded')} embedded, {report.get('cached')} "
          f"reused, {report.get('passages')} passages |")
    for item in cut:
        print(f"| cut | {item.get('title')}: kept {item.get('kept')} of ~{item.get('total')} passages |")
    print(f"\nchecks failed: {len(failures)}")
    for failure in failures:
        print(f"- FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
