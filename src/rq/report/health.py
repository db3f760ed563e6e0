"""`rq health`: every resource whose last fetch failed (or gave no text), by reason, with
whether an archived copy survives, and the pages changed since they were marked read."""

from __future__ import annotations

from rq.archive.records import SOFT_404, SOFT_404_SIGNALS
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
        last = archive.last_fetches()
        docs = archive.documents()
        last_ok = {row[0]: row[1] for row in archive.conn.execute(
            "SELECT resource_id, MAX(at) FROM fetches WHERE outcome IN ('ok', 'not_modified') GROUP BY resource_id")}
        changed = changed_since_read(archive, queue)
    finally:
        archive.close()

    problems: list[dict] = []
    web = fetched = 0
    for resource in queue.resources:
        if not is_web_url(resource.url):
            continue
        web += 1
        record, doc = last.get(resource.id), docs.get(resource.id)
        if record is None:
            continue
        fetched += 1
        has_copy = doc is not None and bool(doc["text"].strip())
        entry = {
            "id": resource.id, "short_id": resource.short_id, "title": resource.title, "url": resource.url,
            "section": resource.section,
            "state": resource.state, "line_no": resource.line_no, "http_status": record.http_status,
            "failed_at": record.at, "last_ok_at": last_ok.get(resource.id),
            "archived_copy": has_copy, "archived_at": doc["extracted_at"] if has_copy else None,
        }
        if record.outcome == "failed":
            entry.update(reason=record.reason or "error", signal=_signal(record.reason, record.detail),
                         detail=record.detail, final_url=record.final_url, problem=None)
            problems.append(entry)
        elif doc is not None and (doc["problem"] or not doc["text"].strip()):
            problem = doc["problem"] or "no_text"
            entry.update(reason="not_text" if problem in NOT_TEXT_PROBLEMS else "extract_failed", signal=None,
                         detail=doc["detail"] or "no readable text", final_url=record.final_url,
                         problem=problem, failed_at=record.at)
            problems.append(entry)

    by_reason: dict[str, list[dict]] = {}
    for entry in problems:
        by_reason.setdefault(entry["reason"], []).append(entry)
    return {
        "queue": str(location.queue_path),
        "index": str(location.index_dir),
        "resources": len(queue.resources),
        "web_links": web,
        "fetched": fetched,
        "not_fetched": web - fetched,
        "failing": len(problems),
        "counts": {reason: len(items) for reason, items in sorted(by_reason.items())},
        "by_reason": dict(sorted(by_reason.items())),
        "changed_since_read": changed,
    }
