"""What the section audit found: plain dataclasses, each with ``as_dict()`` for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

SECTION_DEFINITION = (
    "an item belongs to its deepest heading; headings whose items all sit in "
    "sub-headings are containers, not sections"
)


def plain(value):
    """JSON-ready copy: dataclasses to dicts, tuples to lists, numpy scalars to Python."""
    if is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    return value


class _Plain:
    def as_dict(self) -> dict:
        return plain(self)


@dataclass
class ItemRef(_Plain):
    item: int  # index into the vectors given to audit()
    title: str
    section: tuple[str, ...]  # where the item is filed now
    similarity: float  # cosine; for heading suggestions the heading fit (SectionView.fit_scores: a centred cosine plus a word bonus)
    evidence: str = ""  # heading words found in the title, for heading-based suggestions


@dataclass
class ClusterInfo(_Plain):
    cluster: int
    size: int
    words: list[str]
    section: tuple[str, ...] | None  # the section holding most of the cluster
    share: float  # fraction of the cluster in that section
    members: list[int] = field(default_factory=list)  # its items, nearest the cluster's centre first


@dataclass
class SectionRow(_Plain):
    section: tuple[str, ...]
    size: int
    counts: list[int]  # items per cluster, cluster 0 first
    unclustered: int  # items with label -1 (HDBSCAN only)
    entropy: float  # topic entropy of the section's items, 0 (one topic) .. 1 (evenly spread)
    cohesion: float | None  # mean similarity of an item to the centroid of the others


@dataclass
class Overlap(_Plain):
    a: tuple[str, ...]
    b: tuple[str, ...]
    similarity: float  # cosine of the two centroids
    share: float  # fraction of the pair's items closer to the other section's centroid
    causes: list[ItemRef]  # those items; similarity = how much closer to the other centroid


@dataclass
class Misfiled(_Plain):
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
class ThinSection(_Plain):
    section: tuple[str, ...]
    kind: str  # "empty" or "thin"
    size: int
    by_heading: list[ItemRef]  # items elsewhere that match the heading
    by_centroid: list[ItemRef]  # items elsewhere close to the section's own items


@dataclass
class Destination(_Plain):
    item: int
    title: str
    cluster: int
    cluster_words: list[str]
    section: tuple[str, ...] | None  # the topical section it would go to, if any is close
    similarity: float  # cosine to the centroid, or the heading fit (SectionView.fit_scores: a centred cosine plus a word bonus)
    via: str  # "centroid" (the section's items) or "heading" (an empty or thin section's name)


@dataclass
class FormatSection(_Plain):
    section: tuple[str, ...]
    size: int
    reason: str
    entropy: float
    destinations: list[Destination]


@dataclass
class Audit(_Plain):
    clusters: list[ClusterInfo]
    table: list[SectionRow]
    overlaps: list[Overlap]
    misfiled: list[Misfiled]
    thin: list[ThinSection]
    formats: list[FormatSection]
    definition: str = SECTION_DEFINITION
