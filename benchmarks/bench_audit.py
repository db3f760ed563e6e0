#!/usr/bin/env python
"""rq's section audit on six real reading lists: thresholds chosen on three, reported on the other three.

    python benchmarks/bench_audit.py [--data ../shared/data] [--out benchmarks/out]

Tuning lists: production-ML, Awesome-recsys, awesome-search. Held out: ML-Reading-List,
applied-ml, awesome-mlops. Every figure comes from rq.rank.topics.audit.audit() with the
shipped thresholds, except the sweeps, which patch one constant at a time on the tuning lists.
Sections are the lists' deepest headings (the audit's own sections), except in the misfiled
benchmark, which moves items between top-level sections as it did before.

1. Empty sections: for every topical leaf section of 6 or more items, hide its items (each
   moved under a random other heading), leave its heading empty and read what the audit
   suggests for it. precision@5: suggested hidden items among the first 5, over 5; recall:
   hidden items among everything the audit suggests (above FIT_MIN, the list not cut at 5),
   over the hidden items. Where they went does not change the suggestions: a heading's fit
   depends on the items and the headings, not on the sections the items sit in.
2. Thin sections: the same sections, 2 items left in place (the rest hidden as above); the
   suggestions by the 2 items' centroid (CENTROID_MIN) and by the heading (FIT_MIN).
3. Misfiled items: 10% of the items moved to a random other top-level section, 5 seeds.
4. Format sections: 10% of the items moved under a new "Blog Posts" heading, with 15 news
   articles that belong nowhere in an ML list (the first sentence of a page of
   ../shared/data/html); a destination is right when it is the section the item came from,
   and any destination for a news article is wrong.

Sweeps run on the tuning lists only. Each picks the most precise value whose F1 is within one
bootstrap standard error of the best F1 (over sections, or over list x seed runs); for FIT_MIN
only where LEXICAL_WEIGHT < FIT_MIN, so that a heading's words alone never make a suggestion.
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

from rq.rank.topics import audit as rqa  # noqa: E402
from rq.rank.topics import clusters as rqc  # noqa: E402
from rq.rank.topics import headings as rqh  # noqa: E402
from rq.rank.topics import sections as rqs  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
MOVE_SHARE = 0.10
MIN_SECTION = 6
THIN_KEEP = 2
TOP = 5
UNCAPPED = 10**6
MARGINS = (0.0, 0.04, 0.08, 0.12, 0.16, 0.20)
FITS = (0.12, 0.14, 0.16, 0.18, 0.20, 0.22, 0.24, 0.26, 0.30)
LEXICAL = (0.0, 0.05, 0.10, 0.15, 0.20)
CENTROIDS = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55)
DESTINATIONS = (0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
FOREIGN = 15  # news articles (../shared/data/html gold texts) put in "Blog Posts" per seed: no home fits them
BLOG = ("Blog Posts",)
HAS_TEXTS = "texts" in inspect.signature(rqa.audit).parameters  # False on rq before issue 14


patched = rl.patched


def run_audit(ds: dict, paths: list[tuple], headings: list[tuple] | None = None):
    kwargs = {"texts": ds["texts"]} if HAS_TEXTS else {}
    return rqa.audit(ds["vectors"], ds["cluster_labels"], paths, ds["titles"], headings or ds["headings"],
                     ds["heading_vectors"], **kwargs)


def eligible(ds: dict) -> list[tuple]:
    """Topical leaf sections of MIN_SECTION items or more: the ones an empty heading can stand for."""
    sizes = Counter(ds["leaf"])
    every = ds["headings"]
    return [p for p, n in sizes.items() if n >= MIN_SECTION and p and not rqh.format_reason(p[-1])
            and not any(len(q) > len(p) and q[:len(p)] == p for q in every)]


def hide(ds: dict, section: tuple, keep: int, rng) -> tuple[list[tuple], np.ndarray]:
    """Paths with all but ``keep`` of the section's items moved under random other headings."""
    paths = list(ds["leaf"])
    members = np.flatnonzero([p == section for p in paths])
    kept = rng.choice(members, size=keep, replace=False) if keep else np.zeros(0, dtype=np.int64)
    hidden = np.setdiff1d(members, kept)
    others = [p for p in dict.fromkeys(paths) if p != section]
    for i in hidden:
        paths[i] = others[rng.integers(len(others))]
    return paths, hidden


