"""Cluster names: phrases before words, no stopwords or pieces of contractions, no two names alike
(rq.rank.topics.naming, rq.rank.topics.phrases)."""

from __future__ import annotations

import numpy as np

from rq.rank.topics import naming as rqn
from rq.rank.topics import phrases


def test_names_are_phrases_where_the_texts_share_them():
    texts = [
        "Feature stores for real-time ML: an intro",
        "Building a feature store at Uber",
        "What is a feature store? Feature stores explained",
        "Unit testing data pipelines with pytest",
        "Testing data pipelines: great expectations",
        "Data pipelines need unit testing too",
    ]
    names = rqn.name_clusters(texts, [0, 0, 0, 1, 1, 1])
    assert names[0][0] == "feature store"  # "stores" folded into "store"; the phrase, not "feature"
    assert names[1][0] in ("data pipelines", "unit testing")
    assert all(len(term.split()) > 1 for term in (names[0][0], names[1][0]))


def test_names_hold_no_stopwords_contractions_or_url_pieces():
    texts = [
        "I didn't think we'd go there, but it’s the time: don’t th go https://example.com/a.html",
        "Why didn’t it work? We don't know. Time to go www.example.org",
        "It wasn't the 5th time they'd go, didn't they?",
        "Gradient boosting with XGBoost",
        "XGBoost and LightGBM gradient boosting",
        "Gradient boosting trees",
    ]
    names = rqn.name_clusters(texts, [0, 0, 0, 1, 1, 1])
    every = {w for name in names for term in name for w in term.lower().split()}
    assert not every & {"didn", "don", "wasn", "th", "go", "time", "t", "s", "d", "ll", "https", "com", "www",
                        "html", "5th", "the", "it"}
    assert names[1][0] == "gradient boosting"
    assert "XGBoost" in names[1]  # written as the texts write it, inner capitals kept


def test_phrases_end_at_punctuation_and_stopwords():
    assert phrases.runs("Real-time ML, explained: a guide to feature stores") == \
        [["Real", "time", "ML"], ["explained"], ["feature", "stores"]]
    terms = phrases.terms_of("Using PyTorch for large language models")
    assert "pytorch" in terms and "large language model" not in terms  # no folding without a vocabulary
    assert "large language models" in terms and "using pytorch" not in terms and "using" not in terms
    assert "large" not in terms  # never a name alone, fine inside a phrase
    assert phrases.runs("The 3 best GPUs of 2024, see https://x.io/a") == [["best", "GPUs"], ["see"]]


def test_no_two_names_share_most_of_their_words():
    # Three clusters about recommendations: their best single terms are all "recommendation".
    texts = [
        "Recommendation systems at Netflix", "Recommendation systems for news", "Recommendation ranking at Netflix",
        "Recommendation with graph neural networks", "Graph neural networks for recommendation",
        "Recommendation via graph embeddings",
        "Session-based recommendation", "Recommendation from browsing sessions", "Session recommendation with RNNs",
    ]
    names = rqn.name_clusters(texts, [0] * 3 + [1] * 3 + [2] * 3)
    stems = [{phrases.stem(w.lower()) for term in name for w in term.split()} for name in names]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not rqn.shares_most(stems[i], stems[j]), (names[i], names[j])
    assert all(names)  # every cluster still gets a name
    terms = [t for name in names for t in name]
    assert len(terms) == len(set(terms))  # no term names two clusters


def test_a_name_does_not_repeat_a_term_as_its_initials():
    texts = ["AI in the enterprise", "Artificial intelligence for the enterprise", "AI and artificial intelligence",
             "Cooking pasta", "Baking bread", "Frying eggs"]
    name = rqn.name_clusters(texts, [0, 0, 0, 1, 1, 1])[0]
    assert "artificial intelligence" in name and "AI" not in name


def test_page_text_counts_less_than_titles():
    titles = ["Vector search at Spotify", "Vector search with FAISS", "Scaling ANN indexes", "Query rewriting",
              "Spelling correction", "Query expansion"]
    pages = ["Subscribe to our engineering newsletter. " * 3] * 3 + ["Subscribe to nothing"] + [""] * 2
    names = rqn.name_clusters(titles, [0, 0, 0, 1, 1, 1], pages=pages)
    # "vector search" is in two titles; "engineering newsletter" in all three pages, worth half each.
    assert names[0][:2] == ["vector search", "engineering newsletter"]


def test_large_clusters_are_named_from_their_central_members():
    rng = np.random.default_rng(0)
    centre = np.eye(8)[0]
    vectors = np.vstack([centre + 0.05 * rng.standard_normal((200, 8)), np.eye(8)[1:2].repeat(5, axis=0)])
    texts = ["vector search engines"] * 200 + ["cooking pasta recipes"] * 5
    names = rqn.name_clusters(texts, [0] * 205, vectors=vectors)
    assert names == [["vector search engines"]]  # the five strays are not among the 60 most central


def test_name_clusters_folds_plurals_and_skips_outliers():
    names = rqn.name_clusters(["graph networks", "graph network", "a graph", "stray words"], [0, 0, 0, -1])
    assert names == [["graph network"]]
