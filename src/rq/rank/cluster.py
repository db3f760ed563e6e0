"""Topic clusters of a reading queue, their names, and an audit of the queue's sections.

Numpy arrays in, plain dataclasses out (each with ``as_dict()`` for JSON); nothing
here embeds, reads the queue or prints. Vectors are expected to be unit length and
made WITHOUT section names in the text: the sections are what the audit judges,
so they must not leak into the evidence.

Clustering. Ward linkage on unit vectors is the default: for unit vectors the
squared Euclidean distance is 2 - 2 cos, so Ward merges by cosine geometry. In
benchmarks/bench_clusters.py (six real lists, clusters vs top-level sections at
the same k) it had the best NMI on all six, ahead of k-means, average-linkage
cosine and a tf-idf + k-means baseline; on 25-item queues drawn from those lists
it matched k-means, while HDBSCAN left 50-70% of the items unclustered (density
needs more points than a reading queue has). ``auto`` picks k by silhouette; on
a large mixed collection the silhouette curve is flat and may favour a coarse k,
which ``how`` shows and an explicit k overrides.

What a "section" is for the audit: an item belongs to its deepest heading (its
full section path). A heading whose items all sit in sub-headings is a container:
it gets no centroid and is never reported as empty or thin. A heading that holds
items directly and also has sub-headings is a section for its direct items only.
Items above the first heading form the section ``()``.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, fields, is_dataclass
from typing import Sequence

import numpy as np

from rq.errors import UsageError
from rq.words import STOPWORDS, content_words, words

METHODS = ("ward", "average", "kmeans", "hdbscan")
DEFAULT_METHOD = "ward"
K_MAX = 40  # more topics than this is no longer an overview

# Audit thresholds, on cosine similarity of unit vectors (all-MiniLM-L6-v2 scale).
# Chosen with benchmarks/bench_clusters.py (planted misfiled items) and the
# embedded default queue; see the module docstring for what a section is.
MISFILED_MARGIN = 0.12  # own-section fit must lose to another section by this much
OVERLAP_SHARE = 0.3  # two sections overlap when this share of their items sit closer to the other
OVERLAP_MIN_ITEMS = 2
MIN_OWN_ITEMS = 3  # an item is judged against its section only if 2 others remain
MIN_TARGET_ITEMS = 2  # a section needs this many items to have a centroid worth moving to
THIN_MAX = 2  # a section with at most this many items is "thin"
HEADING_MIN = 0.35  # heading-to-item score for an empty/thin section suggestion
CENTROID_MIN = 0.45  # item-to-centroid similarity for a thin-section suggestion
DESTINATION_MIN = 0.30  # below this a format-section item gets no section destination
LEXICAL_WEIGHT = 0.2  # bonus for heading words (or their acronym) found in a title
LEXICAL_COMMON = 0.25  # a word in more than this share of titles is no evidence ("ml", "learning")
FORMAT_ENTROPY = 0.9  # normalised topic entropy above which a section mixes topics
FORMAT_ENTROPY_MIN_ITEMS = 10  # small sections spread over clusters by chance
SUGGEST_TOP = 5
EVIDENCE_TOP = 2
CAUSES_TOP = 5

SECTION_DEFINITION = (
    "an item belongs to its deepest heading; headings whose items all sit in "
    "sub-headings are containers, not sections"
)

# Headings that name a kind of document rather than a topic, when first or last word:
# "Blog Posts", "MLOps Articles", "Talks about MLOps". Plurals only (mostly): singulars
# start topics too ("Link prediction", "Video understanding", "Post-training quantization").
_FORMAT_WORDS = frozenset("""
    articles blog blogs blogpost blogposts posts papers preprints videos talks lectures slides
    podcasts books courses tutorials newsletters links bookmarks threads tweets websites
    resources
""".split())
# Catch-all headings: every word is one of these (or a format word): "Misc", "Other stuff",
# "Further reading"; but "Other Representation Learning" is a topic.
_CATCHALL_WORDS = frozenset("""
    misc miscellaneous unsorted uncategorized uncategorised other others general stuff various
    random todo inbox later more things awesome list lists reading readings further extra
    assorted everything else
