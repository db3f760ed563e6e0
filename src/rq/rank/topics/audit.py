"""An audit of a queue's sections against its topic clusters. Suggestions only; nothing is moved.

Numpy arrays in, the dataclasses of rq.rank.topics.findings out; nothing here embeds, reads the
queue or prints. Vectors are expected to be unit length and made WITHOUT section names in
the text: the sections are what the audit judges, so they must not leak into the evidence.
What a section is: see rq.rank.topics.sections.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from rq.rank.cosine import unit_rows
from rq.rank.topics.clusters import cluster_count
from rq.rank.topics.findings import (
    Audit,
    ClusterInfo,
    Destination,
    FormatSection,
    ItemRef,
    Misfiled,
    Overlap,
    SectionRow,
    ThinSection,
)
from rq.rank.topics.headings import format_reason
from rq.rank.topics.sections import SectionView, with_subheadings

# Audit thresholds. MISFILED_MARGIN, FIT_MIN, CENTROID_MIN and DESTINATION_MIN were chosen with
# benchmarks/bench_audit.py on three of the six real lists (production-ML, Awesome-recsys,
# awesome-search) and are reported on the other three: each is the most precise value whose F1
# is within one bootstrap standard error of the best (where F1 is flat, surer suggestions). See rq.rank.topics.sections for what a section is. Cosines are of unit vectors
# (all-MiniLM-L6-v2 scale); FIT_MIN is on the scale of SectionView.fit_scores (a centred cosine
# plus a word bonus).
MISFILED_MARGIN = 0.16  # own-section fit must lose to another section by this much
OVERLAP_SHARE = 0.3  # two sections overlap when this share of their items sit closer to the other
OVERLAP_MIN_ITEMS = 2
MIN_OWN_ITEMS = 3  # an item is judged against its section only if 2 others remain
MIN_TARGET_ITEMS = 2  # a section needs this many items to have a centroid worth moving to
THIN_MAX = 2  # a section with at most this many items is "thin"
FIT_MIN = 0.20  # heading fit (SectionView.fit_scores) for an empty/thin section suggestion
CENTROID_MIN = 0.40  # item-to-centroid similarity for a thin-section suggestion
DESTINATION_MIN = 0.45  # a format-section item goes to no section's items closer than this
FORMAT_ENTROPY = 0.9  # normalised topic entropy above which a section mixes topics
FORMAT_ENTROPY_MIN_ITEMS = 10  # small sections spread over clusters by chance
SUGGEST_TOP = 5
EVIDENCE_TOP = 2
CAUSES_TOP = 5


def audit(vectors: np.ndarray, labels, section_paths: Sequence[tuple[str, ...]], titles: Sequence[str],
          all_sections: Sequence[tuple[str, ...]], heading_vectors: dict[tuple, np.ndarray],
          *, names: list[list[str]] | None = None, misfiled_margin: float = MISFILED_MARGIN,
          texts: Sequence[str] | None = None) -> Audit:
    """Hold the clusters against the queue's sections. Suggestions only; nothing is moved.

    ``heading_vectors`` maps a section path to the embedding of ``heading_text(path)``
    (rq.rank.topics.headings); sections without one get no heading-based suggestions. ``names``
    (from name_clusters) label the clusters in the result. ``texts`` (title and note of each
    item; the titles when not given) are where heading words are looked for.
    """
    x = unit_rows(vectors)
    labels = np.asarray(labels, dtype=np.int64)
    paths = [tuple(p) for p in section_paths]
    if not (len(x) == len(labels) == len(paths) == len(titles)):
        raise ValueError("vectors, labels, section_paths and titles must describe the same items")
    k = cluster_count(labels)
    names = names or [[] for _ in range(k)]
    view = SectionView(x, paths, titles, heading_vectors, texts)
    every = list(dict.fromkeys([tuple(p) for p in all_sections] + view.keys))
    position = {p: i for i, p in enumerate(every)}
    view.keys.sort(key=position.__getitem__)  # report sections in document order
    table = _table(view, labels, k)
    entropy = {row.section: row.entropy for row in table}
    fmt = _format_sections(view, entropy)
    topical = [s for s in view.keys if s not in fmt and s != ()]
    homes = _homes(view, every, fmt)
    view.homes = [p for p in homes if p in heading_vectors]
    thin = _thin_sections(view, every, fmt)
    by_heading = _heading_homes(thin)
    return Audit(
        clusters=_cluster_infos(view, labels, k, names),
        table=table,
        overlaps=_overlaps(view, topical),
        misfiled=_misfiled(view, topical, misfiled_margin),
        thin=thin,
        formats=[_format_section(view, s, reason, entropy[s], labels, names, topical, homes, by_heading)
                 for s, reason in fmt.items()],
    )


def _homes(view: SectionView, every: list[tuple], fmt: dict) -> list[tuple]:
    """Topic headings that could take items: leaves, and headings that already hold items themselves."""
    containers = with_subheadings(every)
    return [p for p in every if p and p not in fmt and not format_reason(p[-1])
            and (view.size(p) or p not in containers)]


def _table(view: SectionView, labels: np.ndarray, k: int) -> list[SectionRow]:
    rows = []
    for s in view.keys:
        own = labels[view.members[s]]
        counts = np.bincount(own[own >= 0], minlength=k)[:k] if k else np.zeros(0, dtype=np.int64)
        rows.append(SectionRow(s, int(len(own)), [int(c) for c in counts], int(np.sum(own < 0)),
                               _entropy(counts), view.cohesion(s)))
    return rows


def _entropy(counts: np.ndarray) -> float:
    """Shannon entropy of a count vector over the most it could be for that many items."""
    total = int(counts.sum())
    ceiling = math.log(min(total, len(counts))) if min(total, len(counts)) > 1 else 0.0
    if ceiling == 0.0:
        return 0.0
    p = counts[counts > 0] / total
    return max(0.0, float(-(p * np.log(p)).sum() / ceiling))


def _cluster_infos(view: SectionView, labels: np.ndarray, k: int, names: list[list[str]]) -> list[ClusterInfo]:
    infos = []
    for c in range(k):
        where = Counter(view.paths[i] for i in np.flatnonzero(labels == c))
        size = sum(where.values())
        # Ties go to the section met first in the document.
        section, count = max(where.items(), key=lambda kv: (kv[1], -view.keys.index(kv[0])),
                             default=(None, 0))
        ix = np.flatnonzero(labels == c)
        central = ix[np.argsort(-(view.x[ix] @ view.x[ix].sum(axis=0)), kind="stable")]
        infos.append(ClusterInfo(c, size, _words_of(names, c), section, count / size if size else 0.0,
                                 [int(i) for i in central]))
    return infos


def _words_of(names: list[list[str]], cluster: int) -> list[str]:
    """The name of a cluster; none for -1 (unclustered) or a cluster without one."""
    return list(names[cluster]) if 0 <= cluster < len(names) else []


def _format_sections(view: SectionView, entropy: dict[tuple, float]) -> dict[tuple, str]:
    found = {}
    for s in view.keys:
        if not s:
            continue
        reason = format_reason(s[-1])
        if reason is None and view.size(s) >= FORMAT_ENTROPY_MIN_ITEMS and entropy[s] >= FORMAT_ENTROPY:
            reason = f"mixes topics (topic entropy {entropy[s]:.2f})"
        if reason:
            found[s] = reason
    return found


def _nearest(view: SectionView, i: int, pool: np.ndarray, top: int = EVIDENCE_TOP) -> list[ItemRef]:
    pool = pool[pool != i]
    sims = view.x[pool] @ view.x[i]
    order = np.argsort(-sims, kind="stable")[:top]
    return [view.ref(pool[j], sims[j]) for j in order]


def _overlaps(view: SectionView, topical: list[tuple]) -> list[Overlap]:
    """Pairs of neighbouring sections whose items do not separate.

    A pair is checked when one is the other's nearest section by centroid, and
    reported when OVERLAP_SHARE of their items sit closer to the other section's
    centroid than to their own. Centroid similarity alone misleads (averaging
    removes noise, so centroids are always closer to each other than items are to
    them), and checking every pair of small sections flagged 226 of 861 pairs on
    the 42 deepest sections of ML-Reading-List; nearest pairs flagged 19.
    """
    pool = [s for s in topical if view.size(s) >= MIN_OWN_ITEMS]
    if len(pool) < 2:
        return []
    centroids = view.centroids(pool)
    sims = centroids @ centroids.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    pairs = sorted({tuple(sorted((i, int(j)))) for i, j in enumerate(nearest)})
    found = []
    for i, j in pairs:
        a, b = pool[i], pool[j]
        causes = _crossers(view, a, b) + _crossers(view, b, a)
        share = len(causes) / (view.size(a) + view.size(b))
        if len(causes) < OVERLAP_MIN_ITEMS or share < OVERLAP_SHARE:
            continue
        causes.sort(key=lambda r: -r.similarity)
        found.append(Overlap(a, b, float(sims[i, j]), share, causes[:CAUSES_TOP]))
    found.sort(key=lambda o: (-o.share, -o.similarity))
    return found


def _crossers(view: SectionView, own: tuple, other: tuple) -> list[ItemRef]:
    """Items of ``own`` that sit closer to ``other``'s centroid; similarity = how much closer."""
    ix = view.members[own]
    gain = view.x[ix] @ view.centroid[other] - view.loo[ix]
    return [view.ref(i, g) for i, g in zip(ix, gain) if g > 0]


