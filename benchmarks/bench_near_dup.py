#!/usr/bin/env python
"""When is a suggestion "the same story" as something read? The cosine threshold, chosen on data.

    PYTHONPATH=src python benchmarks/bench_near_dup.py [--data ../shared/data] [--out benchmarks/out]

Every vector here is rq's own, made the way `rq index` makes it: the texts below go into a queue
and an archive (benchmarks/shipped.py: ``shipped_index``, one item per text, its title as the link
text), ``build_index`` embeds them with the shipped defaults (ONNX int8 passages), and the vectors
are read back through ``ReadSession``: ``vectors`` (the page's mean passage blended half and half
with the title, what "because you read" compares) and ``page_vectors`` (the page's part alone,
what `rq next` and `rq related` compare to call two resources the same story). The reading lists have no
pages, so their items' vectors are their title and note alone, as rq's are for a link it could not
fetch (benchmarks/reading_lists.py, the shipped encoder).

Labelled pairs (read-only data under --data; nothing is copied into the repository):

Near-duplicates (positives)
  * same story, two outlets, found by reading the 45 pages of html/scrapinghub_aeb (their ids):
    06e5123e (VentureBeat) / 1ace8c85 (TechCrunch): New York's attorney general investigating WeWork;
    156770d6 (The Hill) / 3f65af7b (NJ.com): South Dakota's "Meth. We're on it." campaign.
    Each page as rq extracts it, with its own <title>.
  * same page, another copy: each page as rq extracts it (its <title>) against
    - "other extractor": trafilatura 2.0.0's published output for the page;
    - "teaser": the first third of the page's gold text (a paywalled or syndicated excerpt);
    - "whole page": every text node of the page's <body>, menus and footers included (what a
      failed extraction of a mirror keeps);
    each of these listed under the title a reader pasting its address would give it: the URL's
    last path segment in words (the <title> when the address has no words).
  * same paper, two links: each of the five arXiv PDFs as rq extracts it against its first
    1,500 characters (the abstract page), both under the paper's title.

Distinct (negatives)
  * same topic, different story (hard), grouped by reading the pages: SAME_TOPIC below, every pair
    within a group (the same-story pairs excepted);
  * every other pair of English pages; pairs with one of the 7 pages not in English (the model is
    English-only) are counted apart;
  * the five papers against each other (all machine learning; three are on sentence or word
    embeddings);
  * every pair of distinct items in the same deepest section of the six reading lists (title and
    note only). A list may hold the same work twice under two links (a paper and its blog post):
    the pairs of this set above the chosen threshold are printed for inspection.

Which vectors: a resource vector is half its title, so two parts of a series (near-identical
titles, different pages; ``series_docs``: each same-topic page listed again under its neighbour's
title plus " (part 2)") look as alike as one story told twice. The pairs are therefore compared on
their page vectors (``ReadSession.page_vectors``: the page's part of the stored resource vector),
and both tables are printed. Items with no page (the lists) are never marked: their pairs above
the threshold are printed to show why.

Choosing: the pages fall into two splits by a seeded shuffle (the two pages of a same-story pair
together) and the papers alternate. A pair belongs to a split when both its ends do. On split A
only: the threshold with the best F1, on a 0.01 grid, the highest of equals; precision and recall
are then reported on split B, and on all labelled pairs for reference. (A first rule, midway
between split A's highest distinct pair and the near-duplicate above it, was dropped after one
run, in which two "series" pairs were in fact the same-story pairs mislabelled (now skipped): they
put it at 0.93, above both same-story pairs. The labels were corrected and F1 used.)

Weak evidence: how alike must a read item be before "because you read X (0.31)" says much? On the
lists, items of one deepest section against items of different sections; the bound is the cosine
that best separates the two (Youden's J, the largest TPR - FPR) on the choosing lists, checked on
the others, with the distributions' quantiles printed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import reading_lists
import shipped

SAME_STORY = [("06e5123e", "1ace8c85"), ("156770d6", "3f65af7b")]
SAME_TOPIC = {  # by reading the 45 pages: different stories, one topic
    "cars at the 2019 LA auto show": ["05844573", "06ee193d", "3cb22bfa", "3cb5e2f4"],
    "space science": ["14cc2a0c", "359fee22", "42aad16b", "3c5bf8db"],
    "Delhi's air": ["16c30add", "076f4f33"],
    "sport": ["08f79376", "0d461229", "264dc3ae"],
    "companies and markets": ["06e5123e", "1ace8c85", "360c732d", "39d5c43b", "374ac9a5", "2f42ef1d"],
    "Apple": ["232a43fb", "291a8bf3", "287e4d9f"],
    "film, music and streaming": ["35b15891", "3d8f3404", "098bb3e9"],
    "politics and conflict": ["04a6711c", "1ee91d1f", "1f765c48", "0dd13570"],
    "meth and drugs": ["156770d6", "3f65af7b", "432362af"],
    "one blog, two posts": ["0e014df6", "4219d096"],
    "one blog, two posts (Portuguese)": ["23aaecd1", "3252222e"],
}
NOT_ENGLISH = ["0ec95c72", "11ea381a", "20b2b649", "21486419", "23aaecd1", "3252222e", "3c6d3381"]
PAPERS = {  # file name start -> title, as data/pdf/README.md gives them
    "vaswani2017": "Attention Is All You Need",
    "devlin2018": "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
    "cer2018": "Universal Sentence Encoder",
    "wu2017": "StarSpace: Embed All The Things!",
    "frankle2019": "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks",
}
ABSTRACT_CHARS = 1500
TEASER_SHARE = 1 / 3
SEED = 14


@dataclass
class Doc:
    key: str  # "<page id>:<variant>" or "<paper>:<variant>"
    title: str
    text: str


# --------------------------------------------------------------------------- the texts


def slug_title(url: str, fallback: str) -> str:
    """The words of an address's last path segment, as a reader pasting the link might title it."""
    parts = [p for p in urlparse(url).path.split("/") if p]
    words = re.sub(r"\.(html?|php)$", "", parts[-1] if parts else "").replace("_", "-").split("-")
    words = [w for w in words if w.isalpha()]
    return " ".join(words).capitalize() if len(words) >= 3 else fallback


