#!/usr/bin/env python
"""Extraction quality and speed of rq.extract.

    python benchmarks/bench_extract.py [--data ../shared/data]

HTML: the 45 pages of data/html/scrapinghub_aeb (ids from manifest.tsv; page
pages/<id>.html, gold gold/<id>.txt). The score is the article-extraction-benchmark
metric as data/html/README.md describes it: tokens are the regex \\w+ runs; each text
becomes the multiset of its 4-token shingles (a text of 1-3 tokens is one shingle of
all its tokens, an empty text none); per page P = tp/(tp+fp) and R = tp/(tp+fn) over
shingle counts (P = R = 1 when both sides are empty, 0 when nothing matches); P and R
are averaged over pages and F1 = 2PR/(P+R) of the two means.

Rows: rq's extract in this process and through the isolated worker pool, the installed
trafilatura with its defaults, and trafilatura 2.0.0's published output for the same
pages (reference_output_trafilatura.json).

PDF: the five papers in data/pdf, through rq's extract (seconds per document, pages,
characters, title found).

Prints Markdown tables on stdout; writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rq.extract.extract import extract  # noqa: E402
from rq.extract.worker import ExtractorPool  # noqa: E402
from rq.settings import Settings  # noqa: E402

TOKEN = re.compile(r"\w+")


# --------------------------------------------------------------------------- metric


def shingles(text: str, n: int = 4) -> Counter:
    tokens = TOKEN.findall(text or "")
    if not tokens:
        return Counter()
    if len(tokens) < n:
        return Counter([" ".join(tokens)])
    return Counter(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def precision_recall(gold: str, predicted: str) -> tuple[float, float]:
    expected, got = shingles(gold), shingles(predicted)
    tp = sum((expected & got).values())
    fp = sum(got.values()) - tp
    fn = sum(expected.values()) - tp
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    if tp == 0:
        return 0.0, 0.0
    return tp / (tp + fp), tp / (tp + fn)


def score(gold: dict[str, str], predicted: dict[str, str]) -> tuple[float, float, float]:
    pairs = [precision_recall(gold[key], predicted.get(key, "")) for key in gold]
    p = statistics.fmean(pr[0] for pr in pairs)
    r = statistics.fmean(pr[1] for pr in pairs)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


# --------------------------------------------------------------------------- runs


def load_pages(folder: Path) -> tuple[list[dict], dict[str, str]]:
    with (folder / "manifest.tsv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    pages = []
    gold = {}
    for row in rows:
        key = row["id"]
        pages.append({"id": key, "url": row["url"], "body": (folder / "pages" / f"{key}.html").read_bytes()})
        gold[key] = (folder / "gold" / f"{key}.txt").read_text(encoding="utf-8")
    return pages, gold


def timed(pages: list[dict], run) -> tuple[dict[str, str], float, list]:
    started = time.perf_counter()
    results = {page["id"]: run(page) for page in pages}
    seconds = time.perf_counter() - started
    texts = {key: (r if isinstance(r, str) else r.text) for key, r in results.items()}
    return texts, seconds, list(results.values())


def bench_html(folder: Path, settings: Settings) -> list[tuple]:
    pages, gold = load_pages(folder)
    rows = []
    n = len(pages)

    warm = pages[0]
    extract(warm["body"], "text/html", warm["url"], settings)  # imports and lazy tables, not timed
    texts, seconds, results = timed(pages, lambda p: extract(p["body"], "text/html", p["url"], settings))
    problems = Counter(r.problem for r in results if r.problem)
    with_title = sum(bool(r.title) for r in results)
    with_date = sum(bool(r.date) for r in results)
    with_author = sum(bool(r.author) for r in results)
    rows.append(("rq extract (in process)", *score(gold, texts), n / seconds,
                 f"title {with_title}/{n}, date {with_date}/{n}, author {with_author}/{n}"
                 + (f", problems {dict(problems)}" if problems else "")))

    with ExtractorPool(size=1) as pool:
        started = time.perf_counter()
        pool.extract(warm["body"], "text/html", warm["url"], settings)
        startup = time.perf_counter() - started
        texts, seconds, _ = timed(pages, lambda p: pool.extract(p["body"], "text/html", p["url"], settings))
    rows.append(("rq extract_isolated (1 worker)", *score(gold, texts), n / seconds,
                 f"first call incl. worker start {startup:.2f} s (not in pages/s)"))

    import trafilatura

    texts, seconds, _ = timed(pages, lambda p: trafilatura.extract(p["body"]) or "")
    rows.append((f"trafilatura {trafilatura.__version__} defaults", *score(gold, texts), n / seconds, ""))

    reference_file = folder / "reference_output_trafilatura.json"
    if reference_file.exists():
        reference = json.loads(reference_file.read_text(encoding="utf-8"))
        texts = {key: value.get("articleBody", "") for key, value in reference["output"].items()}
        rows.append((f"trafilatura {reference.get('version', '?')} (published output)", *score(gold, texts),
                     None, "reference"))
    return rows


def bench_pdf(folder: Path, settings: Settings) -> list[tuple]:
    files = sorted(folder.glob("*.pdf"))
    if files:
        extract(files[0].read_bytes(), "application/pdf", files[0].name, settings)  # warm-up
    rows = []
    for path in files:
        body = path.read_bytes()
        started = time.perf_counter()
        result = extract(body, "application/pdf", path.as_uri(), settings)
        seconds = time.perf_counter() - started
        rows.append((path.name, seconds, result.pages, len(result.text), result.title or "", result.problem or ""))
    return rows


# --------------------------------------------------------------------------- output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data",
                        help="folder holding html/ and pdf/ (default: ../shared/data from the repo root)")
    args = parser.parse_args(argv)
    data = args.data.resolve()
    html_folder = data / "html" / "scrapinghub_aeb"
    pdf_folder = data / "pdf"
    if not html_folder.is_dir() and not pdf_folder.is_dir():
        parser.error(f"no html/scrapinghub_aeb or pdf/ under {data}")
    settings = Settings()

    print("# rq extraction benchmark\n")
    print(f"command: `python benchmarks/bench_extract.py --data {args.data}`\n")
    if html_folder.is_dir():
        rows = bench_html(html_folder, settings)
        print(f"## HTML main text: {html_folder.name} (45 pages), 4-shingle P/R/F1\n")
        print("| extractor | P | R | F1 | pages/s | notes |")
        print("|---|---|---|---|---|---|")
        for name, p, r, f1, speed, notes in rows:
            speed_text = f"{speed:.1f}" if speed else "–"
            print(f"| {name} | {p:.3f} | {r:.3f} | **{f1:.3f}** | {speed_text} | {notes} |")
        print()
    if pdf_folder.is_dir():
        rows = bench_pdf(pdf_folder, settings)
        print("## PDF text (pypdfium2 through rq.extract.pdf)\n")
        print("| file | s/doc | pages | chars | title | problem |")
        print("|---|---|---|---|---|---|")
        for name, seconds, pages, chars, title, problem in rows:
            print(f"| {name} | {seconds:.3f} | {pages} | {chars:,} | {title[:70]} | {problem} |")
        if rows:
            total_pages = sum(r[2] or 0 for r in rows)
            total_seconds = sum(r[1] for r in rows)
            print(f"| **mean** | **{total_seconds / len(rows):.3f}** | {total_pages / len(rows):.1f} | "
                  f"{statistics.fmean(r[3] for r in rows):,.0f} | {total_pages / total_seconds:.0f} pages/s | |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