""".split())


# --------------------------------------------------------------------------- clustering


@dataclass
class Clustering:
    labels: np.ndarray  # cluster per item, 0..k-1 by decreasing size; -1 = unclustered (HDBSCAN)
    k: int
    method: str
    how: str  # how k was chosen, in words

    def as_dict(self) -> dict:
        return {"k": self.k, "method": self.method, "how": self.how,
                "labels": [int(v) for v in self.labels]}


def cluster(vectors: np.ndarray, k: int | str = "auto", method: str = DEFAULT_METHOD,
            *, seed: int = 0) -> Clustering:
    """Cluster unit vectors into ``k`` topics; ``k="auto"`` picks k by silhouette."""
    if method not in METHODS:
        raise UsageError(f"unknown clustering method {method!r}; use one of {', '.join(METHODS)}")
    if k != "auto" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise UsageError(f"number of clusters must be a positive whole number or 'auto', not {k!r}")
    x = _unit(vectors)
    n = len(x)
    if n == 0:
        return Clustering(np.zeros(0, dtype=np.int64), 0, method, "no items to cluster")
    if method == "hdbscan":
        return _hdbscan(x)
    if k == "auto":
        if n < 4:
            return Clustering(np.zeros(n, dtype=np.int64), 1, method, f"k=1: {n} items are too few to split")
        return _auto(x, method, seed)
    chosen = min(k, n)
    labels = _canonical(_partitioner(x, method, seed)([chosen])[0])
    how = f"k={chosen} as asked" + ("" if chosen == k else f" (capped at the {n} items)")
    return Clustering(labels, chosen, method, how)


def k_range(n: int) -> range:
    """Candidate k for ``auto``: 2..round(sqrt(2n)), at most K_MAX and n-1.

    sqrt(2n) gives ~7 for a 25-item queue and ~33 for 550 items; on samples of the
    real lists a wider range let silhouette drift to many tiny clusters.
    """
    return range(2, max(2, min(K_MAX, round(math.sqrt(2 * n)), n - 1)) + 1)


def _auto(x: np.ndarray, method: str, seed: int) -> Clustering:
    from sklearn.metrics import silhouette_score

    # One distance matrix for every candidate k; clipped because rounding can give -1e-16.
    distances = np.clip(1.0 - (x @ x.T).astype(np.float32), 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    ks = k_range(len(x))
    scored = []  # (no one-item cluster, silhouette, -k, labels)
    for k, labels in zip(ks, _partitioner(x, method, seed)(list(ks))):
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(distances, labels, metric="precomputed"))
        # A one-item cluster is not a topic; such splits only win when every split has one.
        scored.append((bool(np.bincount(labels).min() > 1), score, -k, labels))
    if not scored:
        return Clustering(np.zeros(len(x), dtype=np.int64), 1, method, "k=1: the items do not split")
    proper, score, neg_k, labels = max(scored, key=lambda s: s[:3])
    rule = "without one-item clusters" if proper else "(every split had a one-item cluster)"
    how = f"k={-neg_k}: best silhouette (cosine, {score:.3f}) over k={ks.start}..{ks.stop - 1} {rule}"
    return Clustering(_canonical(labels), -neg_k, method, how)


def _partitioner(x: np.ndarray, method: str, seed: int):
    """A function [k, ...] -> [labels, ...]; hierarchical methods cut one tree for every k."""
    if method in ("ward", "average"):
        from scipy.cluster.hierarchy import cut_tree, linkage

        if len(x) == 1:
            return lambda ks: [np.zeros(1, dtype=np.int64) for _ in ks]
        tree = linkage(x, method="ward") if method == "ward" else linkage(x, method="average", metric="cosine")
        # One cut_tree call for all k: each call walks the whole tree.
        return lambda ks: list(cut_tree(tree, n_clusters=ks).astype(np.int64).T)
    from sklearn.cluster import KMeans

    return lambda ks: [KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x).astype(np.int64)
                       for k in ks]


def _hdbscan(x: np.ndarray) -> Clustering:
    from sklearn.cluster import HDBSCAN

    n = len(x)
    size = 3 if n < 60 else 5
    if n < size:
        return Clustering(np.full(n, -1, dtype=np.int64), 0, "hdbscan",
                          f"HDBSCAN needs at least {size} items; all {n} unclustered")
    labels = _canonical(HDBSCAN(min_cluster_size=size, metric="euclidean", copy=True).fit_predict(x))
    k = int(labels.max()) + 1 if labels.size else 0
    outliers = int(np.sum(labels < 0))
    how = f"HDBSCAN (min_cluster_size={size}) found {k} clusters; {outliers} of {n} items unclustered (-1)"
    return Clustering(labels, k, "hdbscan", how)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by decreasing size (ties: first item first), keeping -1."""
    labels = np.asarray(labels, dtype=np.int64)
    found = [c for c in np.unique(labels) if c >= 0]
    order = sorted(found, key=lambda c: (-np.sum(labels == c), int(np.argmax(labels == c))))
    out = np.full_like(labels, -1)
    for new, old in enumerate(order):
        out[labels == old] = new
    return out