# --------------------------------------------------------------------------- empty and thin


def empty_and_thin(lists: list[dict]) -> tuple[dict, dict]:
    """Per list: the empty-section and thin-section results; per tuning list: the sweep data."""
    results, sweep = {}, {"fit": [], "centroid": []}
    for ds in lists:
        rows = {"empty": [], "thin_heading": [], "thin_centroid": []}
        for n_s, section in enumerate(eligible(ds)):
            rng = np.random.default_rng(n_s)
            paths, hidden = hide(ds, section, 0, rng)
            with patched(rqa, SUGGEST_TOP=UNCAPPED):
                thin = {t.section: t for t in run_audit(ds, paths).thin}
            rows["empty"].append((len(hidden), [r.item for r in thin[section].by_heading], set(hidden.tolist())))
            if ds["tune"] and hasattr(rqa, "FIT_MIN"):
                sweep["fit"].append(_fit_components(ds, paths, section, set(hidden.tolist())))
            paths, hidden = hide(ds, section, THIN_KEEP, np.random.default_rng(1000 + n_s))
            with patched(rqa, SUGGEST_TOP=UNCAPPED):
                thin = {t.section: t for t in run_audit(ds, paths).thin}
            truth = set(hidden.tolist())
            rows["thin_heading"].append((len(hidden), [r.item for r in thin[section].by_heading], truth))
            rows["thin_centroid"].append((len(hidden), [r.item for r in thin[section].by_centroid], truth))
            if ds["tune"]:
                with patched(rqa, SUGGEST_TOP=UNCAPPED, CENTROID_MIN=-1.0):
                    refs = {t.section: t for t in run_audit(ds, paths).thin}[section].by_centroid
                sweep["centroid"].append(([(r.item, r.similarity) for r in refs], truth))
        results[ds["name"]] = rows
    return results, sweep


def _fit_components(ds, paths, section, truth):
    """Every item's semantic fit and word coverage for the hidden section's heading."""
    parts = []
    for weight in (0.0, 1.0):
        with patched(rqa, SUGGEST_TOP=UNCAPPED, FIT_MIN=-np.inf), patched(rqs, LEXICAL_WEIGHT=weight):
            refs = {t.section: t for t in run_audit(ds, paths).thin}[section].by_heading
        parts.append({r.item: r.similarity for r in refs})
    semantic, both = parts
    return {i: (semantic[i], both[i] - semantic[i]) for i in semantic}, truth


def metrics(rows: list[tuple[int, list[int], set[int]]]) -> tuple[float, float, float, float]:
    """precision@5 (mean over sections), precision of the first 5 shown, recall (all suggestions), share with none."""
    p5 = np.mean([len(set(s[:TOP]) & t) / TOP for _, s, t in rows]) if rows else float("nan")
    shown = sum(min(TOP, len(s)) for _, s, _ in rows)
    hits = sum(len(set(s[:TOP]) & t) for _, s, t in rows)
    found = sum(len(set(s) & t) for _, s, t in rows)
    hidden = sum(n for n, _, _ in rows)
    none = np.mean([not s for _, s, _ in rows]) if rows else float("nan")
    return p5, hits / max(shown, 1), found / max(hidden, 1), none


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def fit_sweep(cases) -> str:
    counts = {}
    for weight in LEXICAL:
        for floor in FITS:
            rows = []
            for scores, truth in cases:
                chosen = {i for i, (sem, cov) in scores.items() if sem + weight * cov >= floor}
                rows.append([len(chosen & truth), len(chosen), len(truth)])
            counts[weight, floor] = np.array(rows)
    # Only where the words alone cannot reach the threshold.
    allowed = {k: v for k, v in counts.items() if k[0] < k[1]}
    best, chosen, se = one_se(allowed)
    f1s = {k: f1_of(v.sum(axis=0)) for k, v in counts.items()}
    rows = [[weight, *(("**%.3f**" if (weight, floor) == chosen else "%.3f") % f1s[weight, floor] for floor in FITS)]
            for weight in LEXICAL]
    return (rl.md_table(["LEXICAL_WEIGHT \\ FIT_MIN", *FITS], rows)
            + f"\n\nBest F1 {f1s[best]:.3f} at LEXICAL_WEIGHT {best[0]}, FIT_MIN {best[1]} (bootstrap SE {se:.3f}); "
            f"chosen (bold), the most precise within one SE: {chosen[0]}, {chosen[1]}; "
            f"shipped: {rqs.LEXICAL_WEIGHT}, {rqa.FIT_MIN}.")