def whole_page_text(html: bytes) -> str:
    """Every text node of the body, scripts and styles aside: no extraction at all."""
    import lxml.html

    tree = lxml.html.fromstring(html)
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    body = tree.find("body")
    lines = [" ".join(t.split()) for t in (body if body is not None else tree).itertext()]
    return "\n".join(line for line in lines if line)


def teaser(gold: str) -> str:
    """The first paragraphs of the gold text, about a third of it (at least one paragraph)."""
    paragraphs = [p for p in gold.split("\n\n") if p.strip()]
    out, size = [], 0
    for p in paragraphs:
        if out and size >= TEASER_SHARE * len(gold):
            break
        out.append(p)
        size += len(p)
    return "\n\n".join(out)


def page_docs(folder: Path) -> tuple[list[Doc], dict[str, str]]:
    """The four copies of every page (see the module docstring); returns the docs and id -> url."""
    from rq.extract.extract import extract
    from rq.settings import Settings

    settings = Settings()
    reference = json.loads((folder / "reference_output_trafilatura.json").read_text())["output"]
    docs, urls = [], {}
    with (folder / "manifest.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            pid, url = row["id"][:8], row["url"]
            urls[pid] = url
            html = (folder / "pages" / f"{row['id']}.html").read_bytes()
            got = extract(html, "text/html", url, settings)
            title = got.title or slug_title(url, url)
            pasted = slug_title(url, title)
            gold = (folder / "gold" / f"{row['id']}.txt").read_text(encoding="utf-8")
            docs += [Doc(f"{pid}:page", title, got.text),
                     Doc(f"{pid}:other-extractor", pasted, reference[row["id"]]["articleBody"]),
                     Doc(f"{pid}:teaser", pasted, teaser(gold)),
                     Doc(f"{pid}:whole-page", pasted, whole_page_text(html))]
    return docs, urls


def series_docs(docs: list[Doc]) -> list[Doc]:
    """Each page of a same-topic group listed again under the title of the group's page before it,
    with " (part 2)" added: different pages behind near-identical titles, as a series has."""
    page = {d.key.split(":")[0]: d for d in docs if d.key.endswith(":page")}
    out = []
    for pids in SAME_TOPIC.values():
        english = [p for p in pids if p not in NOT_ENGLISH]
        for a, b in itertools.pairwise(english):
            if (a, b) in SAME_STORY or (b, a) in SAME_STORY:
                continue  # one story: not a series of two
            out.append(Doc(f"{b}:series-{a}", f"{page[a].title} (part 2)", page[b].text))
    return out


def paper_docs(folder: Path) -> list[Doc]:
    from rq.extract.extract import extract
    from rq.settings import Settings

    docs = []
    for path in sorted(folder.glob("*.pdf")):
        key = path.name.split("_")[0]
        text = extract(path.read_bytes(), "application/pdf", path.name, Settings()).text
        docs += [Doc(f"{key}:paper", PAPERS[key], text), Doc(f"{key}:abstract", PAPERS[key], text[:ABSTRACT_CHARS])]
    return docs


def rq_vectors(docs: list[Doc], out: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """key -> rq's resource vector, and key -> its page vector, through the shipped index and
    ReadSession (``vectors`` and ``page_vectors``: what `rq next` and `rq related` compare)."""
    from rq.rank.session import ReadSession

    ds = shipped.Dataset("near-dup", [d.key.replace(":", "~") for d in docs], [d.title for d in docs],
                         [d.text for d in docs], {}, {})
    start = time.perf_counter()
    corpus = shipped.shipped_index(ds, out=out / "shipped")
    print(f"  index: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    lib = ReadSession(corpus.settings, [])
    try:
        pages, with_page = lib.page_vectors()
        assert with_page.all(), "every text here has a page"
        key = {rid: corpus.doc_of[rid].replace("~", ":") for rid in lib.row}
        return ({key[rid]: lib.vectors[row] for rid, row in lib.row.items()},
                {key[rid]: pages[row] for rid, row in lib.row.items()})
    finally:
        lib.close()


# --------------------------------------------------------------------------- the pairs


@dataclass
class Pair:
    kind: str
    positive: bool
    cosine: float
    ends: tuple[str, str]  # split units
    label: str


def page_pairs(vec: dict[str, np.ndarray], pages: list[str]) -> list[Pair]:
    def cos(a: str, b: str) -> float:
        return float(vec[a] @ vec[b])

    out = []
    for pid in pages:
        for variant in ("other-extractor", "teaser", "whole-page"):
            out.append(Pair(f"same page: {variant}", True, cos(f"{pid}:page", f"{pid}:{variant}"), (pid, pid),
                            pid))
    story = {frozenset(p) for p in SAME_STORY}
    topic = {frozenset((a, b)) for group in SAME_TOPIC.values() for a in group for b in group if a < b}
    for i, a in enumerate(pages):
        for b in pages[i + 1:]:
            pair = frozenset((a, b))
            c = cos(f"{a}:page", f"{b}:page")
            if pair in story:
                out.append(Pair("same story, two outlets", True, c, (a, b), f"{a}/{b}"))
            elif a in NOT_ENGLISH or b in NOT_ENGLISH:
                out.append(Pair("distinct: a page not in English", False, c, (a, b), f"{a}/{b}"))
            elif pair in topic:
                out.append(Pair("distinct: same topic (hard)", False, c, (a, b), f"{a}/{b}"))
            else:
                out.append(Pair("distinct: other English pages", False, c, (a, b), f"{a}/{b}"))
    for key in vec:
        if ":series-" in key:
            b, a = key.split(":series-")
            out.append(Pair("distinct: a series (same title, other page)", False, cos(f"{a}:page", key), (a, b),
                            f"{a}/{b}"))
    return out


def paper_pairs(vec: dict[str, np.ndarray]) -> list[Pair]:
    keys = sorted({k.split(":")[0] for k in vec if k.endswith(":paper")})
    out = [Pair("same paper: abstract page", True, float(vec[f"{k}:paper"] @ vec[f"{k}:abstract"]), (k, k), k)
           for k in keys]
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            out.append(Pair("distinct: two papers", False, float(vec[f"{a}:paper"] @ vec[f"{b}:paper"]), (a, b),
                            f"{a}/{b}"))
    return out


def list_pairs(lists: list[dict]) -> list[Pair]:
    out = []
    for ds in lists:
        v = ds["vectors"]
        sims = v @ v.T
        leaf = ds["leaf"]
        by_section: dict = {}
        for i, path in enumerate(leaf):
            by_section.setdefault(path, []).append(i)
        for members in by_section.values():
            for x, i in enumerate(members):
                for j in members[x + 1:]:
                    if ds["urls"][i] != ds["urls"][j]:
                        out.append(Pair("distinct: same list section", False, float(sims[i, j]),
                                        (ds["name"], ds["name"]), f"{ds['short']}: {ds['titles'][i][:50]!r} / "
                                        f"{ds['titles'][j][:50]!r}"))
    return out


def splits(pages: list[str], papers: list[str], lists: list[dict]) -> dict[str, str]:
    """unit -> "A" (choose) or "B" (report)."""
    groups = [list(p) for p in SAME_STORY]
    grouped = {p for g in groups for p in g}
    groups += [[p] for p in pages if p not in grouped]
    random.Random(SEED).shuffle(groups)
    side = {}
    for n, group in enumerate(groups):
        for p in group:
            side[p] = "AB"[n % 2]
    for n, key in enumerate(papers):
        side[key] = "AB"[n % 2]
    for ds in lists:
        side[ds["name"]] = "A" if ds["tune"] else "B"
    return side


# --------------------------------------------------------------------------- choosing, reporting


def in_split(pairs: list[Pair], side: dict[str, str], which: str) -> list[Pair]:
    return [p for p in pairs if side[p.ends[0]] == which and side[p.ends[1]] == which]


def precision_recall(pairs: list[Pair], t: float) -> tuple[float, float, int, int, int]:
    flagged = [p for p in pairs if p.cosine >= t]
    tp = sum(p.positive for p in flagged)
    positives = sum(p.positive for p in pairs)
    return (tp / len(flagged) if flagged else 1.0, tp / positives if positives else 0.0, tp, len(flagged) - tp,
            positives)


def choose(pairs: list[Pair]) -> float:
    """The threshold with the best F1 on ``pairs``, on a 0.01 grid; of equals, the highest (a
    false "same story" sinks a new article, a missed one only shows a repeat first)."""
    def f1(t: float) -> float:
        precision, recall, *_ = precision_recall(pairs, t)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    grid = np.round(np.arange(0.50, 1.00, 0.01), 2)
    scores = np.array([f1(t) for t in grid])
    return float(grid[np.flatnonzero(scores >= scores.max() - 1e-12)[-1]])


def describe(pairs: list[Pair], title: str) -> None:
    kinds = list(dict.fromkeys(p.kind for p in pairs))
    print(f"\n### {title}\n")
    print("| pairs | n | min | 5% | median | 95% | max |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        c = np.array([p.cosine for p in pairs if p.kind == kind])
        print(f"| {kind} | {len(c)} | {c.min():.3f} | {np.percentile(c, 5):.3f} | {np.median(c):.3f} | "
              f"{np.percentile(c, 95):.3f} | {c.max():.3f} |")


def sweep(pairs: list[Pair], title: str, marks: list[float]) -> None:
    print(f"\n### {title}\n")
    print("| threshold | precision | recall | flagged same / distinct | " + " | ".join(
        k for k in dict.fromkeys(p.kind for p in pairs)) + " |")
    kinds = list(dict.fromkeys(p.kind for p in pairs))
    print("|---" * (4 + len(kinds)) + "|")
    for t in marks:
        precision, recall, tp, fp, _ = precision_recall(pairs, t)
        share = " | ".join(f"{np.mean([p.cosine >= t for p in pairs if p.kind == k]):.3f}" for k in kinds)
        print(f"| {t:.2f} | {precision:.3f} | {recall:.3f} | {tp} / {fp} | {share} |")


def weak_bound(lists: list[dict]) -> None:
    """Same-section vs different-section cosines on the lists; Youden's J on the choosing lists."""
    def cosines(chosen):
        same, other = [], []
        for ds in chosen:
            v = ds["vectors"]
            sims = v @ v.T
            leaf = np.array([hash(p) for p in ds["leaf"]])
            upper = np.triu_indices(len(v), 1)
            equal = (leaf[:, None] == leaf[None, :])[upper]
            same.append(sims[upper][equal])
            other.append(sims[upper][~equal])
        return np.concatenate(same), np.concatenate(other)

    print("\n### Weak evidence: cosine of two items of one section vs of different sections (lists)\n")
    print("| lists | pairs same / different | same: 25% / median / 75% | different: 25% / median / 75% / 95% "
          "| Youden's J best cut | TPR / FPR there |")
    print("|---|---|---|---|---|---|")
    cut = None
    for label, chosen in (("choosing (A)", [d for d in lists if d["tune"]]),
                          ("reporting (B)", [d for d in lists if not d["tune"]])):
        same, other = cosines(chosen)
        grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
        tpr = np.array([(same >= t).mean() for t in grid])
        fpr = np.array([(other >= t).mean() for t in grid])
        best = float(grid[int(np.argmax(tpr - fpr))])
        cut = best if cut is None else cut
        at = int(np.flatnonzero(grid == cut)[0])
        q = lambda x, ps: " / ".join(f"{np.percentile(x, p):.2f}" for p in ps)
        print(f"| {label} | {len(same)} / {len(other)} | {q(same, (25, 50, 75))} | {q(other, (25, 50, 75, 95))} "
              f"| {best:.2f} | {tpr[at]:.2f} / {fpr[at]:.2f} at {cut:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    reading_lists.limit_threads()

    docs, urls = page_docs(args.data / "html" / "scrapinghub_aeb")
    docs += series_docs(docs) + paper_docs(args.data / "pdf")
    resource, vec = rq_vectors(docs, args.out)
    lists = reading_lists.load_lists(args.data / "lists")
    reading_lists.embed_lists(reading_lists.make_embedder(), lists, args.out)

    pages = sorted(urls)
    papers = sorted(PAPERS)
    labelled = page_pairs(vec, pages) + paper_pairs(vec)
    titles_only = list_pairs(lists)
    side = splits(pages, papers, lists)
    a, b = in_split(labelled, side, "A"), in_split(labelled, side, "B")
    describe(page_pairs(resource, pages) + paper_pairs(resource),
             "Cosine of rq's resource vectors (page blended with title): why they do not decide")
    describe(labelled + titles_only, "Cosine of the page vectors (ReadSession.page_vectors), all pairs; "
             "the lists' items have no page: their title-and-note vectors")
    threshold = choose(a)
    print(f"\nchosen on split A ({sum(p.positive for p in a)} near-duplicate pairs, "
          f"{sum(not p.positive for p in a)} distinct): {threshold:.2f}")
    for label, chosen in (("split A (choosing)", a), ("split B (reporting)", b), ("all labelled pairs", labelled)):
        precision, recall, tp, fp, positives = precision_recall(chosen, threshold)
        print(f"{label}: precision {precision:.3f}, recall {recall:.3f} ({tp} of {positives} near-duplicates "
              f"flagged, {fp} distinct pairs flagged)")
    marks = sorted({*np.round(np.arange(0.70, 0.96, 0.02), 2), threshold})
    sweep(b, "Split B (reporting): share of each kind of pair at or above each threshold", marks)
    sweep(a, "Split A (choosing)", marks)
    named = [p for p in labelled if p.kind == "same story, two outlets"]
    print("\nsame story, two outlets: " + "; ".join(f"{p.label} {p.cosine:.3f}" for p in named))
    for kind in ("distinct: same topic (hard)", "distinct: a series (same title, other page)"):
        top = sorted((p for p in labelled if p.kind == kind), key=lambda p: -p.cosine)[:5]
        print(f"closest {kind}: " + "; ".join(f"{p.label} {p.cosine:.3f}" for p in top))
    missed = sorted((p for p in labelled if p.positive and p.cosine < threshold), key=lambda p: p.cosine)
    print(f"near-duplicates below the threshold ({len(missed)}): "
          + ("; ".join(f"{p.kind} {p.label} {p.cosine:.3f}" for p in missed) or "none"))
    above = sorted((p for p in titles_only if p.cosine >= threshold), key=lambda p: -p.cosine)
    print(f"\n### Title-only items (lists): {len(above)} of {len(titles_only)} same-section pairs "
          f"({len(above) / len(titles_only):.2%}) reach {threshold:.2f}; a sample, highest first\n")
    for p in above[::max(1, len(above) // 15)][:15]:
        print(f"- {p.cosine:.3f} {p.label}")
    weak_bound(lists)


if __name__ == "__main__":
    main()
