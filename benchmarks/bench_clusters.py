#!/usr/bin/env python
"""Topic clusters and their names in rq, measured on six real reading lists.

    python benchmarks/bench_clusters.py [--data ../shared/data] [--out benchmarks/out]

The lists' own sections are the labels, so items are embedded as "title\\nnote" with no
section names (benchmarks/reading_lists.py; rq's own encoder, ONNX int8). The label of an
item is its TOP-LEVEL section.

1. Clusters vs top-level sections (NMI, adjusted Rand) at k = number of sections, for rq's
   methods and a tf-idf + k-means baseline in the same run.
2. rq's automatic k beside the same-k figure, on every list, on the six lists pooled, and on
   250-item samples of each; with the floor of auto k at other settings (SECTION_SHARE).
3. HDBSCAN (chooses its own k); small queues of 25 items drawn from 5 sections.
4. Cluster names at the automatic k: how often a name holds a word of the heading most of
   the cluster's items sit under, how many terms are phrases, and names sharing words.

The section audit is measured in bench_audit.py; clusters at 10,000 items in bench_clusters_scale.py.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reading_lists as rl  # noqa: E402

from rq.rank.topics import clusters as rqc  # noqa: E402
from rq.rank.topics import naming as rqn  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
SMALL_SECTIONS, SMALL_PER_SECTION, SMALL_SAMPLES = 5, 5, 10
SAMPLE_ITEMS, SAMPLES = 250, 2
SHARES = (0.0, 0.5, 0.75, 1.0)  # the floor of auto k: share of sections; 0.0 = no floor (rq before issue 14)
NEW_API = "sections" in inspect.signature(rqc.cluster).parameters  # False on rq before issue 14


def scores(truth: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return float(normalized_mutual_info_score(truth, found)), float(adjusted_rand_score(truth, found))


def auto(vectors: np.ndarray, leaf: list) -> rqc.Clustering:
    """rq's automatic k as `rq clusters` runs it: the floor from the queue's own sections."""
    if NEW_API:
        return rqc.cluster(vectors, "auto", sections=rqc.topic_sections(leaf))
    return rqc.cluster(vectors, "auto")


def tfidf_kmeans(texts: list[str], k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(matrix)


def same_k_table(lists: list[dict]) -> tuple[str, int]:
    rows, wins = [], 0
    for ds in lists:
        truth = rl.as_ints(ds["labels"])
        k = len(ds["sections"])
        vectors = ds["vectors"]
        base = np.array([scores(truth, tfidf_kmeans(ds["texts"], k, s)) for s in SEEDS])
        ward = scores(truth, rqc.cluster(vectors, k, "ward").labels)
        average = scores(truth, rqc.cluster(vectors, k, "average").labels)
        kmeans = np.array([scores(truth, rqc.cluster(vectors, k, "kmeans", seed=s).labels) for s in SEEDS[:3]])
        wins += ward[0] > base[:, 0].mean()
        ds["same_k_nmi"] = ward[0]
        rows.append([ds["short"], len(truth), k, f"{base[:, 0].mean():.3f} ± {base[:, 0].std():.3f}",
                     f"**{ward[0]:.3f}**", f"{average[0]:.3f}", f"{kmeans[:, 0].mean():.3f}",
                     f"{base[:, 1].mean():.3f}", f"{ward[1]:.3f}", f"{ward[0] - base[:, 0].mean():+.3f}"])
    return rl.md_table(["list", "items", "k", "tf-idf+k-means NMI (5 seeds)", "rq ward NMI", "rq average-cos NMI",
                        "rq k-means NMI (3 seeds)", "baseline ARI", "rq ward ARI", "ward - baseline NMI"], rows), wins


def pooled(lists: list[dict]) -> dict:
    """The six lists as one queue: each URL once (its first list), sections prefixed by the list."""
    seen, keep = set(), []
    for ds in lists:
        for i, url in enumerate(ds["urls"]):
            if url not in seen:
                seen.add(url)
                keep.append((ds, i))
    return {"short": "six lists pooled", "vectors": np.vstack([ds["vectors"][i] for ds, i in keep]),
            "labels": [(ds["name"], *ds["labels"][i]) for ds, i in keep],
            "leaf": [(ds["name"], *ds["leaf"][i]) for ds, i in keep]}


def auto_rows(cases: list[dict]) -> list[list]:
    rows = []
    for ds in cases:
        truth = rl.as_ints(ds["labels"])
        k = len(set(ds["labels"]))
        same = ds.get("same_k_nmi")
        if same is None:
            same = scores(truth, rqc.cluster(ds["vectors"], k, "ward").labels)[0]
        start = time.perf_counter()
        found = auto(ds["vectors"], ds["leaf"])
        seconds = time.perf_counter() - start
        nmi, ari = scores(truth, found.labels)
        sweep = []
        if NEW_API:
            for share in SHARES:
                floor = {"SECTION_SHARE": share} if share else {"SECTION_SHARE": 0.0, "MAX_MEAN_SIZE": 10**9}
                with rl.patched(rqc, **floor):
                    other = auto(ds["vectors"], ds["leaf"])
                sweep.append(f"{other.k}: {scores(truth, other.labels)[0]:.3f}")
        rows.append([ds["short"], len(truth), k, rqc.topic_sections(ds["leaf"]) if NEW_API else "",
                     f"{same:.3f}", found.k, f"**{nmi:.3f}**", f"{ari:.3f}", f"{seconds:.2f}", *sweep])
    return rows


def auto_table(lists: list[dict]) -> tuple[str, str]:
    header = ["list", "items", "top-level sections (same k)", "sections of 3+ items", "same-k NMI", "auto k",
              "auto NMI", "auto ARI", "seconds"] + ([f"k: NMI, floor {s:.0%}" if s else "k: NMI, no floor"
                                                    for s in SHARES] if NEW_API else [])
    main = rl.md_table(header, auto_rows(lists + [pooled(lists)]))
    rng = np.random.default_rng(0)
    samples = []
    for ds in lists:
        for rep in range(SAMPLES):
            ix = np.sort(rng.choice(len(ds["vectors"]), SAMPLE_ITEMS, replace=False))
            samples.append({"short": f"{ds['short']} sample {rep + 1}", "vectors": ds["vectors"][ix],
                            "labels": [ds["labels"][i] for i in ix], "leaf": [ds["leaf"][i] for i in ix]})
    return main, rl.md_table(header, auto_rows(samples))


def hdbscan_table(lists: list[dict]) -> str:
    rows = []
    for ds in lists:
        truth = rl.as_ints(ds["labels"])
        hdb = rqc.cluster(ds["vectors"], "auto", "hdbscan")
        nmi, ari = scores(truth, hdb.labels)
        rows.append([ds["short"], hdb.k, f"{np.mean(hdb.labels < 0):.0%}", f"{nmi:.3f}", f"{ari:.3f}"])
    return rl.md_table(["list", "HDBSCAN clusters", "unclustered", "NMI (outliers as one label)", "ARI"], rows)


def small_queue_table(lists: list[dict]) -> str:
    """25-item queues (5 sections x 5 items) drawn from the real lists, 10 draws each."""
    rng = np.random.default_rng(0)
    rows, totals = [], []
    for ds in lists:
        labels = np.asarray([repr(x) for x in ds["labels"]])
        counts = Counter(labels)
        big = sorted(s for s, n in counts.items() if n >= 2 * SMALL_PER_SECTION)
        if len(big) < SMALL_SECTIONS:
            continue
        results = []
        for _ in range(SMALL_SAMPLES):
            chosen = rng.choice(big, size=SMALL_SECTIONS, replace=False)
            ix = np.concatenate([rng.choice(np.flatnonzero(labels == s), SMALL_PER_SECTION, replace=False)
                                 for s in chosen])
            x, truth = ds["vectors"][ix], rl.as_ints(list(labels[ix]))
            ward = scores(truth, rqc.cluster(x, SMALL_SECTIONS, "ward").labels)
            kmeans = scores(truth, rqc.cluster(x, SMALL_SECTIONS, "kmeans").labels)
            base = scores(truth, tfidf_kmeans([ds["texts"][i] for i in ix], SMALL_SECTIONS, 0))
            found = auto(x, list(labels[ix]))
            hdb = rqc.cluster(x, "auto", "hdbscan")
            results.append([base[1], ward[1], kmeans[1], found.k, scores(truth, found.labels)[1],
                            float(np.mean(hdb.labels < 0)), hdb.k])
        mean = np.mean(results, axis=0)
        totals.append(mean)
        rows.append([ds["short"], *(f"{v:.3f}" for v in mean[:3]), f"{mean[3]:.1f}", f"{mean[4]:.3f}",
                     f"{mean[5]:.0%}", f"{mean[6]:.1f}"])
    mean = np.mean(totals, axis=0)
    rows.append(["**mean**", *(f"{v:.3f}" for v in mean[:3]), f"{mean[3]:.1f}", f"{mean[4]:.3f}",
                 f"{mean[5]:.0%}", f"{mean[6]:.1f}"])
    return rl.md_table(["list", "tf-idf+k-means ARI", "rq ward ARI", "rq k-means ARI", "auto k (true 5)",
                        "auto ARI", "HDBSCAN unclustered", "HDBSCAN clusters"], rows)


def _stems(text: str) -> set[str]:
    """Word stems of ``text`` for the names measure: the benchmark's own, so that it stays the same
    measure whatever rq's code does (rq.words' tokenizer and stopwords, a few English suffixes)."""
    from rq.words import content_words

    out = set()
    for word in content_words(text):
        for suffix in ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "s", "ed"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        out.add(word)
    return out


def names_table(lists: list[dict]) -> str:
    """Per list, at the automatic k: names that hold a word of the heading most of their items sit under."""
    rows, total = [], np.zeros(6)
    for ds in lists:
        labels = auto(ds["vectors"], ds["leaf"]).labels
        kwargs = {"vectors": ds["vectors"]} if "vectors" in inspect.signature(rqn.name_clusters).parameters else {}
        names = rqn.name_clusters(ds["texts"], labels, **kwargs)
        leaf_hits = top_hits = phrases = terms = 0
        for c, name in enumerate(names):
            members = np.flatnonzero(labels == c)
            words = set().union(*(_stems(t) for t in name)) if name else set()
            leaf = Counter(ds["leaf"][i] for i in members).most_common(1)[0][0]
            top = Counter(ds["labels"][i] for i in members).most_common(1)[0][0]
            leaf_hits += bool(words & _stems(leaf[-1]))
            top_hits += bool(words & _stems(top[-1]))
            phrases += sum(len(t.split()) > 1 for t in name)
            terms += len(name)
        sets = [set().union(*(_stems(t) for t in name)) if name else set() for name in names]
        pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
        most = sum(bool(a) and bool(b) and 2 * len(a & b) > min(len(a), len(b)) for a, b in pairs)
        some = sum(bool(a & b) for a, b in pairs)
        k = len(names)
        total += [k, leaf_hits, top_hits, phrases, terms, most]
        rows.append([ds["short"], k, f"{leaf_hits / k:.0%}", f"{top_hits / k:.0%}", f"{phrases / max(terms, 1):.0%}",
                     f"{terms / k:.1f}", most, some, "; ".join(", ".join(n) for n in names[:3])])
    k, leaf_hits, top_hits, phrases, terms, most = total
    rows.append(["**all**", int(k), f"{leaf_hits / k:.0%}", f"{top_hits / k:.0%}", f"{phrases / terms:.0%}",
                 f"{terms / k:.1f}", int(most), "", ""])
    return rl.md_table(["list", "clusters", "name holds a word of its main deepest heading",
                        "... of its main top-level heading", "terms that are phrases", "terms per name",
                        "name pairs sharing most words", "name pairs sharing a word", "first three names"], rows)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    loaded = rl.lists_from_command_line(argv, __doc__.splitlines()[0])
    if loaded is None:
        return 2
    args, embedder, lists = loaded

    print(f"# rq clusters on {len(lists)} real reading lists ({embedder.model_id}, "
          f"{type(embedder).__name__} {getattr(embedder, 'bulk', '')})\n")
    print("Labels: top-level sections. Items embedded as title + note, no section names.\n")
    table, wins = same_k_table(lists)
    print(f"## Clusters vs top-level sections, same k\n\n{table}\n")
    print(f"rq ward beats the tf-idf + k-means baseline's NMI on {wins} of {len(lists)} lists.\n")
    main_table, sample_table = auto_table(lists)
    print(f"## rq's automatic k (ward) beside the same k\n\n{main_table}\n")
    print(f"### {SAMPLE_ITEMS}-item samples, {SAMPLES} per list\n\n{sample_table}\n")
    print(f"## HDBSCAN (chooses its own k)\n\n{hdbscan_table(lists)}\n")
    print(f"## Small queues: {SMALL_SECTIONS} sections x {SMALL_PER_SECTION} items, "
          f"{SMALL_SAMPLES} draws per list (mean)\n\n{small_queue_table(lists)}\n")
    print(f"## Cluster names at the automatic k\n\n{names_table(lists)}\n")
    print(f"Total {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
