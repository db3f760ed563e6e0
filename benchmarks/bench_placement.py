#!/usr/bin/env python
"""Where `rq add` files a new link, on six real reading lists: 20 % of each list held out and added back.

    python benchmarks/bench_placement.py [--data ../shared/data] [--out benchmarks/out]

For each list and seed, 20 % of the items are taken out; each is then placed by
rq.rank.topics.placement.Placer (the function `rq add` uses) among the sections the other 80 %
sit in, from its title and note (no page text: this machine has no network, and the lists'
pages are not archived). Its section is its deepest heading, the audit's sections; an empty
leaf heading is a candidate too. Reported: top-1 and top-3 accuracy, against
* tf-idf: scikit-learn's TfidfVectorizer (words and word pairs, sublinear tf) and a
  LogisticRegression on the same 80 % and the same texts, ranked by its decision function;
* the largest section: the sections by how many of the 80 % they hold.
And for the shipped "strong evidence" rule (file without asking): how many items it files
that way (coverage) and how many of those land in their own section (precision).

Weights (NEAREST_SHARE, HEADING_WEIGHT) and the strong rule (STRONG_MARGIN, STRONG_MIN) are
chosen on the tuning lists (production-ML, Awesome-recsys, awesome-search), reported on the
other three. The strong rule: the widest coverage whose precision on the tuning lists is at
least TARGET_PRECISION.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reading_lists as rl  # noqa: E402

from rq.rank.topics import placement as pl  # noqa: E402

SEEDS = (0, 1, 2)
HOLD_OUT = 0.2
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
HEADINGS = (0.0, 0.1, 0.2, 0.3)
MARGINS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
MINS = (0.3, 0.4, 0.5, 0.6)
TARGET_PRECISION = 0.9


def splits(ds: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(ds["texts"])
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * HOLD_OUT))
    return np.sort(order[cut:]), np.sort(order[:cut])


def rq_ranks(ds: dict, train: np.ndarray, test: np.ndarray) -> list[tuple[list, tuple]]:
    """Per held-out item: the ranked candidates and its own section."""
    placer = pl.Placer(ds["vectors"][train], [ds["leaf"][i] for i in train], [ds["texts"][i] for i in train],
                       ds["heading_vectors"], ds["headings"])
    return [(placer.rank(ds["vectors"][i], ds["texts"][i]), ds["leaf"][i]) for i in test]


def rq_accuracy(ranked: list[tuple[list, tuple]]) -> tuple[float, float]:
    top1 = np.mean([c[0].section == truth for c, truth in ranked])
    top3 = np.mean([truth in [x.section for x in c[:3]] for c, truth in ranked])
    return float(top1), float(top3)


def strong(ranked: list[tuple[list, tuple]]) -> tuple[int, int]:
    """(filed without asking, of those in their own section)."""
    chosen = [(c, truth) for c, truth in ranked if pl.is_strong(c)]
    return len(chosen), sum(c[0].section == truth for c, truth in chosen)


def tfidf_accuracy(ds: dict, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    labels = [repr(ds["leaf"][i]) for i in train]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    xtr = vectorizer.fit_transform([ds["texts"][i] for i in train])
    model = LogisticRegression(max_iter=2000, C=10.0).fit(xtr, labels)
    scores = model.decision_function(vectorizer.transform([ds["texts"][i] for i in test]))
    if scores.ndim == 1:  # two classes
        scores = np.stack([-scores, scores], axis=1)
    ranked = np.argsort(-scores, axis=1)
    truth = [repr(ds["leaf"][i]) for i in test]
    top1 = np.mean([model.classes_[r[0]] == t for r, t in zip(ranked, truth)])
    top3 = np.mean([t in model.classes_[r[:3]] for r, t in zip(ranked, truth)])
    return float(top1), float(top3)


def largest_accuracy(ds: dict, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    from collections import Counter

    biggest = [s for s, _ in Counter(ds["leaf"][i] for i in train).most_common(3)]
    truth = [ds["leaf"][i] for i in test]
    return float(np.mean([t == biggest[0] for t in truth])), float(np.mean([t in biggest for t in truth]))


def sweep_weights(tuning: list[dict]) -> tuple[list[list], tuple[float, float]]:
    rows, best = [], None
    for share in SHARES:
        for heading in HEADINGS:
            with rl.patched(pl, NEAREST_SHARE=share, HEADING_WEIGHT=heading):
                accs = [rq_accuracy(rq_ranks(ds, *splits(ds, seed))) for ds in tuning for seed in SEEDS]
            top1, top3 = np.mean([a[0] for a in accs]), np.mean([a[1] for a in accs])
            rows.append([share, heading, f"{top1:.3f}", f"{top3:.3f}"])
            if best is None or top1 > best[0]:
                best = (top1, (share, heading))
    return rows, best[1]


def sweep_strong(ranked: list[tuple[list, tuple]]) -> tuple[list[list], tuple[float, float]]:
    rows, best = [], None
    for margin in MARGINS:
        for low in MINS:
            with rl.patched(pl, STRONG_MARGIN=margin, STRONG_MIN=low):
                filed, right = strong(ranked)
            precision = right / filed if filed else 0.0
            coverage = filed / len(ranked)
            rows.append([margin, low, f"{coverage:.3f}", f"{precision:.3f}"])
            if precision >= TARGET_PRECISION and (best is None or coverage > best[0]):
                best = (coverage, (margin, low))
    return rows, (best[1] if best else (pl.STRONG_MARGIN, pl.STRONG_MIN))


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    loaded = rl.lists_from_command_line(argv, __doc__.splitlines()[0])
    if loaded is None:
        return 2
    _, embedder, lists = loaded
    tuning = [ds for ds in lists if ds["tune"]]
    print(f"# Where a new link goes: {HOLD_OUT:.0%} of each list held out, seeds {SEEDS} "
          f"({embedder.model_id}, {type(embedder).__name__} {getattr(embedder, 'bulk', '')})\n")
    rows, (share, heading) = sweep_weights(tuning)
    print("## NEAREST_SHARE and HEADING_WEIGHT on the tuning lists (mean over lists and seeds)\n")
    print(rl.md_table(["NEAREST_SHARE", "HEADING_WEIGHT", "top-1", "top-3"], rows) + "\n")
    print(f"Best top-1: NEAREST_SHARE={share}, HEADING_WEIGHT={heading}; shipped: "
          f"{pl.NEAREST_SHARE}, {pl.HEADING_WEIGHT}.\n")
    ranked_tuning = [r for ds in tuning for seed in SEEDS for r in rq_ranks(ds, *splits(ds, seed))]
    rows, (margin, low) = sweep_strong(ranked_tuning)
    print(f"## STRONG_MARGIN and STRONG_MIN on the tuning lists (precision >= {TARGET_PRECISION})\n")
    print(rl.md_table(["STRONG_MARGIN", "STRONG_MIN", "coverage", "precision"], rows) + "\n")
    print(f"Widest coverage at that precision: STRONG_MARGIN={margin}, STRONG_MIN={low}; shipped: "
          f"{pl.STRONG_MARGIN}, {pl.STRONG_MIN}.\n")
    print("## Shipped settings, every list (mean over seeds)\n")
    table = []
    for ds in lists:
        per = {"rq": [], "tfidf": [], "largest": [], "strong": []}
        for seed in SEEDS:
            train, test = splits(ds, seed)
            ranked = rq_ranks(ds, train, test)
            per["rq"].append(rq_accuracy(ranked))
            per["tfidf"].append(tfidf_accuracy(ds, train, test))
            per["largest"].append(largest_accuracy(ds, train, test))
            filed, right = strong(ranked)
            per["strong"].append((filed / len(test), right / filed if filed else float("nan")))
        mean = {k: np.nanmean(np.array(v), axis=0) for k, v in per.items()}
        table.append([ds["short"] + ("" if ds["tune"] else " (held out)"), len(ds["texts"]),
                      len(set(ds["leaf"])), f"{mean['rq'][0]:.3f}", f"{mean['rq'][1]:.3f}",
                      f"{mean['tfidf'][0]:.3f}", f"{mean['tfidf'][1]:.3f}", f"{mean['largest'][0]:.3f}",
                      f"{mean['largest'][1]:.3f}", f"{mean['strong'][0]:.2f}", f"{mean['strong'][1]:.2f}"])
    print(rl.md_table(["list", "items", "sections", "rq top-1", "rq top-3", "tf-idf top-1", "tf-idf top-3",
                       "largest top-1", "largest top-3", "filed unasked", "of those right"], table) + "\n")
    print(f"Total {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
