"""Ingest throughput, re-run cost and extraction quality, end to end over HTTP.

Serves the 45 real article pages and 5 arXiv PDFs from ../shared/data plus
generated pages for volume from a local server on 127.0.0.1, then:
  1. cold ingest: pages/s;
  2. unchanged re-run (links still fresh): time as a fraction of the cold run;
  3. forced re-run (--refresh: conditional GET, 304 or identical body, nothing re-extracted);
  4. extraction F1 of the archived text against the gold text (4-shingle metric of the data README).

    python benchmarks/bench_ingest.py [--data ../shared/data] [--generated 300]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness the tests use: tests/support
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_extract import load_pages, score  # noqa: E402
from support.http import FixtureServer, static  # noqa: E402
from support.queues import write_queue  # noqa: E402
from support.routes import page, random_paragraphs  # noqa: E402

from rq.ingest.pipeline import ingest  # noqa: E402
from rq.settings import Settings  # noqa: E402
from rq.archive.db import open_archive  # noqa: E402


def generated_page(i: int, rng: random.Random) -> bytes:
    return page(f"Generated {i}", html=random_paragraphs(rng, 8, 60), h1=f"Generated page {i}",
                nav="<nav>Home | About</nav>", footer="footer")


def with_etag(body: bytes, content_type: str):
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def handle(req):
        if req.headers.get("If-None-Match") == etag:
            req.send_response(304)
            req.send_header("ETag", etag)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        static(body, content_type, headers={"ETag": etag})(req)
    return handle


def serve(data: Path, generated: int) -> tuple[FixtureServer, dict[str, str], dict[str, str]]:
    server = FixtureServer().start()
    links: dict[str, str] = {}
    pages, gold = load_pages(data / "html" / "scrapinghub_aeb")
    for page in pages:
        path = f"/real/{page['id']}.html"
        links[f"Real page {page['id'][:8]}"] = server.route(path, with_etag(page["body"], "text/html; charset=utf-8"))
    for pdf in sorted((data / "pdf").glob("*.pdf")):
        links[f"Paper {pdf.stem}"] = server.route(f"/pdf/{pdf.name}", with_etag(pdf.read_bytes(), "application/pdf"))
    rng = random.Random(7)
    for i in range(generated):
        links[f"Generated {i}"] = server.route(f"/gen/{i}.html", with_etag(generated_page(i, rng), "text/html"))
    real_urls = {server.url(f"/real/{p['id']}.html"): p["id"] for p in pages}
    return server, links, {"gold": gold, "real_urls": real_urls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--generated", type=int, default=300)
    args = parser.parse_args(argv)
    server, links, truth = serve(args.data, args.generated)
    with tempfile.TemporaryDirectory() as tmp:
        queue = Path(tmp) / "queue.md"
        write_queue(queue, links.items(), "Bench", "Pages")
        settings = Settings(queue=queue, index=Path(tmp) / "index", allow_private=True, fetch_host_delay=0.0,
                            fetch_concurrency=8, fetch_per_host=8)
        started = time.perf_counter()
        cold = ingest(settings)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        rerun = ingest(settings)
        rerun_s = time.perf_counter() - started
        started = time.perf_counter()
        refresh = ingest(settings.replace(refresh=True))
        refresh_s = time.perf_counter() - started
        archive = open_archive(settings.index, str(queue.resolve()))
        rows = archive.conn.execute(
            "SELECT r.fetch_url, d.text FROM resources r JOIN documents d ON d.resource_id = r.id").fetchall()
        archive.close()
    server.stop()
    predicted = {truth["real_urls"][url]: text for url, text in rows if url in truth["real_urls"]}
    p, r, f1 = score(truth["gold"], predicted)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(links)
    print(f"links: {n} ({len(truth['real_urls'])} real pages, 5 PDFs, {args.generated} generated); "
          f"fetch_concurrency 8, 8 per host, no host delay")
    print("| run | seconds | pages/s | fetched | unchanged | fresh (skipped) | failed |")
    print("|---|---|---|---|---|---|---|")
    for name, summary, secs in (("cold", cold, cold_s), ("unchanged re-run", rerun, rerun_s),
                                ("--refresh re-run", refresh, refresh_s)):
        print(f"| {name} | {secs:.2f} | {n / secs:.1f} | {summary.fetched} | {summary.unchanged} | "
              f"{summary.fresh} | {sum(summary.failed.values())} |")
    print(f"\nunchanged re-run: {100 * rerun_s / cold_s:.1f}% of the cold run (target <= 5%); "
          f"--refresh re-run: {100 * refresh_s / cold_s:.1f}%")
    print(f"extraction on the {len(predicted)} real pages, archived via HTTP: P {p:.3f} R {r:.3f} F1 {f1:.3f} "
          f"(trafilatura 2.0.0 reference 0.961)")
    print(f"peak RSS of this process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
