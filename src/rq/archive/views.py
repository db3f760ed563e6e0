"""What rq knows about one resource: read state, fetch status, whether its text is archived."""

from __future__ import annotations

from dataclasses import dataclass, field

from rq.archive.records import OFFLINE, FetchRecord
from rq.queue.model import Resource
from rq.queue.urls import is_web_url


@dataclass
class ResourceView:
    id: str  # all 40 hex digits
    short_id: str  # as shown and typed: unambiguous in the queue
    state: str  # "read" or "unread" (no checkbox counts as unread)
    section: str
    title: str
    url: str
    note: str
    line_no: int
    fetch: str  # "archived", "no text", "failed", "not checked" (offline), "not fetched", "not a web link"
    reason: str | None  # failure reason of the last fetch, if it failed
    detail: str
    has_text: bool
    kind: str | None
    extra_links: tuple[str, ...] = ()
    places: list[int] = field(default_factory=list)
    checkbox: bool = True  # False: listed without a checkbox (unread until `rq done` adds one)
    changed_since_read: bool = False  # marked read, and its page changed since (rq.report.changes)

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
    elif last.outcome == "failed" and last.reason == OFFLINE:
        fetch, reason, detail = "not checked", last.reason, last.detail  # the link may well be fine
    elif last.outcome == "failed":
        fetch, reason, detail = "failed", last.reason, last.detail
    else:
        fetch = "archived" if has_text else "no text"
        detail = (doc["detail"] if doc is not None else "") or ""
    return ResourceView(
        id=resource.id, short_id=resource.short_id, state=resource.state, section=resource.section,
        title=resource.title, url=resource.url, note=resource.note, line_no=resource.line_no, fetch=fetch, reason=reason,
        detail=detail, has_text=has_text, kind=doc["kind"] if doc is not None else None,
        extra_links=resource.extra_links, places=[p.line_no for p in resource.places],
        checkbox=resource.has_checkbox,
    )
