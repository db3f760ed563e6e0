"""rq next / rq related: ranking unread resources from read ones, diversity, reasons, fallbacks.

The first half uses the real model on a few dozen short titles whose right answer
is plain to a person; the second half checks the plumbing with hand-made vectors.
"""

import math

import numpy as np
import pytest

from rq.rank.cosine import best_pair
from rq.rank.suggest import centrality, svm
from rq.rank.suggest import recommend as rec
from rq.settings import RECOMMEND_METHODS

DAY = 86_400.0
NOW = 1_700_000_000.0

COOKING = [
    "How to bake sourdough bread at home",
    "A beginner's guide to roasting vegetables",
    "Knife skills every home cook should learn",
    "The science of caramelising onions in a pan",
    "Making fresh egg pasta by hand",
    "Sourdough starter: feeding and keeping it alive",
]
ASTRONOMY = [
    "How black holes form from collapsing stars",
    "A tour of the planets of the solar system",
    "Why is the night sky dark? Olbers' paradox",
    "When and where to watch meteor showers",
    "Observing the moons of Jupiter through binoculars",
    "What a supernova leaves behind: neutron stars",
]
GARDENING = [
    "Growing tomatoes in containers on a balcony",
    "Turning fallen leaves into garden compost",
    "Pruning roses in early spring",
    "Choosing perennials for a shady garden",
]
DATABASES = [
    "Indexing strategies for slow PostgreSQL queries",
    "How B-tree indexes speed up database lookups",
    "Write-ahead logging in relational databases",
    "Reading SQL query plans to tune performance",
]
RUNNING = [
    "A training plan for your first marathon",
    "How to avoid common running injuries",
    "Interval workouts to run a faster 5k",
]
# Five near-copies of one astronomy item: MMR must not let them fill the top five.
SATURN = [
    "Observing Saturn's rings with a backyard telescope",
    "Observing Saturn's rings with a backyard telescope, part 2",
    "How to observe Saturn's rings with a backyard telescope",
    "Observing the rings of Saturn with a backyard telescope",
    "Observing Saturn's rings with your backyard telescope tonight",
]
TOPICS = {"cooking": COOKING, "astronomy": ASTRONOMY, "gardening": GARDENING,
          "databases": DATABASES, "running": RUNNING, "saturn": SATURN}
TITLES = [t for titles in TOPICS.values() for t in titles]
TOPIC_OF = [name for name, titles in TOPICS.items() for _ in titles]
SAME_AS_ASTRONOMY = {"astronomy", "saturn"}


METHODS = list(dict.fromkeys([rec.DEFAULT_METHOD, *RECOMMEND_METHODS]))


@pytest.fixture(scope="module")
def embedder():
    from rq.index.encoders.torch_encoder import Embedder

    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def vectors(embedder):
    return embedder.encode(TITLES)


def rows(*titles):
    return [TITLES.index(t) for t in titles]


def mask(n, idx):
    out = np.zeros(n, dtype=bool)
    out[list(idx)] = True
    return out


def topic_rows(name):
    return [i for i, t in enumerate(TOPIC_OF) if t == name]


def without(topic):
    """Candidate mask leaving out one topic's rows."""
    return np.array([t != topic for t in TOPIC_OF])


# --------------------------------------------------------------------------- real model


@pytest.mark.parametrize("method", METHODS)
def test_three_reads_on_one_topic_put_that_topic_first(vectors, method):
    read = mask(len(TITLES), rows(*COOKING[:3]))
    got = rec.rank_next(vectors, read, ~read, method=method, k=5)
    assert TOPIC_OF[got.indices[0]] == "cooking", [TITLES[i] for i in got.indices]
    assert got.fallback is None and got.method == method
    # without diversification, the three unread cooking items beat every other item
    plain = rec.rank_next(vectors, read, ~read, method=method, mmr_lambda=1.0, k=3)
    assert [TOPIC_OF[i] for i in plain.indices] == ["cooking"] * 3, [TITLES[i] for i in plain.indices]


def test_because_names_the_read_items_behind_a_suggestion(vectors):
    read_rows = rows(*COOKING[:3]) + rows(*DATABASES[:2])
    read = mask(len(TITLES), read_rows)
    got = rec.rank_next(vectors, read, ~read, k=5)
    assert len(got.because) == len(got.indices)
    for suggestion, reasons in zip(got.indices, got.because):
        assert 1 <= len(reasons) <= rec.BECAUSE_MAX
        assert all(r in read_rows for r, _ in reasons)
        sims = [s for _, s in reasons]
        assert sims == pytest.approx([float(vectors[suggestion] @ vectors[r]) for r, _ in reasons], abs=1e-5)
        assert sims == sorted(sims, reverse=True)
        if TOPIC_OF[suggestion] in ("cooking", "databases"):  # a topic the reader knows
            assert TOPIC_OF[reasons[0][0]] == TOPIC_OF[suggestion]
    starter = TITLES.index(COOKING[5])
    assert starter in got.indices
    first_reason = got.because[list(got.indices).index(starter)][0][0]
    assert TITLES[first_reason] == COOKING[0]  # the starter is explained by the sourdough bread


