"""`rq clusters` and `rq map`: the collection's real topics, held against its sections.

Resource vectors come from the index (page text blended with title and note,
never the section name: the sections are what the audit judges). Nothing here
writes the queue; the audit only suggests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rq.errors import UsageError
from rq.rank.session import ReadSession
from rq.settings import Settings

NAME_TEXT_CHARS = 2000  # enough page text to name a topic, not so much that one long page dominates


@dataclass
class TopicReport:
    clustering: object  # clusters.Clustering
    names: list[list[str]]
    audit: object  # findings.Audit
    notices: list[str]
    resources: int
    ids: list[str] = field(default_factory=list)  # full resource id per item, as the audit numbers them
    titles: list[str] = field(default_factory=list)

    def members(self, cluster: int) -> list[tuple[str, str]]:
        """(id, title) of each resource in the cluster, the most central first."""
        return [(self.ids[i], self.titles[i]) for i in self.audit.clusters[cluster].members]

    def as_dict(self) -> dict:
        clusters = [{"cluster": c.cluster, "name": c.words, "size": c.size, "section": list(c.section or ()),
                     "share": round(c.share, 4), "ids": [self.ids[i] for i in c.members],
                     "titles": [self.titles[i] for i in c.members]} for c in self.audit.clusters]
        return {"resources": self.resources, "k": self.clustering.k, "method": self.clustering.method,
                "how": self.clustering.how, "names": self.names, "clusters": clusters,
                "notices": self.notices, "audit": self.audit.as_dict()}


def parse_k(value: str) -> int | str:
    if value == "auto":
        return "auto"
    try:
        k = int(value)
    except ValueError:
        raise UsageError(f"--k takes a whole number or auto, not {value!r}") from None
    if k < 1:
        raise UsageError("--k must be at least 1")
    return k


def _item_texts(lib: ReadSession) -> list[str]:
    """Title and note of each resource: what cluster names and heading words are looked for in first."""
    return ["\n".join(p for p in (r.title, r.note) if p) for r in lib.resources]


def _names(lib: ReadSession, labels) -> list[list[str]]:
    from rq.rank.topics.naming import name_clusters

    openings = lib.archive.document_openings(NAME_TEXT_CHARS)
    return name_clusters(_item_texts(lib), labels, pages=[openings.get(r.id, "") for r in lib.resources],
                         vectors=lib.vectors)


def _clustering(lib: ReadSession, k: int | str, method: str):
    from rq.rank.topics.clusters import cluster, topic_sections

    return cluster(lib.vectors, k, method, sections=topic_sections(r.section_path for r in lib.resources))


def _heading_vectors(lib: ReadSession) -> dict[tuple, np.ndarray]:
    from rq.index.chunk import passage_hash
    from rq.index.encoders.cache import vectors_key
    from rq.rank.topics.headings import heading_text

    paths = [s.path for s in lib.queue.sections]
    texts = {p: heading_text(p) for p in paths if heading_text(p)}
    hashes = {p: passage_hash(t) for p, t in texts.items()}
    cached = lib.cached_vectors(list(hashes.values()))
    missing = [p for p in texts if hashes[p] not in cached]
    if missing:
        vectors = lib.embedder.encode([texts[p] for p in missing])
        fresh = [(hashes[p], v.astype(np.float32).tobytes()) for p, v in zip(missing, vectors)]
        lib.remember_vectors(vectors_key(lib.embedder), fresh)
        cached.update(fresh)
    return {p: np.frombuffer(cached[hashes[p]], dtype=np.float32) for p in texts}


def cluster_report(settings: Settings, k: int | str = "auto", method: str | None = None,
                   embedder=None, progress=None) -> TopicReport:
    from rq.rank.topics.audit import audit
    from rq.rank.topics.clusters import DEFAULT_METHOD

    notices: list[str] = []
    lib = ReadSession(settings, notices, embedder, progress)
    try:
        if not lib.ids:
            raise UsageError("the queue has no resources to cluster")
        clustering = _clustering(lib, k, method or DEFAULT_METHOD)
        names = _names(lib, clustering.labels)
        titles = [r.title for r in lib.resources]
        result = audit(lib.vectors, clustering.labels, [r.section_path for r in lib.resources], titles,
                       [s.path for s in lib.queue.sections], _heading_vectors(lib), names=names,
                       texts=_item_texts(lib))
        return TopicReport(clustering, names, result, notices, len(lib.ids), list(lib.ids), titles)
    finally:
        lib.close()


def write_collection_map(settings: Settings, out: Path, color_by: str = "section", k: int | str = "auto",
                         embedder=None, progress=None) -> dict:
    from rq.rank.topics.clusters import DEFAULT_METHOD
    from rq.rank.topics.mapview import project, write_map

    if color_by not in ("section", "cluster"):
        raise UsageError("--color takes section or cluster")
    notices: list[str] = []
    lib = ReadSession(settings, notices, embedder, progress)
    try:
        clustering = _clustering(lib, k, DEFAULT_METHOD)
        names = _names(lib, clustering.labels)
        projection = project(lib.vectors)
        write_map(out, projection.points, [r.title for r in lib.resources], [r.section for r in lib.resources],
                  [r.url for r in lib.resources],
                  [r.state if r.has_checkbox else None for r in lib.resources], clustering.labels, names,
                  color_by=color_by, heading=f"{lib.location.queue_path.name}: {len(lib.ids)} resources")
        return {"out": str(out), "resources": len(lib.ids), "projection": projection.method,
                "clusters": clustering.k, "notices": notices}
    finally:
        lib.close()