def _targets(view: SectionView, topical: list[tuple]) -> list[tuple]:
    """Topical sections with enough items for their centroid to be a place to move items to."""
    return [s for s in topical if view.size(s) >= MIN_TARGET_ITEMS]


def _misfiled(view: SectionView, topical: list[tuple], margin_min: float) -> list[Misfiled]:
    targets = _targets(view, topical)
    if len(targets) < 2:
        return []
    centroids = view.centroids(targets)
    found = []
    for s in topical:
        if view.size(s) < MIN_OWN_ITEMS:
            continue
        for i in view.members[s]:
            sims = centroids @ view.x[i]
            sims[targets.index(s)] = -np.inf
            best = int(np.argmax(sims))
            margin = float(sims[best] - view.loo[i])
            if margin < margin_min:
                continue
            found.append(Misfiled(
                int(i), view.titles[i], s, targets[best], float(view.loo[i]), float(sims[best]), margin,
                _nearest(view, i, view.members[s]), _nearest(view, i, view.members[targets[best]]),
            ))
    found.sort(key=lambda m: -m.margin)
    return found


def _thin_sections(view: SectionView, every: list[tuple], fmt: dict) -> list[ThinSection]:
    """Empty and thin leaf sections, with the items elsewhere that would fit them.

    A heading with sub-headings is a container: its emptiness shows in its leaves.
    """
    containers = with_subheadings(every)
    leaves = [(p, view.size(p)) for p in every
              if p and p not in fmt and not format_reason(p[-1]) and p not in containers]
    leaves = [(p, n) for p, n in leaves if n <= THIN_MAX]
    # One product for the centroids of every thin section: their items' pull on all the others.
    held = {p: j for j, p in enumerate(p for p, n in leaves if n)}
    pulls = view.x @ view.centroids(list(held)).T if held else np.zeros((len(view.x), 0))
    found = []
    for path, direct in leaves:
        outside = np.ones(len(view.paths), dtype=bool)
        outside[view.members.get(path, [])] = False  # a leaf: the items under it are its own
        outside = np.flatnonzero(outside)
        by_centroid = _centroid_suggestions(view, pulls[:, held[path]], outside) if direct else []
        found.append(ThinSection(path, "empty" if direct == 0 else "thin", direct,
                                 _heading_suggestions(view, path, outside), by_centroid))
    return found