@pytest.mark.parametrize("method", METHODS)
def test_mmr_keeps_near_copies_from_filling_the_top_five(vectors, method):
    # reads about watching the sky, so the five Saturn near-copies are the closest items
    read = mask(len(TITLES), rows(ASTRONOMY[1], ASTRONOMY[3], ASTRONOMY[4]))
    plain = rec.rank_next(vectors, read, ~read, method=method, mmr_lambda=1.0, k=5)
    diverse = rec.rank_next(vectors, read, ~read, method=method, k=5)
    shown = [TITLES[i] for i in diverse.indices]
    assert sum(TOPIC_OF[i] == "saturn" for i in plain.indices) >= 3  # the fixture does tempt the ranker
    assert sum(TOPIC_OF[i] == "saturn" for i in diverse.indices) == 1, shown
    assert TOPIC_OF[diverse.indices[0]] == "saturn"  # the most relevant one still leads
    # the freed places go to the other unread astronomy items
    unread_astronomy = {TITLES.index(t) for t in ASTRONOMY} - set(np.flatnonzero(read))
    assert unread_astronomy <= set(diverse.indices.tolist()), shown


def test_classic_mmr_is_the_zero_floor(vectors):
    read = mask(len(TITLES), rows(ASTRONOMY[1], ASTRONOMY[3], ASTRONOMY[4]))
    classic = rec.rank_next(vectors, read, ~read, mmr_lambda=0.5, mmr_floor=0.0, k=5)
    assert sum(TOPIC_OF[i] == "saturn" for i in classic.indices) <= 2


@pytest.mark.parametrize("method", METHODS)
def test_recent_reads_outweigh_old_ones(vectors, method):
    cooking, astronomy = rows(*COOKING[:3]), rows(*ASTRONOMY[:3])
    read = mask(len(TITLES), cooking + astronomy)
    candidates = ~read & without("saturn")
    times = np.full(len(TITLES), np.nan)
    for recent, old in ((cooking, astronomy), (astronomy, cooking)):
        times[recent] = NOW - 1 * DAY
        times[old] = NOW - 400 * DAY
        weights = rec.recency_weights(times, NOW, half_life_days=30)
        got = rec.rank_next(vectors, read, candidates, weights, method=method, k=3)
        want = TOPIC_OF[recent[0]]
        assert [TOPIC_OF[i] for i in got.indices] == [want] * 3, [TITLES[i] for i in got.indices]


def test_nothing_read_falls_back_and_says_so(vectors):
    nothing = np.zeros(len(TITLES), dtype=bool)
    got = rec.rank_next(vectors, nothing, ~nothing, k=5)
    assert got.fallback == rec.FALLBACK_TOPIC
    assert len(got.indices) == 5 and len(set(got.indices.tolist())) == 5
    assert got.because == [[], [], [], [], []]


def test_related_finds_the_same_topic_and_never_the_item_itself(vectors):
    sourdough = TITLES.index(COOKING[0])
    got, scores = rec.related(vectors, vectors[sourdough], exclude=sourdough, k=5)
    assert TITLES[got[0]] == COOKING[5]  # the sourdough starter
    assert list(scores) == sorted(scores, reverse=True)
    for item in range(len(TITLES)):
        got, _ = rec.related(vectors, vectors[item], exclude=item, k=5)
        assert item not in got
        assert len(got) == 5


def test_related_to_free_text(vectors, embedder):
    query = embedder.encode_query("stargazing with a telescope")
    got, _ = rec.related(vectors, query, exclude=None, k=3)
    assert all(TOPIC_OF[i] in SAME_AS_ASTRONOMY for i in got)


def test_best_pair_finds_the_matching_passages(embedder):
    a = embedder.encode([
        "It rained all week and the garden flooded.",
        "Gradient descent lowers a loss function one small step at a time.",
        "My cat sleeps on the sofa every afternoon.",
    ])
    b = embedder.encode([
        "Stock markets fell sharply on Monday.",
        "The recipe needs two eggs and a cup of flour.",
        "Stochastic gradient descent updates the weights to reduce the training loss.",
    ])
    i, j, score = best_pair(a, b)
    assert (i, j) == (1, 2)
    assert score == pytest.approx(float(a[1] @ b[2]), abs=1e-5) and score > 0.5