def _unit(vectors) -> np.ndarray:
    # float64: Ward merge heights of near-identical vectors are unstable in float32.
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


# --------------------------------------------------------------------------- names

# Besides rq's stopwords (rq.words), words that say nothing about a topic in a reading list.
_TOPICLESS = frozenset("""
    also could would via vs versus using use used within without towards toward across per etc eg ie
    one two three new part get got make makes made way ways thing things introduction intro guide
    overview notes note example examples list awesome
""".split())
_STOPWORDS = STOPWORDS | _TOPICLESS
# Pieces of URLs and file names that survive in notes and titles.
_URL_JUNK = frozenset("""
    http https www com org net io html htm pdf php aspx md abs doi arxiv github githubusercontent
    medium blogspot readthedocs wordpress youtube youtu be watch index en
""".split())
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)


def naming_words(text: str) -> list[str]:
    """Words that can name a topic: no URLs, stopwords, numbers or one-letter words."""
    return [w for w in words(_URL.sub(" ", text)) if len(w) > 1 and w[0].isalpha()
            and w not in _STOPWORDS and w not in _URL_JUNK]


def name_clusters(texts: Sequence[str], labels, top: int = 4) -> list[list[str]]:
    """The ``top`` most distinctive words of each cluster by class-based tf-idf.

    Each cluster's texts are one class document; a word's weight is its frequency in
    the class times log(1 + average class length / the word's frequency overall), so
    words common to every cluster sink. A word counts once per text, which keeps one
    long note from naming a cluster; plurals fold into a singular seen elsewhere.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    per_text = [set(naming_words(t)) for t in texts]
    fold, display = _fold_plurals(per_text)
    class_counts = [Counter() for _ in range(k)]  # word -> texts of the cluster that hold it
    for tokens, label in zip(per_text, labels):
        if label >= 0:
            class_counts[label].update({fold.get(w, w) for w in tokens})
    overall = Counter()
    for counts in class_counts:
        overall.update(counts)
    average = (sum(overall.values()) / k) if k else 0.0
    names = []
    for counts in class_counts:
        length = sum(counts.values()) or 1

        def rank(w: str, counts=counts, length=length):
            # Words shared by two or more of the cluster's texts first: one title is not a topic.
            return (counts[w] < 2, -(counts[w] / length) * math.log(1 + average / overall[w]), w)

        names.append([display[w] for w in sorted(counts, key=rank)[:top]])
    return names


def _fold_plurals(per_text: list[set[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """Map plural words to a singular that also occurs; display each key in its commonest form."""
    seen = Counter(w for tokens in per_text for w in tokens)
    fold = {}
    for w in seen:
        if len(w) > 3 and w.endswith("ies") and w[:-3] + "y" in seen:
            fold[w] = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss") and w[:-1] in seen:
            fold[w] = w[:-1]
    forms: dict[str, Counter] = defaultdict(Counter)
    for w, n in seen.items():
        forms[fold.get(w, w)][w] += n
    display = {key: max(c.items(), key=lambda kv: (kv[1], -len(kv[0])))[0] for key, c in forms.items()}
    return fold, display


# --------------------------------------------------------------------------- audit results


@dataclass
class ItemRef:
    item: int  # index into the vectors given to audit()
    title: str
    section: tuple[str, ...]  # where the item is filed now
    similarity: float  # cosine; for heading suggestions cosine + LEXICAL_WEIGHT * words matched
    evidence: str = ""  # heading words found in the title, for heading-based suggestions


@dataclass
class ClusterInfo:
    cluster: int
    size: int
    words: list[str]
    section: tuple[str, ...] | None  # the section holding most of the cluster
    share: float  # fraction of the cluster in that section


@dataclass
class SectionRow:
    section: tuple[str, ...]
    size: int
    counts: list[int]  # items per cluster, cluster 0 first
    unclustered: int  # items with label -1 (HDBSCAN only)
    entropy: float  # topic entropy of the section's items, 0 (one topic) .. 1 (evenly spread)
    cohesion: float | None  # mean similarity of an item to the centroid of the others


@dataclass
class Overlap:
    a: tuple[str, ...]
    b: tuple[str, ...]
    similarity: float  # cosine of the two centroids
    share: float  # fraction of the pair's items closer to the other section's centroid
    causes: list[ItemRef]  # those items; similarity = how much closer to the other centroid


@dataclass
class Misfiled:
    item: int
    title: str
    section: tuple[str, ...]
    best_section: tuple[str, ...]
    own_similarity: float  # to the centroid of its section without it
    best_similarity: float
    margin: float
    same_section: list[ItemRef]  # nearest neighbours in its own section
    best_section_neighbours: list[ItemRef]


@dataclass
class ThinSection:
    section: tuple[str, ...]
    kind: str  # "empty" or "thin"
    size: int
    by_heading: list[ItemRef]  # items elsewhere that match the heading
    by_centroid: list[ItemRef]  # items elsewhere close to the section's own items


@dataclass
class Destination:
    item: int
    title: str
    cluster: int
    cluster_words: list[str]
    section: tuple[str, ...] | None  # the topical section it would go to, if any is close
    similarity: float  # cosine to the centroid, or the heading score (cosine + word bonus, may pass 1)
    via: str  # "centroid" (the section's items) or "heading" (the section's name)


@dataclass
class FormatSection:
    section: tuple[str, ...]
    size: int
    reason: str
    entropy: float
    destinations: list[Destination]


@dataclass
class Audit:
    clusters: list[ClusterInfo]
    table: list[SectionRow]
    overlaps: list[Overlap]
    misfiled: list[Misfiled]
    thin: list[ThinSection]
    formats: list[FormatSection]
    definition: str = SECTION_DEFINITION

    def as_dict(self) -> dict:
        return _plain(self)


def _plain(value):
    """JSON-ready copy: dataclasses to dicts, tuples to lists, numpy scalars to Python."""
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    return value


for _cls in (ItemRef, ClusterInfo, SectionRow, Overlap, Misfiled, ThinSection, Destination, FormatSection):
    _cls.as_dict = _plain  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- audit


def heading_text(path: tuple[str, ...]) -> str:
    """The text to embed for a section's heading vector: its own heading, without parents."""
    return path[-1] if path else ""