def centroid_sweep(cases) -> str:
    counts = {}
    for floor in CENTROIDS:
        rows = []
        for refs, truth in cases:
            chosen = {i for i, s in refs if s >= floor}
            rows.append([len(chosen & truth), len(chosen), len(truth)])
        counts[floor] = np.array(rows)
    return sweep_table("CENTROID_MIN", counts, rqa.CENTROID_MIN)


def f1_of(total) -> float:
    tp, flags, wanted = total
    return f1(tp / max(flags, 1), tp / max(wanted, 1))


def one_se(counts: dict, resamples: int = 500) -> tuple:
    """The setting with the best F1, its bootstrap standard error over cases, and the most
    precise setting whose F1 is within one standard error of the best (after Breiman's one-SE
    rule: where F1 is flat, surer suggestions cost nothing measurable)."""
    f1s = {k: f1_of(v.sum(axis=0)) for k, v in counts.items()}
    best = max(f1s, key=f1s.__getitem__)
    rng = np.random.default_rng(0)
    cases = counts[best]
    draws = [f1_of(cases[rng.integers(len(cases), size=len(cases))].sum(axis=0)) for _ in range(resamples)]
    se = float(np.std(draws))
    precision = {k: v.sum(axis=0)[0] / max(v.sum(axis=0)[1], 1) for k, v in counts.items()}
    chosen = max((k for k in f1s if f1s[k] >= f1s[best] - se), key=lambda k: (precision[k], f1s[k]))
    return best, chosen, se


def sweep_table(name: str, counts: dict, shipped: float) -> str:
    """Precision, recall and F1 per threshold from per-case [true, flagged, wanted] counts; the
    one-SE choice in bold."""
    best, chosen, se = one_se(counts)
    rows = []
    for v, cases in counts.items():
        tp, flags, wanted = cases.sum(axis=0)
        p, r = tp / max(flags, 1), tp / max(wanted, 1)
        rows.append([f"{v}{' (shipped)' if v == shipped else ''}", f"{p:.3f}", f"{r:.3f}",
                     ("**%.3f**" if v == chosen else "%.3f") % f1(p, r)])
    return (rl.md_table([name, "precision (tuning lists)", "recall", "F1"], rows)
            + f"\n\nBest F1 at {best} (bootstrap SE {se:.3f}); chosen (bold), the most precise within one SE: "
            f"{chosen}; shipped: {shipped}.")


def empty_tables(lists, results) -> str:
    out = []
    for kind, title in (("empty", "Empty sections (by heading)"), ("thin_heading", "Thin sections, by heading"),
                        ("thin_centroid", "Thin sections, by the 2 items' centroid")):
        rows, pooled = [], {True: [], False: []}
        for ds in lists:
            r = results[ds["name"]][kind]
            pooled[ds["tune"]] += r
            p5, shown, recall, none = metrics(r)
            rows.append([ds["short"], "tune" if ds["tune"] else "**held out**", len(r), f"{p5:.3f}",
                         f"{shown:.3f}", f"{recall:.3f}", f"{none:.0%}"])
        for tune, label in ((True, "tuning lists"), (False, "**held-out lists**")):
            p5, shown, recall, none = metrics(pooled[tune])
            rows.append([label, "", len(pooled[tune]), f"{p5:.3f}", f"{shown:.3f}", f"{recall:.3f}", f"{none:.0%}"])
        out.append(f"### {title}\n\n" + rl.md_table(
            ["list", "role", "sections", "precision@5", "precision of those shown", "recall (all suggested)",
             "sections with no suggestion"], rows))
    return "\n\n".join(out)