# --------------------------------------------------------------------------- plumbing, hand-made vectors


def unit(rows_):
    x = np.asarray(rows_, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clusters(seed=0):
    """Three tight clusters on three axes of 8-d space: 6, 3 and 3 rows."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3]
    sizes = (6, 3, 3)
    x = np.concatenate([c + 0.05 * rng.normal(size=(s, 8)) for c, s in zip(centres, sizes)])
    return unit(x), np.repeat([0, 1, 2], sizes)


def test_recency_weights_halve_every_half_life():
    times = np.array([NOW, NOW - 30 * DAY, NOW - 60 * DAY, np.nan, NOW + 5 * DAY])
    w = rec.recency_weights(times, NOW, 30)
    assert w == pytest.approx([1.0, 0.5, 0.25, 1.0, 1.0])
    assert rec.recency_weights(times, NOW, math.inf) == pytest.approx(np.ones(5))
    assert rec.recency_weights(np.array([]), NOW, 30).shape == (0,)
    for bad in (0, -1, math.nan):
        with pytest.raises(ValueError):
            rec.recency_weights(times, NOW, bad)


@pytest.mark.parametrize("method", [*METHODS, "centroid+maxsim"])
def test_rank_next_suggests_only_unread_candidates(method):
    x, label = clusters()
    read = mask(len(x), [0, 1, 2])
    candidates = ~read
    candidates[3] = False  # e.g. an item without a checkbox: unread but not offered
    got = rec.rank_next(x, read, candidates, method=method, k=5)
    assert len(got.indices) == 5 and got.indices.dtype == np.int64
    assert not read[got.indices].any() and 3 not in got.indices
    assert label[got.indices[0]] == 0  # the rest of the read cluster comes first
    assert len(got.scores) == len(got.because) == 5


def test_read_rows_are_never_suggested_even_when_marked_candidate():
    x, _ = clusters()
    read = mask(len(x), [0, 1])
    got = rec.rank_next(x, read, np.ones(len(x), dtype=bool), k=len(x))
    assert sorted(got.indices.tolist()) == list(range(2, len(x)))


def test_svm_suggestions_repeat_for_the_same_queue():
    rng = np.random.default_rng(3)
    x = unit(rng.normal(size=(30, 40)))  # fewer rows than dimensions: the shuffling dual solver
    read = mask(len(x), [0, 1, 2, 3])
    runs = [rec.rank_next(x, read, ~read, method="svm", k=5).indices.tolist() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_rank_next_leaves_the_blas_thread_count_as_it_found_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    x, _ = clusters()
    rec.rank_next(x, mask(len(x), [0]), ~mask(len(x), [0]))
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert before == after


def test_rank_next_edge_sizes():
    x, _ = clusters()
    read = mask(len(x), [0])
    assert len(rec.rank_next(x, read, ~read, k=0).indices) == 0
    none = rec.rank_next(x, read, np.zeros(len(x), dtype=bool))
    assert len(none.indices) == 0 and none.because == []
    one = rec.rank_next(x, read, mask(len(x), [7]), k=5)
    assert one.indices.tolist() == [7]
    # all but one row read: the linear models have a single negative and still answer
    most = ~mask(len(x), [11])
    assert rec.rank_next(x, most, ~most, method="svm").indices.tolist() == [11]


def test_rank_next_rejects_bad_input():
    x, _ = clusters()
    read = mask(len(x), [0])
    with pytest.raises(ValueError):
        rec.rank_next(x, read[:-1], ~read)
    with pytest.raises(ValueError):
        rec.rank_next(x, read, ~read, method="magic")
    with pytest.raises(ValueError):
        rec.rank_next(x, read, ~read, mmr_lambda=1.5)
    with pytest.raises(ValueError):
        rec.rank_next(x, read, ~read, read_weights=np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        rec.rank_next(x, read, ~read, read_weights=np.array([-1.0]))


def test_read_weights_per_row_or_per_read_row_and_all_zero():
    x, label = clusters()
    read = mask(len(x), [0, 6])  # one read in cluster 0, one in cluster 1
    per_read = rec.rank_next(x, read, ~read, read_weights=np.array([0.01, 1.0]), method="centroid", k=1)
    per_row = np.zeros(len(x))
    per_row[[0, 6]] = [0.01, 1.0]
    again = rec.rank_next(x, read, ~read, read_weights=per_row, method="centroid", k=1)
    assert label[per_read.indices[0]] == label[again.indices[0]] == 1
    # every read so old its weight underflowed: the reads still count, equally
    zero = rec.rank_next(x, read, ~read, read_weights=np.zeros(2), k=3)
    assert len(zero.indices) == 3


def test_fallback_picks_the_largest_cluster_and_tiny_collections_use_queue_order():
    x, label = clusters()
    nothing = np.zeros(len(x), dtype=bool)
    got = rec.rank_next(x, nothing, ~nothing, k=3, mmr_lambda=1.0)
    assert got.fallback == rec.FALLBACK_TOPIC
    assert (label[got.indices] == 0).all()
    tiny = rec.rank_next(x[:3], nothing[:3], ~nothing[:3], k=5)
    assert tiny.fallback == rec.FALLBACK_ORDER and tiny.indices.tolist() == [0, 1, 2]
    # the same input gives the same answer
    first, again = rec.rank_next(x, nothing, ~nothing), rec.rank_next(x, nothing, ~nothing)
    assert first.indices.tolist() == again.indices.tolist()


def test_fallback_clusters_a_sample_of_a_large_collection(monkeypatch):
    x, label = clusters()
    monkeypatch.setattr(centrality, "CLUSTER_SAMPLE", 9)  # fewer than the 12 rows: the sampling path
    nothing = np.zeros(len(x), dtype=bool)
    got = rec.rank_next(x, nothing, ~nothing, k=3, mmr_lambda=1.0)
    assert got.fallback == rec.FALLBACK_TOPIC and (label[got.indices] == 0).all()


def test_diversify_without_mmr_is_plain_top_k_and_with_mmr_skips_copies():
    x = unit([[1, 0, 0], [1, 0, 0], [1, 0.01, 0], [0.8, 0.6, 0], [0, 1, 0]])
    cand = np.arange(5)
    relevance = np.array([1.0, 0.99, 0.98, 0.9, 0.1])
    assert rec.diversify(x, cand, relevance, 3, 1.0).tolist() == [0, 1, 2]
    assert rec.diversify(x, cand, relevance, 3, 0.5).tolist()[:2] == [0, 3]
    # with a floor, rows 0-2 (cosine ~1) are copies but row 3 (cosine 0.8) is not redundant
    assert rec.diversify(x, cand, relevance, 3, 0.5, mmr_floor=0.85).tolist() == [0, 3, 4]
    with pytest.raises(ValueError):
        rec.diversify(x, cand, relevance, 3, 0.5, mmr_floor=1.0)
    # rows are reported as rows of the collection, not positions among the candidates
    assert rec.diversify(x, np.array([4, 3]), np.array([0.1, 0.9]), 1, 0.7).tolist() == [3]


def test_related_excludes_the_item_keeps_ties_in_order_and_caps_k():
    x = unit([[1, 0], [1, 0], [1, 0], [0, 1]])
    got, scores = rec.related(x, x[1], exclude=1, k=10)
    assert got.tolist() == [0, 2, 3] and scores[0] == pytest.approx(1.0)
    got, _ = rec.related(x, x[1], exclude=None, k=2)
    assert got.tolist() == [0, 1]
    with pytest.raises(ValueError):
        rec.related(x, np.ones(3), exclude=None)


def test_best_pair_on_hand_made_vectors():
    a = unit([[1, 0, 0], [0, 1, 0]])
    b = unit([[0, 0, 1], [0, 0.9, 0.1], [1, 1, 0]])
    i, j, score = best_pair(a, b)
    assert (i, j) == (1, 1) and score == pytest.approx(0.9 / math.hypot(0.9, 0.1), abs=1e-6)
    with pytest.raises(ValueError):
        best_pair(a, np.zeros((0, 3)))
    with pytest.raises(ValueError):
        best_pair(a, np.ones((2, 4)))


@pytest.mark.parametrize("n, n_read, c", [(300, 30, 1.0), (1200, 5, 0.1), (60, 59, 1.0), (200, 100, 10.0)])
def test_numpy_svm_ranks_as_scikit_learns_linear_svc(n, n_read, c):
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(n + n_read)
    centres = rng.normal(size=(8, 384))
    x = centres[rng.integers(0, 8, n)] + rng.normal(scale=0.8, size=(n, 384))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    read = np.zeros(n, dtype=bool)
    read[rng.choice(n, n_read, replace=False)] = True
    weights = rng.uniform(0.2, 1.0, n_read)
    ours = svm.svm_scores(x, read, weights, c=c)

    sample = np.ones(n)
    sample[read] = weights / weights.mean()
    model = LinearSVC(C=c, class_weight="balanced", dual=False, tol=1e-10, max_iter=100_000)
    model.fit(x, read.astype(np.int8), sample_weight=sample)
    theirs = model.decision_function(x)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99999
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    unread = np.flatnonzero(~read)
    assert unread[np.argsort(-ours[unread])][:10].tolist() == unread[np.argsort(-theirs[unread])][:10].tolist()