def format_reason(heading: str) -> str | None:
    """Why a heading names a kind of document or a catch-all rather than a topic, if it does."""
    tokens = [t for t in words(heading)
              if t.isalpha() and (t not in _STOPWORDS or t in _FORMAT_WORDS or t in _CATCHALL_WORDS)]
    if not tokens:
        return None
    # The head noun is first ("Talks about MLOps") or last ("MLOps Articles").
    for word in (tokens[0], tokens[-1]):
        if word in _FORMAT_WORDS:
            return f"named for a format ({word!r})"
    if all(t in _CATCHALL_WORDS or t in _FORMAT_WORDS for t in tokens):
        return f"named as a catch-all ({heading.strip()!r})"
    return None


class _View:
    """The items grouped by section, with centroids, leave-one-out fits and heading scores."""

    def __init__(self, x: np.ndarray, paths: list[tuple[str, ...]], titles: Sequence[str],
                 heading_vectors: dict[tuple, np.ndarray]):
        self.x = x
        self.paths = paths
        self.titles = titles
        self.heading_vectors = heading_vectors
        self._heading_cache: dict[tuple, tuple[np.ndarray, list[str]] | None] = {}
        stems = Counter(w for title in titles for w in {_stem(t) for t in _content_words(title)})
        self.common = frozenset(w for w, n in stems.items() if n > LEXICAL_COMMON * len(titles)) \
            if len(titles) >= 8 else frozenset()
        groups: dict[tuple, list[int]] = {}
        for i, path in enumerate(paths):
            groups.setdefault(path, []).append(i)
        self.keys = list(groups)
        self.members = {s: np.asarray(ix, dtype=np.int64) for s, ix in groups.items()}
        sums = {s: x[ix].sum(axis=0) for s, ix in self.members.items()}
        self.centroid = {s: _normalise(v) for s, v in sums.items()}
        self.loo = np.full(len(x), np.nan)  # similarity to own section's centroid without the item
        for s, ix in self.members.items():
            if len(ix) < 2:
                continue
            rest = sums[s][None, :] - x[ix]
            self.loo[ix] = np.einsum("ij,ij->i", x[ix], rest) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)

    def size(self, s: tuple) -> int:
        return len(self.members.get(s, ()))

    def cohesion(self, s: tuple) -> float | None:
        vals = self.loo[self.members[s]]
        return float(np.mean(vals)) if len(vals) > 1 else None

    def ref(self, i: int, similarity: float) -> ItemRef:
        return ItemRef(int(i), self.titles[i], self.paths[i], float(similarity))

    def heading_scores(self, path: tuple) -> tuple[np.ndarray, list[str]] | None:
        """Per item: cosine to the heading's vector plus a bonus for heading words in the title."""
        if path not in self._heading_cache:
            vector = self.heading_vectors.get(path)
            if vector is None:
                self._heading_cache[path] = None
            else:
                scores = self.x @ _normalise(np.asarray(vector, dtype=np.float64))
                matched = []
                for i, title in enumerate(self.titles):
                    coverage, evidence = lexical_match(heading_text(path), title, self.common)
                    scores[i] += LEXICAL_WEIGHT * coverage
                    matched.append(evidence)
                self._heading_cache[path] = (scores, matched)
        return self._heading_cache[path]


