"""What gets embedded for each resource: its page cut into passages, plus what the queue says of it.

Every resource has a ``meta`` passage (title, note, section: enough to find a page rq
could not fetch) and, when its text is archived, ``text`` passages cut by rq.index.chunk.
Next, related and the section audit also use a ``profile`` text per resource: title and
note without the section, since the section is what the audit judges.
"""

from __future__ import annotations

from rq.archive.db import Archive
from rq.index.chunk import passage_hash, split_passages
from rq.queue.model import Queue, Resource
from rq.settings import Settings


def meta_passage(resource: Resource) -> str:
    """What a resource says about itself in the queue: enough to find a page rq could not fetch."""
    parts = [resource.title]
    if resource.note:
        parts.append(resource.note)
    if resource.section:
        parts.append(f"Section: {resource.section}")
    return "\n".join(parts)


def passage_rows(queue: Queue, archive: Archive, settings: Settings, embedder) -> list[tuple]:
    """(resource_id, ord, source, text, hash) for every passage of every resource in the queue."""
    docs = archive.documents()
    rows: list[tuple] = []
    for resource in queue.resources:
        meta = meta_passage(resource)
        rows.append((resource.id, 0, "meta", meta, passage_hash(meta)))
        doc = docs.get(resource.id)
        if doc is None or not doc["text"].strip():
            continue
        title = resource.title if resource.title != resource.url else (doc["title"] or resource.title)
        pieces = split_passages(title, doc["text"], settings.chunk_words, settings.chunk_overlap_words,
                                count_pieces=embedder.count_pieces, max_pieces=embedder.max_pieces)
        rows.extend((resource.id, i, "text", p, passage_hash(p)) for i, p in enumerate(pieces, start=1))
    return rows


def profile_text(resource: Resource) -> str:
    """What the reader wrote about a resource, without its section: next, related and the
    section audit compare resources by content, and the section is what the audit checks."""
    return "\n".join(p for p in (resource.title, resource.note) if p)
