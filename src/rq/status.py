"""What rq knows about each resource: read state, fetch status, archived text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rq.ingest import open_for, sync_queue
from rq.queue import Queue, Resource
from rq.settings import Settings
from rq.storage import Archive, FetchRecord
from rq.urls import is_web_url


@dataclass
class ResourceView:
    id: str
    state: str | None
    section: str
    title: str
    url: str
    note: str
    line_no: int
    fetch: str  # "archived", "no text", "failed", "not fetched", "not a web link"
    reason: str | None  # failure reason of the last fetch, if it failed
    detail: str
    has_text: bool
    kind: str | None
    extra_links: tuple[str, ...] = ()
    places: list[int] = field(default_factory=list)
    changed_since_read: bool = False  # marked read, and its page changed since (rq.health)

    @property
    def is_read(self) -> bool:
        return self.state == "read"

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["extra_links"] = list(self.extra_links)
        return data


def describe(resource: Resource, last: FetchRecord | None, doc) -> ResourceView:
    has_text = bool(doc is not None and doc["text"].strip())
    reason, detail = None, ""
    if not is_web_url(resource.url):
        fetch = "not a web link"
    elif last is None:
        fetch = "archived" if has_text else "not fetched"
    elif last.outcome == "failed":
        fetch, reason, detail = "failed", last.reason, last.detail
    else:
        fetch = "archived" if has_text else "no text"
        detail = (doc["detail"] if doc is not None else "") or ""
    return ResourceView(
        id=resource.id, state=resource.state, section=resource.section, title=resource.title,
        url=resource.url, note=resource.note, line_no=resource.line_no, fetch=fetch, reason=reason,
        detail=detail, has_text=has_text, kind=doc["kind"] if doc is not None else None,
        extra_links=resource.extra_links, places=[p.line_no for p in resource.places],
    )


def views(queue: Queue, archive: Archive) -> list[ResourceView]:
    from rq.health import changed_since_read

    last = archive.last_fetches()
    docs = archive.documents()
    items = [describe(r, last.get(r.id), docs.get(r.id)) for r in queue.resources]
    changed = {c["id"] for c in changed_since_read(archive, queue)}
    for item in items:
        item.changed_since_read = item.id in changed
    return items


def load_views(settings: Settings) -> tuple[object, Queue, list[ResourceView]]:
    location, queue, archive = open_for(settings)
    try:
        sync_queue(archive, queue)
        return location, queue, views(queue, archive)
    finally:
        archive.close()


def summarize(location, queue: Queue, items: list[ResourceView]) -> dict:
    states = Counter(v.state or "no checkbox" for v in items)
    fetch = Counter(v.fetch for v in items)
    reasons = Counter(v.reason for v in items if v.reason)
    return {
        "queue": str(location.queue_path),
        "embedded_default": location.embedded,
        "index": str(location.index_dir),
        "resources": len(items),
        "sections": len(queue.sections),
        "empty_sections": sum(1 for s in queue.sections if not any(
            r.section_path[:len(s.path)] == s.path for r in queue.resources)),
        "by_state": dict(states),
        "by_fetch": dict(fetch),
        "failed_by_reason": dict(reasons),
        "changed_since_read": sum(1 for v in items if v.changed_since_read),
        "warnings": [str(w) for w in queue.warnings],
    }