# --------------------------------------------------------------------------- misfiled


def misfiled(lists: list[dict]) -> tuple[str, str]:
    rows, sweep = [], {m: [] for m in MARGINS}
    pooled = {True: np.zeros(3), False: np.zeros(3)}
    for ds in lists:
        sections = ds["sections"]
        n = len(ds["labels"])
        per_list = np.zeros(3)  # true flags, flags, moved
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            moved = rng.choice(n, size=max(1, round(MOVE_SHARE * n)), replace=False)
            paths = list(ds["labels"])
            for i in moved:
                others = [s for s in sections if s != paths[i]]
                paths[i] = others[rng.integers(len(others))]
            moved_set = set(int(i) for i in moved)
            result = rqa.audit(ds["vectors"], ds["cluster_labels"], paths, ds["titles"], sections,
                               {s: ds["heading_vectors"][s] for s in sections if s in ds["heading_vectors"]},
                               misfiled_margin=min(MARGINS))
            if ds["tune"]:  # one audit at the lowest margin; higher margins keep fewer of its flags
                for margin in MARGINS:
                    flagged = {m.item for m in result.misfiled if m.margin >= margin}
                    sweep[margin].append([len(flagged & moved_set), len(flagged), len(moved_set)])
            flagged = {m.item for m in result.misfiled if m.margin >= rqa.MISFILED_MARGIN}
            per_list += [len(flagged & moved_set), len(flagged), len(moved_set)]
        pooled[ds["tune"]] += per_list
        tp, flags, total = per_list
        rows.append([ds["short"], "tune" if ds["tune"] else "**held out**", n, len(sections),
                     f"{tp / max(flags, 1):.3f}", f"{tp / total:.3f}"])
    for tune, label in ((True, "tuning lists"), (False, "**held-out lists**")):
        tp, flags, total = pooled[tune]
        rows.append([label, "", "", "", f"{tp / max(flags, 1):.3f}", f"{tp / total:.3f}"])
    main = rl.md_table(["list", "role", "items", "sections", f"precision (margin {rqa.MISFILED_MARGIN})",
                        "recall"], rows)
    return main, sweep_table("margin", {m: np.array(v) for m, v in sweep.items()}, rqa.MISFILED_MARGIN)


# --------------------------------------------------------------------------- format sections


def destinations(lists: list[dict], foreign: dict) -> tuple[str, str]:
    rows, sweep = [], {d: [] for d in DESTINATIONS}
    pooled = {True: np.zeros(5), False: np.zeros(5)}
    for ds in lists:
        per_list = np.zeros(5)  # right, given, moved, news articles given a destination, news articles
        n = len(ds["leaf"])
        for seed in SEEDS:
            rng = np.random.default_rng(seed)
            moved = rng.choice(n, size=max(1, round(MOVE_SHARE * n)), replace=False)
            news = rng.choice(len(foreign["texts"]), size=FOREIGN, replace=False)
            paths = list(ds["leaf"]) + [BLOG] * FOREIGN
            for i in moved:
                paths[i] = BLOG
            home = {int(i): ds["leaf"][i] for i in moved}  # news articles have none
            case = {**ds, "vectors": np.vstack([ds["vectors"], foreign["vectors"][news]]),
                    "cluster_labels": np.concatenate([ds["cluster_labels"], np.full(FOREIGN, -1)]),
                    "titles": ds["titles"] + [foreign["titles"][j] for j in news],
                    "texts": ds["texts"] + [foreign["texts"][j] for j in news]}
            runs = [(rqa.DESTINATION_MIN, None)] + ([(-1.0, "sweep")] if ds["tune"] else [])
            for floor, role in runs:
                with patched(rqa, DESTINATION_MIN=floor):
                    fmt = {f.section: f for f in run_audit(case, paths, ds["headings"] + [BLOG]).formats}[BLOG]
                given = [(d.item, d.section, d.similarity, d.via) for d in fmt.destinations if d.section is not None]
                if role is None:
                    right = sum(home.get(i) == s for i, s, _, _ in given)
                    per_list += [right, len(given), len(moved), sum(i >= n for i, *_ in given), FOREIGN]
                    continue
                for d in DESTINATIONS:
                    kept = [(i, s) for i, s, sim, via in given if via == "heading" or sim >= d]
                    sweep[d].append([sum(home.get(i) == s for i, s in kept), len(kept), len(moved)])
        pooled[ds["tune"]] += per_list
        rows.append([ds["short"], "tune" if ds["tune"] else "**held out**", *_destination_cells(per_list)])
    for tune, label in ((True, "tuning lists"), (False, "**held-out lists**")):
        rows.append([label, "", *_destination_cells(pooled[tune])])
    main = rl.md_table(["list", "role", f"right among given (DESTINATION_MIN {rqa.DESTINATION_MIN})",
                        "right among moved", "news articles given a section"], rows)
    return main, sweep_table("DESTINATION_MIN", {d: np.array(v) for d, v in sweep.items()}, rqa.DESTINATION_MIN)