def _heading_suggestions(view: SectionView, path: tuple, outside: np.ndarray) -> list[ItemRef]:
    """Items elsewhere that fit the section's heading (SectionView.fit_scores), best first."""
    scored = view.fit_scores(path)
    if scored is None or not len(outside):
        return []
    scores, matched = scored
    passing = outside[scores[outside] >= FIT_MIN]
    ranked = passing[np.argsort(-scores[passing], kind="stable")][:SUGGEST_TOP]
    return [ItemRef(int(i), view.titles[i], view.paths[i], float(scores[i]), matched[i]) for i in ranked]


def _centroid_suggestions(view: SectionView, pull: np.ndarray, outside: np.ndarray) -> list[ItemRef]:
    """Items elsewhere that sit closer to this section's items (``pull``: every item's cosine to
    their centroid) than to their own section."""
    if not len(outside):
        return []
    sims = pull[outside]
    own = view.loo[outside]
    keep = np.flatnonzero((sims >= CENTROID_MIN) & (np.isnan(own) | (sims > own)))
    ranked = keep[np.argsort(-sims[keep], kind="stable")][:SUGGEST_TOP]
    return [view.ref(outside[j], sims[j]) for j in ranked]


def _format_section(view: SectionView, s: tuple, reason: str, entropy: float, labels: np.ndarray,
                    names: list[list[str]], topical: list[tuple], homes: list[tuple],
                    by_heading: dict[int, tuple[tuple, float]]) -> FormatSection:
    """Where each item of a format section would go by topic: a section, and its cluster."""
    targets = _targets(view, topical)
    centroids = view.centroids(targets) if targets else None
    destinations = []
    for i in view.members[s]:
        section, similarity, via = None, 0.0, ""
        if int(i) in by_heading:  # suggested for an empty or thin section: the same advice here
            (section, similarity), via = by_heading[int(i)], "heading"
        elif centroids is not None:
            sims = centroids @ view.x[i]
            j = int(np.argmax(sims))
            if sims[j] >= DESTINATION_MIN:
                section, similarity, via = targets[j], float(sims[j]), "centroid"
        cluster = int(labels[i])
        destinations.append(Destination(int(i), view.titles[i], cluster, _words_of(names, cluster),
                                        section, similarity, via))
    return FormatSection(s, view.size(s), reason, entropy, destinations)


def _heading_homes(thin: list[ThinSection]) -> dict[int, tuple[tuple, float]]:
    """Each item suggested by heading for an empty or thin section: the section it fits best."""
    best: dict[int, tuple[tuple, float]] = {}
    for t in thin:
        for ref in t.by_heading:
            if ref.item not in best or ref.similarity > best[ref.item][1]:
                best[ref.item] = (t.section, ref.similarity)
    return best
