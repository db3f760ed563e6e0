"""Names for topic clusters: each cluster's most distinctive words, by class-based tf-idf."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from rq.rank.topics.clusters import cluster_count
from rq.words import STOPWORDS, words

# Besides rq's stopwords (rq.words), words that say nothing about a topic in a reading list.
TOPICLESS = frozenset("""
    also could would via vs versus using use used within without towards toward across per etc eg ie
    one two three new part get got make makes made way ways thing things introduction intro guide
    overview notes note example examples list awesome
""".split())
NAMING_STOPWORDS = STOPWORDS | TOPICLESS
# Pieces of URLs and file names that survive in notes and titles.
_URL_JUNK = frozenset("""
    http https www com org net io html htm pdf php aspx md abs doi arxiv github githubusercontent
    medium blogspot readthedocs wordpress youtube youtu be watch index en
""".split())
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)


def naming_words(text: str) -> list[str]:
    """Words that can name a topic: no URLs, stopwords, numbers or one-letter words."""
    return [w for w in words(_URL.sub(" ", text)) if len(w) > 1 and w[0].isalpha()
            and w not in NAMING_STOPWORDS and w not in _URL_JUNK]


def name_clusters(texts: Sequence[str], labels, top: int = 4) -> list[list[str]]:
    """The ``top`` most distinctive words of each cluster by class-based tf-idf.

    Each cluster's texts are one class document; a word's weight is its frequency in
    the class times log(1 + average class length / the word's frequency overall), so
    words common to every cluster sink. A word counts once per text, which keeps one
    long note from naming a cluster; plurals fold into a singular seen elsewhere.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = cluster_count(labels)
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
    fold = _plural_to_singular(seen)
    forms: dict[str, Counter] = defaultdict(Counter)
    for w, n in seen.items():
        forms[fold.get(w, w)][w] += n
    display = {key: max(c.items(), key=lambda kv: (kv[1], -len(kv[0])))[0] for key, c in forms.items()}
    return fold, display


def _plural_to_singular(seen: Counter) -> dict[str, str]:
    """Each plural word whose singular also occurs ("networks" -> "network", "queries" -> "query")."""
    fold = {}
    for w in seen:
        if len(w) > 3 and w.endswith("ies") and w[:-3] + "y" in seen:
            fold[w] = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss") and w[:-1] in seen:
            fold[w] = w[:-1]
    return fold