def _destination_cells(counts) -> list[str]:
    right, given, moved, news, articles = counts
    return [f"{right / max(given, 1):.3f}", f"{right / moved:.3f}", f"{news / articles:.0%}"]


def load_foreign(data: Path, embedder, out: Path) -> dict:
    """The first sentence of each of the news pages in ../shared/data/html: items no ML heading fits."""
    import json

    truth = json.loads((data / "html" / "scrapinghub_aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    texts = []
    for key in sorted(truth):
        body = " ".join(str(truth[key].get("articleBody", "")).split())
        texts.append(body.split(". ")[0][:200])
    return {"titles": texts, "texts": texts,
            "vectors": rl.common.embed_cached(embedder, texts, out, "news articles",
                                              prefix=f"topics-{getattr(embedder, 'bulk', 'torch')}")}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    loaded = rl.lists_from_command_line(argv, __doc__.splitlines()[0])
    if loaded is None:
        return 2
    args, embedder, lists = loaded
    kwargs = {}
    for ds in lists:
        if "sections" in inspect.signature(rqc.cluster).parameters:
            kwargs = {"sections": rqc.topic_sections(ds["leaf"])}
        ds["cluster_labels"] = rqc.cluster(ds["vectors"], "auto", **kwargs).labels

    print(f"# rq's section audit on {len(lists)} real reading lists ({embedder.model_id}, "
          f"{type(embedder).__name__} {getattr(embedder, 'bulk', '')})\n")
    print(f"Thresholds chosen on {', '.join(rl.SHORT.get(t, t) for t in rl.TUNE)}; the others are held out.\n")
    results, sweep = empty_and_thin(lists)
    print(f"## Empty and thin sections: every topical leaf section of {MIN_SECTION}+ items\n")
    print(empty_tables(lists, results) + "\n")
    if sweep["fit"]:
        print("### FIT_MIN and LEXICAL_WEIGHT on the tuning lists (F1 of all suggestions, empty sections)\n")
        print(fit_sweep(sweep["fit"]) + "\n")
    print("### CENTROID_MIN on the tuning lists (thin sections)\n")
    print(centroid_sweep(sweep["centroid"]) + "\n")
    table, sweep_rows = misfiled(lists)
    print(f"## Misfiled items: {MOVE_SHARE:.0%} moved to a random other top-level section, {len(SEEDS)} seeds\n")
    print(f"{table}\n\n### Margin on the tuning lists\n\n{sweep_rows}\n")
    table, sweep_rows = destinations(lists, load_foreign(args.data, embedder, args.out))
    print(f"## Format sections: {MOVE_SHARE:.0%} of the items and {FOREIGN} news articles under \"Blog Posts\", "
          f"{len(SEEDS)} seeds\n")
    print(f"{table}\n\n### DESTINATION_MIN on the tuning lists (news articles given a section count as wrong)"
          f"\n\n{sweep_rows}\n")
    print(f"Total {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