def audit(vectors: np.ndarray, labels, section_paths: Sequence[tuple[str, ...]], titles: Sequence[str],
          all_sections: Sequence[tuple[str, ...]], heading_vectors: dict[tuple, np.ndarray],
          *, names: list[list[str]] | None = None, misfiled_margin: float = MISFILED_MARGIN) -> Audit:
    """Hold the clusters against the queue's sections. Suggestions only; nothing is moved.

    ``heading_vectors`` maps a section path to the embedding of ``heading_text(path)``;
    sections without one get no heading-based suggestions. ``names`` (from
    name_clusters) label the clusters in the result.
    """
    x = _unit(vectors)
    labels = np.asarray(labels, dtype=np.int64)
    paths = [tuple(p) for p in section_paths]
    if not (len(x) == len(labels) == len(paths) == len(titles)):
        raise ValueError("vectors, labels, section_paths and titles must describe the same items")
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    names = names or [[] for _ in range(k)]
    view = _View(x, paths, titles, heading_vectors)
    every = list(dict.fromkeys([tuple(p) for p in all_sections] + view.keys))
    position = {p: i for i, p in enumerate(every)}
    view.keys.sort(key=position.__getitem__)  # report sections in document order
    table = _table(view, labels, k)
    entropy = {row.section: row.entropy for row in table}
    fmt = _format_sections(view, entropy)
    topical = [s for s in view.keys if s not in fmt and s != ()]
    # A heading is a home for items if it is a leaf or already holds items itself.
    homes = [p for p in every if p and p not in fmt and not format_reason(p[-1])
             and (view.size(p) or not any(q[:len(p)] == p and len(q) > len(p) for q in every))]
    return Audit(
        clusters=_cluster_infos(view, labels, k, names),
        table=table,
        overlaps=_overlaps(view, topical),
        misfiled=_misfiled(view, topical, misfiled_margin),
        thin=_thin_sections(view, every, fmt),
        formats=[_format_section(view, s, reason, entropy[s], labels, names, topical, homes)
                 for s, reason in fmt.items()],
    )


