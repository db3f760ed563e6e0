"""Ingest under fire: 1,000 links, 30 % of them faulty in every way a server can be.

Two local sites on 127.0.0.1 (a second port stands in for a second host): the main
site serves good pages and every fault; a "knowledge base" site answers any unknown
address under /kb/ with the same 200 "wrong turn" page (a catch-all), next to real
articles. The faulty share is spread evenly over these kinds:

    404, 410, 500 always, 500 then 200 (good), 429 + Retry-After then 200 (good),
    slow past the read timeout, a byte-per-second dribble, connection reset, body over
    the size cap (declared and streamed), gzip bomb, redirect loop, too many redirects,
    redirect to file://, a PDF labelled text/html (good), a non-UTF-8 charset (good),
    an empty page (no text), soft 404 by title, by redirect to the home page and by
    the catch-all sibling.

Good pages include articles *about* 404 pages (no false positive allowed). One cold
``ingest`` runs in a child process (so its peak memory, and the extraction worker's,
are its own) with small timeouts. Reported: wall time, peak memory, share of good
pages archived with their text, a confusion table (expected vs got), the slowest link.
Exit status 1 if a good page is missing or a fault got the wrong reason.

    python benchmarks/stress_ingest.py [--links 1000] [--faulty 0.3] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness the tests use: tests/support

from support.http import FixtureServer, static  # noqa: E402
from support.pdf import make_pdf  # noqa: E402
from support.queues import write_queue  # noqa: E402
from support.routes import (CatchAll, dribble, fails_first, gzip_bomb, page, random_paragraphs,  # noqa: E402
                            redirect, reset, slow, streamed, wrong_turn)

# Small limits so every fault ends quickly; the child process gets exactly these.
SETTINGS = dict(allow_private=True, fetch_host_delay=0.0, fetch_concurrency=8, fetch_per_host=8,
                connect_timeout=2.0, read_timeout=1.5, total_timeout=4.0, retries=2, backoff=0.1,
                retry_after_max=2.0, max_bytes=1_000_000, max_redirects=5, extract_timeout=30.0)

# kind -> (expected outcome, soft-404 signal expected or None)
FAULTS = {
    "http_404": ("not_found", None),
    "http_410": ("not_found", None),
    "http_500_always": ("http_error", None),
    "http_500_then_200": ("ok", None),
    "http_429_then_200": ("ok", None),
    "slow_headers": ("timeout", None),
    "dribble": ("timeout", None),
    "reset": ("reset", None),
    "over_cap_declared": ("too_large", None),
    "over_cap_streamed": ("too_large", None),
    "gzip_bomb": ("too_large", None),
    "redirect_loop": ("redirect_loop", None),
    "too_many_redirects": ("too_many_redirects", None),
    "redirect_to_file": ("blocked", None),
    "pdf_as_html": ("ok", None),
    "legacy_charset": ("ok", None),
    "empty_page": ("no_text", None),
    "soft_404_title": ("soft_404", "title"),
    "soft_404_home": ("soft_404", "home_redirect"),
    "soft_404_sibling": ("soft_404", "sibling"),
}
GOOD_KINDS = ("good", "good_about_404", "good_on_catch_all_site")

CHARSETS = [("cp1252", "windows-1252", "Crème brûlée façade naïve café"),
            ("shift_jis", "Shift_JIS", "検索エンジンの仕組みと索引"),
            ("koi8_r", "KOI8-R", "Поисковая система и индекс"),
            ("iso8859_7", "ISO-8859-7", "Μηχανή αναζήτησης και ευρετήριο")]


def article(title: str, marker: str, rng: random.Random, extra: str = "") -> bytes:
    return page(title, f"Reference {marker}.", html=extra + random_paragraphs(rng, 5, 55),
                nav="<nav><a href='/'>Home</a></nav>", footer="footer")


def build_sites(links: int, faulty: float, seed: int):
    """Start the two sites; returns (servers, [(kind, url, marker)])."""
    rng = random.Random(seed)
    main, kb = FixtureServer(), FixtureServer()
    kb.routes = CatchAll("/kb/", wrong_turn)
    main.start()
    kb.start()
    main.route("/", static(article("Acme home", "home", rng)))
    big = b"<html><body>" + b"<p>too much text</p>" * 60_000 + b"</body></html>"  # 1.2 MB
    bomb = gzip_bomb(40)  # ~40 kB that inflate to 40 MB

    n_faulty = round(links * faulty)
    kinds = [list(FAULTS)[i % len(FAULTS)] for i in range(n_faulty)]
    n_good = links - n_faulty
    kinds += ["good_about_404" if i % 20 == 0 else "good_on_catch_all_site" if i % 10 == 1 else "good"
              for i in range(n_good)]
    rng.shuffle(kinds)
    items = []
    for i, kind in enumerate(kinds):
        marker = f"zq{i:05d}marker"
        p = f"/{kind}/{i}"
        if kind == "good":
            url = main.route(p, static(article(f"Good page {i}", marker, rng)))
        elif kind == "good_about_404":
            extra = ("<p>A page not found error is a dead end; a good 404 page says the page does not "
                     "exist any more and offers a way forward.</p>")
            url = main.route(p, static(article(f"Designing a better 404 page, part {i}", marker, rng, extra)))
        elif kind == "good_on_catch_all_site":
            url = kb.route(f"/kb/article-{i}", static(article(f"Knowledge base article {i}", marker, rng)))
        elif kind == "http_404":
            url = main.url(p)  # unregistered: the fixture answers 404
        elif kind == "http_410":
            url = main.route(p, static(b"<html><body>gone</body></html>", status=410))
        elif kind == "http_500_always":
            url = main.route(p, static(b"<html><body>broken</body></html>", status=500))
        elif kind == "http_500_then_200":
            url = main.route(p, fails_first(500, article(f"Flaky {i}", marker, rng)))
        elif kind == "http_429_then_200":
            url = main.route(p, fails_first(429, article(f"Throttled {i}", marker, rng), {"Retry-After": "1"}))
        elif kind == "slow_headers":
            url = main.route(p, slow(SETTINGS["read_timeout"] + 2.0, static(b"<html><body>too late</body></html>")))
        elif kind == "dribble":
            url = main.route(p, dribble(60, 1.0))
        elif kind == "reset":
            url = main.route(p, reset)
        elif kind == "over_cap_declared":
            url = main.route(p, static(big))
        elif kind == "over_cap_streamed":
            url = main.route(p, streamed(big))
        elif kind == "gzip_bomb":
            url = main.route(p, static(bomb, headers={"Content-Encoding": "gzip"}))
        elif kind == "redirect_loop":
            url = main.route(f"{p}/a", redirect(f"{p}/b"))
            main.route(f"{p}/b", redirect(f"{p}/a"))
        elif kind == "too_many_redirects":
            url = main.route(f"{p}/0", redirect(f"{p}/1"))
            for hop in range(1, 10):
                main.route(f"{p}/{hop}", redirect(f"{p}/{hop + 1}"))
            main.route(f"{p}/10", static(article("End of the chain", marker, rng)))
        elif kind == "redirect_to_file":
            url = main.route(p, redirect("file:///etc/passwd"))
        elif kind == "pdf_as_html":
            url = main.route(p, static(make_pdf([[f"Reference {marker}.", "A paper served as text/html",
                                                  "about vector quantisation and retrieval."]])))
        elif kind == "legacy_charset":
            codec, label, phrase = CHARSETS[i % len(CHARSETS)]
            body = article(f"Legacy {i}", marker, rng, f"<p>{phrase}</p>").decode().encode(codec)
            url = main.route(p, static(body, f"text/html; charset={label}"))
            marker = f"{marker} {phrase}"
        elif kind == "empty_page":
            url = main.route(p, static(b"<html><head><title></title></head><body></body></html>"))
        elif kind == "soft_404_title":
            url = main.route(p, static(b"<!doctype html><html><head><title>Page not found | Acme</title></head>"
                                       b"<body><h1>Page not found</h1><p>Sorry, we could not find that page."
                                       b"</p></body></html>"))
        elif kind == "soft_404_home":
            url = main.route(p, redirect("/"))
        elif kind == "soft_404_sibling":
            url = kb.url(f"/kb/retired-{i}")  # caught by the catch-all
        else:  # pragma: no cover
            raise AssertionError(kind)
        items.append((kind, url, marker))
    return (main, kb), items


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from rq.ingest.pipeline import ingest
from rq.settings import Settings
args = json.loads(sys.argv[1])
settings = Settings(queue=Path(args["queue"]), index=Path(args["index"]), **args["settings"])
started = time.perf_counter()
summary = ingest(settings)
wall = time.perf_counter() - started
print(json.dumps({"wall": wall, "summary": summary.as_dict(),
                  "maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def classify(index: Path) -> dict[str, tuple[str, str | None, str, str, float]]:
    """resource id -> (got, soft-404 signal, extracted text, detail, fetch seconds)."""
    conn = sqlite3.connect(index / "archive.sqlite")
    conn.row_factory = sqlite3.Row
    docs = {r["resource_id"]: r for r in conn.execute("SELECT * FROM documents")}
    got = {}
    for f in conn.execute("""SELECT f.* FROM fetches f JOIN (SELECT resource_id, MAX(id) AS id FROM fetches
                             GROUP BY resource_id) last ON f.id = last.id"""):
        doc = docs.get(f["resource_id"])
        text = doc["text"] if doc is not None else ""
        if f["outcome"] == "failed":
            signal = f["detail"].split(":", 1)[0] if f["reason"] == "soft_404" else None
            got[f["resource_id"]] = (f["reason"], signal, text, f["detail"], f["elapsed"] or 0.0)
        else:
            outcome = "ok" if text.strip() else (doc["problem"] if doc is not None and doc["problem"] else "no_text")
            got[f["resource_id"]] = (outcome, None, text, f["detail"], f["elapsed"] or 0.0)
    conn.close()
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--faulty", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from rq.report.health import health_report
    from rq.settings import Settings
    from rq.queue.ids import resource_id

    servers, items = build_sites(args.links, args.faulty, args.seed)
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rq-stress-ingest-") as tmp:
            queue, index = Path(tmp) / "queue.md", Path(tmp) / "index"
            write_queue(queue, [(f"{kind} {i}", url) for i, (kind, url, _) in enumerate(items)], "Stress", "Links")
            payload = json.dumps({"queue": str(queue), "index": str(index), "settings": SETTINGS})
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _CHILD, payload], capture_output=True, text=True,
                                  timeout=1800)
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            got = classify(index)
            report = health_report(Settings(queue=queue, index=index, **SETTINGS))
    finally:
        for server in servers:
            server.stop()

    table: dict[str, Counter] = {}
    good_total = good_archived = 0
    slowest = 0.0
    for kind, url, marker in items:
        expected, signal = FAULTS.get(kind, ("ok", None))
        outcome, got_signal, text, detail, elapsed = got.get(resource_id(url), ("not fetched", None, "", "", 0.0))
        slowest = max(slowest, elapsed)
        label = outcome + (f" ({got_signal})" if got_signal else "")
        table.setdefault(kind, Counter())[label] += 1
        if expected == "ok":
            good_total += 1
            if outcome == "ok" and all(part in text for part in marker.split(" ", 1)):
                good_archived += 1
            else:
                failures.append(f"good page not archived with its text: {kind} {url} -> {outcome} {detail}")
        elif outcome != expected or (signal and got_signal != signal):
            failures.append(f"{kind} {url}: expected {expected}{f' ({signal})' if signal else ''}, "
                            f"got {label}: {detail}")

    summary = child["summary"]
    n_faulty = sum(1 for kind, _, _ in items if kind in FAULTS)
    print(f"links: {len(items)} ({n_faulty} faulty = {n_faulty / len(items):.0%}, over {len(FAULTS)} kinds), "
          f"2 local sites; fetch_concurrency {SETTINGS['fetch_concurrency']}, read_timeout "
          f"{SETTINGS['read_timeout']:g}s, total_timeout {SETTINGS['total_timeout']:g}s, retries "
          f"{SETTINGS['retries']}, max_bytes {SETTINGS['max_bytes']:,}")
    print(f"wall time: {wall:.1f} s for the ingest process ({child['wall']:.1f} s inside ingest()); "
          f"slowest link {slowest:.2f} s (per-link cap {SETTINGS['total_timeout']:g} s)")
    print(f"peak RSS: ingest process {child['maxrss_self_kb'] / 1024:.0f} MB, extraction worker "
          f"{child['maxrss_children_kb'] / 1024:.0f} MB")
    print(f"summary: fetched {summary['fetched']}, failed {sum(summary['failed'].values())} "
          f"{dict(sorted(summary['failed'].items()))}, no text {summary['no_text']}")
    print(f"good pages archived with their text: {good_archived}/{good_total} "
          f"({100 * good_archived / max(1, good_total):.1f} %)")
    print(f"health_report counts: {report['counts']}")
    print("\n| kind | n | expected | got |\n|---|---|---|---|")
    for kind in [*GOOD_KINDS, *FAULTS]:
        if kind not in table:
            continue
        expected, signal = FAULTS.get(kind, ("ok", None))
        want = expected + (f" ({signal})" if signal else "")
        got_cell = ", ".join(f"{label} {n}" for label, n in table[kind].most_common())
        print(f"| {kind} | {sum(table[kind].values())} | {want} | {got_cell} |")
    for failure in failures[:50]:
        print("FAILED:", failure)
    print("\nresult:", "OK" if not failures else f"{len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
