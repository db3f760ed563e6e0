"""`rq show`: one resource as the queue and the archive know it, in the shape `--json` prints
and `rq serve`'s /api/item/{id} returns."""

from __future__ import annotations

from rq.archive.session import open_to_read
from rq.archive.views import describe
from rq.queue.resolve import resolve_resource
from rq.settings import Settings


def resource_detail(settings: Settings, ref: str, chars: int = 800) -> dict:
    """Where the resource sits in the queue, the first ``chars`` of its extracted text and its
    fetch history (newest first)."""
    _, parsed, archive = open_to_read(settings)
    try:
        res = resolve_resource(parsed, ref)
        doc = archive.document(res.id)
        history = archive.fetch_history(res.id)
        view = describe(res, history[0] if history else None, doc)
    finally:
        archive.close()
    text = doc["text"] if doc is not None else ""
    return {**view.as_dict(), "text_head": text[:chars], "text_chars": len(text),
            "document": {k: doc[k] for k in ("kind", "title", "author", "date", "pages", "problem")} if doc else None,
            "history": [h.__dict__ for h in history]}