def _table(view: _View, labels: np.ndarray, k: int) -> list[SectionRow]:
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


def _cluster_infos(view: _View, labels: np.ndarray, k: int, names: list[list[str]]) -> list[ClusterInfo]:
    infos = []
    for c in range(k):
        where = Counter(view.paths[i] for i in np.flatnonzero(labels == c))
        size = sum(where.values())
        # Ties go to the section met first in the document.
        section, count = max(where.items(), key=lambda kv: (kv[1], -view.keys.index(kv[0])),
                             default=(None, 0))
        infos.append(ClusterInfo(c, size, list(names[c]) if c < len(names) else [], section,
                                 count / size if size else 0.0))
    return infos


def _format_sections(view: _View, entropy: dict[tuple, float]) -> dict[tuple, str]:
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


def _nearest(view: _View, i: int, pool: np.ndarray, top: int = EVIDENCE_TOP) -> list[ItemRef]:
    pool = pool[pool != i]
    sims = view.x[pool] @ view.x[i]
    order = np.argsort(-sims, kind="stable")[:top]
    return [view.ref(pool[j], sims[j]) for j in order]


def _overlaps(view: _View, topical: list[tuple]) -> list[Overlap]:
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
    centroids = np.stack([view.centroid[s] for s in pool])
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


def _crossers(view: _View, own: tuple, other: tuple) -> list[ItemRef]:
    """Items of ``own`` that sit closer to ``other``'s centroid; similarity = how much closer."""
    ix = view.members[own]
    gain = view.x[ix] @ view.centroid[other] - view.loo[ix]
    return [view.ref(i, g) for i, g in zip(ix, gain) if g > 0]


def _misfiled(view: _View, topical: list[tuple], margin_min: float) -> list[Misfiled]:
    targets = [s for s in topical if view.size(s) >= MIN_TARGET_ITEMS]
    if len(targets) < 2:
        return []
    centroids = np.stack([view.centroid[s] for s in targets])
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


def _thin_sections(view: _View, every: list[tuple], fmt: dict) -> list[ThinSection]:
    """Empty and thin leaf sections, with the items elsewhere that would fit them.

    A heading with sub-headings is a container: its emptiness shows in its leaves.
    """
    found = []
    for path in every:
        if not path or path in fmt or format_reason(path[-1]):
            continue
        if any(len(q) > len(path) and q[:len(path)] == path for q in every):
            continue
        direct = view.size(path)
        if direct == 0:
            kind = "empty"
        elif direct <= THIN_MAX:
            kind = "thin"
        else:
            continue
        outside = np.asarray([i for i, p in enumerate(view.paths) if p[:len(path)] != path], dtype=np.int64)
        by_heading = []
        scored = view.heading_scores(path)
        if scored is not None and len(outside):
            scores, matched = scored
            for i in outside[np.argsort(-scores[outside], kind="stable")][:SUGGEST_TOP]:
                if scores[i] >= HEADING_MIN:
                    by_heading.append(ItemRef(int(i), view.titles[i], view.paths[i], float(scores[i]), matched[i]))
        by_centroid = _centroid_suggestions(view, path, outside) if direct else []
        found.append(ThinSection(path, kind, direct, by_heading, by_centroid))
    return found


def _centroid_suggestions(view: _View, path: tuple, outside: np.ndarray) -> list[ItemRef]:
    """Items elsewhere that sit closer to this section's items than to their own section."""
    if not len(outside):
        return []
    sims = view.x[outside] @ view.centroid[path]
    own = view.loo[outside]
    keep = (sims >= CENTROID_MIN) & (np.isnan(own) | (sims > own))
    ranked = sorted(((s, i) for s, i, ok in zip(sims, outside, keep) if ok), key=lambda t: -t[0])
    return [view.ref(i, s) for s, i in ranked[:SUGGEST_TOP]]


