"""Names for topic clusters: each cluster's most distinctive terms by class-based tf-idf.

Terms are words and phrases of two or three (rq.rank.topics.phrases); a phrase is preferred
to its words. Each cluster's texts are one class document: a term's weight is its share of
the class times log(1 + average class size / the term's weight overall), so terms common to
every cluster sink (the c-TF-IDF of BERTopic). A term counts once per text, from the title
and note at full weight and from the page alone at PAGE_WEIGHT, so one long page cannot name a
cluster. No two clusters share a term, and no two names share most of their words.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from rq.rank.topics.clusters import cluster_count
from rq.rank.topics.headings import abbreviates
from rq.rank.topics.phrases import stem, terms_of, vocabulary

NAME_TERMS = 3
PAGE_WEIGHT = 0.5  # a term found only in the page, not in the title or note
PHRASE_WEIGHT = 2.0  # a phrase's weight over a single word's (see benchmarks/bench_clusters.py, names)
CLOSED_SHARE = 0.8  # see _closed
NAME_MEMBERS = 60  # a cluster is named from at most this many of its members, the most central


def name_clusters(texts: Sequence[str], labels, top: int = NAME_TERMS, *, pages: Sequence[str] | None = None,
                  vectors: np.ndarray | None = None) -> list[list[str]]:
    """The ``top`` most distinctive terms of each cluster, as displayed (see the module doc).

    ``texts`` are titles and notes; ``pages`` (optional, same order) the pages' text. With
    ``vectors`` (unit length, same order), a large cluster is named from its NAME_MEMBERS items
    nearest its centre, which keeps naming 10,000 items about as cheap as naming 1,000.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = cluster_count(labels)
    members = _members(labels, k, vectors)
    used = sorted({int(i) for ix in members for i in ix})
    vocab = vocabulary([texts[i] for i in used] + ([pages[i] for i in used if pages[i]] if pages is not None else []))
    weights = {}
    for i in used:
        own = terms_of(texts[i], vocab)
        page = terms_of(pages[i], vocab) - own if pages is not None and pages[i] else set()
        weights[i] = {**{t: PAGE_WEIGHT for t in page}, **{t: 1.0 for t in own}}
    classes = [Counter() for _ in range(k)]  # term -> weight of the cluster's texts that hold it
    holders = [Counter() for _ in range(k)]  # term -> how many of the cluster's texts hold it
    for c, ix in enumerate(members):
        for i in ix:
            classes[c].update(weights[int(i)])
            holders[c].update(weights[int(i)].keys())
    overall = Counter()
    for counts in classes:
        overall.update(counts)
    average = sum(overall.values()) / k if k else 0.0
    ranked = []
    for c in range(k):
        length = sum(classes[c].values()) or 1.0

        def key(t: str, c=c, length=length):
            score = classes[c][t] / length * math.log(1 + average / overall[t])
            # Terms held by two or more of the cluster's texts first: one title is not a topic.
            return (holders[c][t] < 2 and len(members[c]) > 1,
                    -score * (PHRASE_WEIGHT if " " in t else 1.0), t)

        ranked.append(sorted(_closed(classes[c].keys(), holders[c]), key=key))
    order = sorted(range(k), key=lambda c: -len(members[c]))
    return [[vocab.display(t) for t in name] for name in _choose(ranked, order, top)]


def shares_most(a: set[str], b: set[str]) -> bool:
    """Whether two names (their word stems) share more than half of the smaller one's words."""
    return bool(a) and bool(b) and 2 * len(a & b) > min(len(a), len(b))


def _members(labels: np.ndarray, k: int, vectors: np.ndarray | None) -> list[np.ndarray]:
    out = []
    for c in range(k):
        ix = np.flatnonzero(labels == c)
        if vectors is not None and len(ix) > NAME_MEMBERS:
            x = np.asarray(vectors[ix], dtype=np.float64)
            ix = ix[np.argsort(-(x @ x.mean(axis=0)), kind="stable")[:NAME_MEMBERS]]
        out.append(ix)
    return out


def _same_thing(a: str, b: str) -> bool:
    """Whether one term is the other's initials ("ai" and "artificial intelligence", "recsys" and
    "recommender systems")."""
    return any(" " not in x and abbreviates(x, y.split()) for x, y in ((a, b), (b, a)))


def _closed(terms, holders: Counter) -> list[str]:
    """The terms not standing for a longer one: "large language" goes where "large language
    model" is held by at least CLOSED_SHARE as many of the cluster's texts."""
    longest: Counter = Counter()  # term -> most texts holding a longer term that contains it
    for term in terms:
        words = term.split()
        for n in range(1, len(words)):
            for start in range(len(words) - n + 1):
                part = " ".join(words[start:start + n])
                longest[part] = max(longest[part], holders[term])
    return [t for t in terms if longest[t] < CLOSED_SHARE * holders[t]]


def _choose(ranked: list[list[str]], order: list[int], top: int) -> list[list[str]]:
    """Each cluster's name, a term per round and cluster in turn (largest first), skipping
    terms another cluster took, terms sharing a word with the cluster's name so far, and terms
    that would make two names share most of their words."""
    names: list[list[str]] = [[] for _ in ranked]
    stems: list[set[str]] = [set() for _ in ranked]
    taken: set[str] = set()
    position = [0] * len(ranked)
    for _ in range(top):
        for c in order:
            while position[c] < len(ranked[c]):
                term = ranked[c][position[c]]
                position[c] += 1
                words = {stem(w) for w in term.split()}
                if term in taken or words & stems[c] or any(_same_thing(term, t) for t in names[c]):
                    continue
                grown = stems[c] | words
                if any(shares_most(grown, stems[d]) for d in range(len(ranked)) if d != c):
                    continue
                names[c].append(term)
                stems[c] = grown
                taken.add(term)
                break
    return names
