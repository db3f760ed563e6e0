"""`rq health`: every resource whose last fetch failed (or gave no text), by reason, with
whether an archived copy survives, and the pages changed since they were marked read.
A link last tried while the machine looked offline is not dead: it is reported as not
checked, apart from the failures."""

from __future__ import annotations

from rq.archive.records import OFFLINE, SOFT_404, SOFT_404_SIGNALS
from rq.archive.session import open_to_read
from rq.queue.urls import is_web_url
from rq.report.changes import changed_since_read

NOT_TEXT_PROBLEMS = frozenset({"not_text", "no_text"})


def _signal(reason: str | None, detail: str) -> str | None:
    if reason != SOFT_404:
        return None
    head = detail.split(":", 1)[0]
    return head if head in SOFT_404_SIGNALS else None


def health_report(settings) -> dict:
    """Every resource whose last fetch failed (or gave no text), by reason, and the pages changed
    since they were marked read. JSON-serialisable; times are seconds since the epoch."""
    location, queue, archive = open_to_read(settings)
    try:
        last, docs, last_ok = archive.last_fetches(), archive.documents(), archive.last_ok_times()
        changed = changed_since_read(archive, queue)
    finally:
        archive.close()
    web = [r for r in queue.resources if is_web_url(r.url)]
    tried = [r for r in web if r.id in last]
    offline = [_entry(r, last[r.id], docs.get(r.id), last_ok.get(r.id)) for r in tried
               if last[r.id].reason == OFFLINE]
    fetched = [r for r in tried if last[r.id].reason != OFFLINE]
    problems = [entry for entry in (_problem(r, last[r.id], docs.get(r.id), last_ok.get(r.id)) for r in fetched)
                if entry is not None]
    by_reason: dict[str, list[dict]] = {}
    for entry in problems:
        by_reason.setdefault(entry["reason"], []).append(entry)
    return {
        "queue": str(location.queue_path),
        "index": str(location.index_dir),
        "resources": len(queue.resources),
        "web_links": len(web),
        "fetched": len(fetched),  # tried and answered for: the last try was not offline
        "working": len(fetched) - len(problems),
        "not_fetched": len(web) - len(tried),
        "failing": len(problems),
        "not_checked": {OFFLINE: offline} if offline else {},  # last tried offline: not dead, not known alive
        "counts": {reason: len(items) for reason, items in sorted(by_reason.items())},
        "by_reason": dict(sorted(by_reason.items())),
        "changed_since_read": changed,
    }


def _entry(resource, record, doc, last_ok: float | None) -> dict:
    """What the report says of one resource and its last fetch."""
    has_copy = doc is not None and bool(doc["text"].strip())
    return {
        "id": resource.id, "short_id": resource.short_id, "title": resource.title, "url": resource.url,
        "section": resource.section, "state": resource.state, "line_no": resource.line_no,
        "http_status": record.http_status, "failed_at": record.at, "last_ok_at": last_ok,
        "archived_copy": has_copy, "archived_at": doc["extracted_at"] if has_copy else None,
        "final_url": record.final_url, "detail": record.detail,
    }


def _problem(resource, record, doc, last_ok: float | None) -> dict | None:
    """The report entry of a resource whose last fetch failed or gave no text; None when it is fine."""
    entry = _entry(resource, record, doc, last_ok)
    if record.outcome == "failed":
        return {**entry, "reason": record.reason or "error", "signal": _signal(record.reason, record.detail),
                "detail": record.detail, "problem": None}
    if doc is not None and (doc["problem"] or not doc["text"].strip()):
        problem = doc["problem"] or "no_text"
        return {**entry, "reason": "not_text" if problem in NOT_TEXT_PROBLEMS else "extract_failed",
                "signal": None, "detail": doc["detail"] or "no readable text", "problem": problem}
    return None