def _format_section(view: _View, s: tuple, reason: str, entropy: float, labels: np.ndarray,
                    names: list[list[str]], topical: list[tuple], homes: list[tuple]) -> FormatSection:
    """Where each item of a format section would go by topic: a section, and its cluster."""
    targets = [t for t in topical if view.size(t) >= MIN_TARGET_ITEMS]
    centroids = np.stack([view.centroid[t] for t in targets]) if targets else None
    # Headings count too, empty ones included: an empty topic section is often the right home.
    headings = [(t, view.heading_scores(t)) for t in homes]
    headings = [(t, scored[0]) for t, scored in headings if scored is not None]
    destinations = []
    for i in view.members[s]:
        best: tuple[float, tuple | None, str] = (-np.inf, None, "")
        if centroids is not None:
            sims = centroids @ view.x[i]
            j = int(np.argmax(sims))
            best = (float(sims[j]), targets[j], "centroid")
        for t, scores in headings:
            if scores[i] > best[0]:
                best = (float(scores[i]), t, "heading")
        similarity, section, via = best
        if section is None or similarity < DESTINATION_MIN:
            section, via, similarity = None, "", 0.0
        cluster = int(labels[i])
        destinations.append(Destination(
            int(i), view.titles[i], cluster, list(names[cluster]) if 0 <= cluster < len(names) else [],
            section, similarity, via))
    return FormatSection(s, view.size(s), reason, entropy, destinations)


# --------------------------------------------------------------------------- heading words


def lexical_match(heading: str, title: str, common: frozenset[str] = frozenset()) -> tuple[float, str]:
    """Share of the heading's content words found in the title, and what matched.

    Short headings embed poorly against titles full of jargon ("Recommender Systems"
    vs "Real Time Recsys"), so exact words, and abbreviations built from the leading
    letters of consecutive words ("oop", "recsys", "nlp"), count as evidence either way round.
    Word stems in ``common`` (found in many titles of the queue) do not count as matches.
    """
    head = _content_words(heading)
    text = _content_words(title)
    if not head or not text:
        return 0.0, ""
    covered: set[int] = set()
    evidence = []
    stems = {_stem(w) for w in text} - common
    for j, w in enumerate(head):
        if _stem(w) in stems:
            covered.add(j)
            evidence.append(w)
    for token in set(text):
        span = _abbreviates(token, head)
        if span and not set(range(*span)) <= covered:
            covered.update(range(*span))
            evidence.append(f"{token} = {' '.join(head[span[0]:span[1]])}")
    for token in set(head):
        span = _abbreviates(token, text)
        if span:
            covered.add(head.index(token))
            evidence.append(f"{token} = {' '.join(text[span[0]:span[1]])}")
    return len(covered) / len(head), ", ".join(dict.fromkeys(evidence))


def _content_words(text: str) -> list[str]:
    return [w for w in content_words(text) if w not in _TOPICLESS]


def _stem(word: str) -> str:
    for suffix in ("ing", "ers", "es", "er", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _abbreviates(token: str, phrase: list[str]) -> tuple[int, int] | None:
    """(start, end) of >= 2 consecutive phrase words whose prefixes spell ``token``, if any."""
    if len(token) < 2 or token in phrase:
        return None
    for start in range(len(phrase)):
        end = _spell(token, phrase, start)
        if end is not None and end - start >= 2:
            return start, end
    return None


def _spell(token: str, phrase: list[str], at: int) -> int | None:
    """Index after the last word used if ``token`` = prefixes of phrase[at], phrase[at+1], ..."""
    if not token:
        return at
    if at >= len(phrase):
        return None
    word = phrase[at]
    # Longest prefix first: "recsys" is "rec"+"sys" before it is "r"+"ecsys".
    for cut in range(min(len(word), len(token)), 0, -1):
        if token[:cut] == word[:cut]:
            end = _spell(token[cut:], phrase, at + 1)
            if end is not None:
                return end
    return None


def _normalise(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v
