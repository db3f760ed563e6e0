"""What gets embedded for each resource: its page cut into passages, plus what the queue says of it.

Every resource has a ``meta`` passage (title, note, section: enough to find a page rq
could not fetch) and, when its text is archived, ``text`` passages cut by rq.index.chunk.
Next, related and the section audit also use a ``profile`` text per resource: title and
note without the section, since the section is what the audit judges.
"""

from __future__ import annotations

import re

from rq.archive.db import Archive
from rq.index.chunk import passage_hash, split_passages
from rq.queue.model import Queue, Resource
from rq.settings import Settings

_WORD = re.compile(r"\S+")


def meta_passage(resource: Resource) -> str:
    """What a resource says about itself in the queue: enough to find a page rq could not fetch."""
    parts = [resource.title]
    if resource.note:
        parts.append(resource.note)
    if resource.section:
        parts.append(f"Section: {resource.section}")
    return "\n".join(parts)


def passage_rows(queue: Queue, archive: Archive, settings: Settings, embedder) -> tuple[list[tuple], list[dict]]:
    """(resource_id, ord, source, text, hash) for every passage of every resource in the queue,
    and the resources cut to ``max_passages_per_resource`` passages (see ``cut``)."""
    docs = archive.documents()
    rows: list[tuple] = []
    cuts: list[dict] = []
    for resource in queue.resources:
        meta = meta_passage(resource)
        rows.append((resource.id, 0, "meta", meta, passage_hash(meta)))
        doc = docs.get(resource.id)
        if doc is None or not doc["text"].strip():
            continue
        title = resource.title if resource.title != resource.url else (doc["title"] or resource.title)
        pieces, total, estimated = _capped_passages(title, doc["text"], settings, embedder)
        rows.extend((resource.id, i, "text", p, passage_hash(p)) for i, p in enumerate(pieces, start=1))
        if total > len(pieces):
            cuts.append({"id": resource.id, "short_id": resource.short_id, "title": resource.title,
                         "kept": len(pieces), "total": total, "estimated": estimated})
    return rows, cuts


def page_passages(title: str, text: str, settings: Settings, embedder) -> list[str]:
    """The passages a page's text makes in the index (at most ``max_passages_per_resource``)."""
    return _capped_passages(title, text, settings, embedder)[0]


def _capped_passages(title: str, text: str, settings: Settings, embedder) -> tuple[list[str], int, bool]:
    """The first ``max_passages_per_resource`` passages of ``text``, how many the whole text
    makes, and whether that count is an estimate.

    No passage holds more than ``chunk_words`` words, so the kept ones come from the text's
    first cap x chunk_words words: only that beginning, and a passage's worth more so the
    last kept passage ends where it would in the whole text, is cut into passages. A 23 MB
    page would otherwise cost ~15 s of tokenizing on every rebuild for passages never kept.
    The total is then estimated from the share of the text that beginning is."""
    cap = settings.max_passages_per_resource
    head = _first_words(text, (cap + 1) * settings.chunk_words)
    pieces = split_passages(title, head, settings.chunk_words, settings.chunk_overlap_words,
                            count_pieces=embedder.count_pieces, max_pieces=embedder.max_pieces)
    if len(head) == len(text):
        return pieces[:cap], len(pieces), False
    return pieces[:cap], max(len(pieces), round(len(pieces) * len(text) / len(head))), True


def _first_words(text: str, words: int) -> str:
    """``text`` up to the end of its ``words``-th word (all of it when it has no more)."""
    end = len(text)
    for count, match in enumerate(_WORD.finditer(text), start=1):
        if count == words:
            end = match.end()
            break
    return text[:end]


def window_rows(rows: list[tuple], settings: Settings, embedder) -> list[tuple[int, str, str]]:
    """(passage id, text, hash) of the dense windows, passage by passage in order: each text
    passage cut again, on sentence boundaries, into windows of ``dense_window_words`` words
    (a quarter shared with the next, the title line kept); a passage that fits one window, and
    every meta passage, is its own window. A passage's dense score is its best window's."""
    words = settings.dense_window_words
    out: list[tuple[int, str, str]] = []
    for pid, row in enumerate(rows):
        text = row[3]
        title, body = text.split("\n", 1) if "\n" in text else ("", text)
        pieces = []
        if row[2] == "text" and len(text.split()) > words:
            pieces = split_passages(title, body, words, words // 4, count_pieces=embedder.count_pieces,
                                    max_pieces=embedder.max_pieces)
        out.extend((pid, piece, passage_hash(piece)) for piece in (pieces or [text]))
    return out


def cut_line(cut: dict) -> str:
    """What a person is told of a resource cut short: "cut to 500 passages: Title (ab12cd34, 2,310 in all)"."""
    total = f"about {cut['total']:,}" if cut["estimated"] else f"{cut['total']:,}"
    return f"cut to {cut['kept']} passages: {cut['title']} ({cut['short_id']}, {total} in all)"


def profile_text(resource: Resource) -> str:
    """What the reader wrote about a resource, without its section: next, related and the
    section audit compare resources by content, and the section is what the audit checks."""
    return "\n".join(p for p in (resource.title, resource.note) if p)
