"""How many clusters `rq clusters` makes, and how it copes with 10,000 items (rq.rank.topics.clusters)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rq.rank.topics import clusters as rqc


def nested_topics(groups=2, per_group=6, size=8, dim=64, seed=0):
    """Two broad areas, each with six sub-topics: the silhouette alone prefers the two areas.

    Returns unit vectors and the sub-topic of each item."""
    rng = np.random.default_rng(seed)
    rows, topics = [], []
    for g in range(groups):
        area = np.eye(dim)[g]
        for t in range(per_group):
            centre = area * 3.0 + np.eye(dim)[2 + g * per_group + t] * 1.0
            rows.append(centre + 0.15 * rng.standard_normal((size, dim)))
            topics += [g * per_group + t] * size
    x = np.vstack(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.array(topics)


def test_silhouette_is_exact_without_a_distance_matrix():
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 12))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = rng.integers(0, 5, 120)
    labels[7] = 5  # a one-item cluster scores 0, as in sklearn
    distances = np.clip(1 - x @ x.T, 0, 2)
    np.fill_diagonal(distances, 0)
    assert rqc.silhouette(x, labels) == pytest.approx(silhouette_score(distances, labels, metric="precomputed"),
                                                      abs=1e-9)


def test_silhouette_of_duplicates_is_a_number():
    x = np.repeat(np.eye(4)[:2], 3, axis=0)  # two groups of three identical vectors
    assert rqc.silhouette(x, np.array([0, 0, 1, 1, 2, 2])) == pytest.approx(1 / 3)  # the split group scores 0
    assert rqc.silhouette(np.ones((4, 3)) / np.sqrt(3), np.array([0, 0, 1, 1])) == 0.0


def test_many_sections_keep_auto_k_off_two_big_groups():
    x, topics = nested_topics()
    without = rqc.cluster(x, "auto")
    assert without.k == 2  # the silhouette alone picks the two areas: 48 items each
    paths = [(f"section {t}",) for t in topics]
    sections = rqc.topic_sections(paths)
    assert sections == 12
    result = rqc.cluster(x, "auto", sections=sections)
    assert result.k >= 9  # at least 3/4 of the 12 sections
    assert "12 sections" in result.how
    # The sub-topics come back: every cluster is (nearly) one section.
    purity = sum(np.bincount(topics[result.labels == c]).max() for c in range(result.k)) / len(x)
    assert purity > 0.9


def test_k_range_has_floors_for_sections_and_size():
    assert rqc.k_range(25) == range(2, 8)  # a small queue: 2..round(sqrt(50))
    assert rqc.k_range(25, sections=5) == range(4, 8)
    assert rqc.k_range(253, sections=22) == range(17, 23)  # the study list that got k=2
    assert rqc.k_range(1963) == range(40, 41)  # one cluster per 50 items, at most K_MAX
    assert rqc.k_range(500, sections=60) == range(40, 41)  # more sections than K_MAX: capped
    assert rqc.k_range(10) == range(2, 5)
    assert rqc.k_range(5, sections=9).stop - 1 <= 4  # never more clusters than items - 1


def test_topic_sections_counts_sections_of_three_or_more():
    paths = [("A",)] * 3 + [("B",)] * 2 + [("A", "x")] * 4 + [()] * 5
    assert rqc.topic_sections(paths) == 3  # A, A/x and the items before the first heading


def test_large_queue_builds_its_tree_on_a_sample(monkeypatch):
    import scipy.cluster.hierarchy as hierarchy

    sizes = []
    real = hierarchy.linkage

    def spy(x, *args, **kwargs):
        sizes.append(len(x))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(hierarchy, "linkage", spy)
    rng = np.random.default_rng(2)
    centres = np.eye(32)[:8]
    topics = rng.integers(0, 8, 10_000)
    x = centres[topics] + 0.2 * rng.standard_normal((10_000, 32))
    start = time.perf_counter()
    result = rqc.cluster(x, 8)
    seconds = time.perf_counter() - start
    assert sizes == [rqc.WARD_SAMPLE]  # never a 10,000 x 10,000 problem
    assert len(result.labels) == 10_000 and result.k == 8 and "sample of 2,000" in result.how
    purity = sum(np.bincount(topics[result.labels == c]).max() for c in range(8)) / len(x)
    assert purity > 0.99
    assert seconds < 30  # about 1 s on two cores; generous for a busy machine


def test_auto_k_at_ten_thousand_items_is_quick():
    x, _ = nested_topics(per_group=6, size=834, dim=64, seed=3)  # 10,008 items
    start = time.perf_counter()
    result = rqc.cluster(x, "auto", sections=12)
    seconds = time.perf_counter() - start
    assert result.k == rqc.K_MAX  # one cluster per 50 items is more than K_MAX allows
    assert seconds < 30  # 1.4 s on two cores (benchmarks/bench_clusters_scale.py)
