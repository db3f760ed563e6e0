"""`rq status` and `rq ls`: every resource with its read state and fetch status, and the counts."""

from __future__ import annotations

from collections import Counter

from rq.archive.db import Archive
from rq.archive.session import open_to_read
from rq.archive.views import ResourceView, describe
from rq.queue.model import Queue
from rq.queue.resolve import check_section
from rq.report.changes import changed_since_read
from rq.settings import Settings


def views(queue: Queue, archive: Archive) -> list[ResourceView]:
    last = archive.last_fetches()
    docs = archive.documents()
    items = [describe(r, last.get(r.id), docs.get(r.id)) for r in queue.resources]
    changed = {c["id"] for c in changed_since_read(archive, queue)}
    for item in items:
        item.changed_since_read = item.id in changed
    return items


def select(queue: Queue, items: list[ResourceView], section: str | None = None, unread: bool = False,
           failed: bool = False) -> list[ResourceView]:
    """`rq ls`'s filters; an unknown --section is an error that lists the sections."""
    check_section(queue, section)
    if section:
        items = [v for v in items if section.casefold() in v.section.casefold()]
    if unread:
        items = [v for v in items if not v.is_read]
    if failed:
        items = [v for v in items if v.fetch == "failed"]
    return items


def load_views(settings: Settings) -> tuple[object, Queue, list[ResourceView]]:
    location, queue, archive = open_to_read(settings)
    try:
        return location, queue, views(queue, archive)
    finally:
        archive.close()


def summarize(location, queue: Queue, items: list[ResourceView]) -> dict:
    states = Counter(v.state for v in items)
    fetch = Counter(v.fetch for v in items)
    reasons = Counter(v.reason for v in items if v.reason and v.fetch == "failed")  # not "not checked"
    return {
        "queue": str(location.queue_path),
        "embedded_default": location.embedded,
        "index": str(location.index_dir),
        "resources": len(items),
        "sections": len(queue.sections),
        "empty_sections": sum(1 for s in queue.sections if not any(
            r.section_path[:len(s.path)] == s.path for r in queue.resources)),
        "by_state": dict(states),
        "without_checkbox": sum(1 for v in items if not v.checkbox),  # counted as unread too
        "by_fetch": dict(fetch),
        "failed_by_reason": dict(reasons),
        "changed_since_read": sum(1 for v in items if v.changed_since_read),
        "warnings": [str(w) for w in queue.warnings],
    }
