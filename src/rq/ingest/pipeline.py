"""Ingest: queue -> fetch -> extract -> archive, resumable and incremental.

Each link is stored in its own transaction as soon as it is fetched, so a run
killed midway keeps what it did and the next run picks up the rest. A link
fetched within the freshness window is not fetched again; a body whose hash is
already archived for that resource is not extracted again; a link that fails
keeps its last good document, so search still works after the link dies. A page
answered 200 that is really the site's "not found" page fails as ``soft_404``, and
a page already read whose text changed is noted (rq.ingest.changes).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable

from rq.archive.db import Archive, open_archive, sha256_hex
from rq.archive.lock import writer_lock
from rq.archive.records import PERMANENT_REASONS, SOFT_404, FetchRecord
from rq.archive.session import sync_queue
from rq.ingest.changes import note_change
from rq.ingest.soft404 import SoftNotFound
from rq.paths import locate
from rq.queue.model import Queue
from rq.queue.parse import read_queue
from rq.queue.urls import fetch_url, is_web_url
from rq.settings import Settings

Progress = Callable[[int, int, str], None]


@dataclass
class IngestSummary:
    queue: str
    index: str
    resources: int = 0
    added: int = 0
    removed: int = 0
    fresh: int = 0  # skipped: fetched recently
    fetched: int = 0  # new or changed content, extracted
    unchanged: int = 0  # 304 or identical body: nothing extracted
    not_web: int = 0
    failed: Counter = field(default_factory=Counter)
    no_text: int = 0
    failures: list[dict] = field(default_factory=list)
    changed_since_read: int = 0  # pages marked read whose text changed in this run (see rq.ingest.soft404)
    changes: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def did_something(self) -> bool:
        return self.resources == 0 or bool(self.fetched or self.unchanged or self.fresh or self.not_web)

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["failed"] = dict(self.failed)
        return data


def _needs_fetch(last: FetchRecord | None, settings: Settings, now: float) -> bool:
    if settings.refresh or last is None:
        return True
    age = now - last.at
    fresh = age < settings.freshness_days * 86400
    if last.outcome in ("ok", "not_modified"):
        return not fresh
    return not (fresh and last.reason in PERMANENT_REASONS)


def plan_fetches(archive: Archive, queue: Queue, settings: Settings, summary: IngestSummary):
    from rq.fetch.client import FetchRequest

    now = time.time()
    last = archive.last_fetches()
    requests = []
    for resource in queue.resources:
        if not is_web_url(resource.url):
            summary.not_web += 1
            continue
        if not _needs_fetch(last.get(resource.id), settings, now):
            summary.fresh += 1
            continue
        good = archive.last_fetch(resource.id, ok_only=True)
        has_doc = archive.document(resource.id) is not None
        requests.append(FetchRequest(
            url=fetch_url(resource.url),
            etag=good.etag if good and has_doc and not settings.refresh else None,
            last_modified=good.last_modified if good and has_doc and not settings.refresh else None,
            key=resource.id,
        ))
    return requests


def ingest(settings: Settings, progress: Progress | None = None) -> IngestSummary:
    location = locate(settings)
    queue = read_queue(location.queue_path)
    started = time.monotonic()
    summary = IngestSummary(queue=str(location.queue_path), index=str(location.index_dir),
                            resources=len(queue.resources))
    with writer_lock(location.index_dir):
        archive = open_archive(location.index_dir, location.queue_key)
        try:
            summary.added, summary.removed = sync_queue(archive, queue)
            requests = plan_fetches(archive, queue, settings, summary)
            _fetch_and_store(archive, requests, settings, summary, progress)
        finally:
            archive.close()
    shown = {r.id: r.short_id for r in queue.resources}
    for entry in summary.failures + summary.changes:
        entry["short_id"] = shown.get(entry["id"], entry["id"][:8])
    summary.seconds = time.monotonic() - started
    return summary


def _fetch_and_store(archive: Archive, requests: list, settings: Settings,
                     summary: IngestSummary, progress: Progress | None) -> None:
    from rq.extract.worker import ExtractorPool
    from rq.fetch.client import fetch_all

    total = len(requests)
    if progress:
        progress(0, total, "fetching")
    # One worker: results are stored one by one in this thread anyway.
    with ExtractorPool(size=1) as pool:
        checker = SoftNotFound(settings, pool)
        for done, result in enumerate(fetch_all(requests, settings), start=1):
            store_result(archive, result, pool, settings, summary, checker)
            if progress:
                progress(done, total, result.request.url)


def _record(result, body_sha: str | None) -> FetchRecord:
    return FetchRecord(
        resource_id=result.request.key, url=result.request.url, at=result.fetched_at,
        outcome=result.outcome, reason=result.reason, detail=result.detail,
        http_status=result.http_status, final_url=result.final_url, content_type=result.content_type,
        etag=result.etag, last_modified=result.last_modified, body_sha=body_sha,
        bytes=len(result.body) if result.body is not None else None,
        attempts=result.attempts, elapsed=result.elapsed,
    )


def _failed(summary: IngestSummary, resource_id: str, url: str, reason: str, detail: str) -> None:
    summary.failed[reason] += 1
    summary.failures.append({"id": resource_id, "url": url, "reason": reason, "detail": detail})


def _soft_404(archive: Archive, result, body_sha: str, detail: str, summary: IngestSummary) -> None:
    """A page answered 200 that is really "not found": a failed fetch whose body stays archived
    (fetches.body_sha), while the resource keeps its last good document."""
    archive.add_fetch(replace(_record(result, body_sha), outcome="failed", reason=SOFT_404, detail=detail))
    _failed(summary, result.request.key, result.request.url, SOFT_404, detail)


def store_result(archive: Archive, result, pool, settings: Settings, summary: IngestSummary,
                 checker=None) -> None:
    """Archive one fetch result. ``checker`` (a rq.ingest.soft404.SoftNotFound) vets pages answered 200."""
    resource_id = result.request.key
    if result.outcome == "failed":
        archive.add_fetch(_record(result, None))
        _failed(summary, resource_id, result.request.url, result.reason, result.detail)
        return
    if result.outcome == "not_modified":
        previous = archive.document(resource_id)
        archive.add_fetch(_record(result, previous["body_sha"] if previous else None))
        summary.unchanged += 1
        return
    body_sha = archive.put_body(result.body)
    previous = archive.document(resource_id)
    if previous is not None and previous["body_sha"] == body_sha:
        verdict = checker and checker.check(result, previous["kind"], previous["text"], previous["title"],
                                            previous["charset"])
        if verdict:
            _soft_404(archive, result, body_sha, verdict, summary)
            return
        archive.add_fetch(_record(result, body_sha))
        summary.unchanged += 1
        return
    doc = pool.extract(result.body, result.content_type, result.final_url or result.request.url, settings)
    verdict = checker and checker.check(result, doc.kind, doc.text, doc.title, doc.charset)
    if verdict:
        _soft_404(archive, result, body_sha, verdict, summary)
        return
    with archive.transaction():
        archive.put_document(resource_id, body_sha, doc, _record(result, body_sha))
        text_sha = sha256_hex(doc.text.encode("utf-8", "surrogatepass"))
        score = note_change(archive, resource_id, previous, doc.text, text_sha, body_sha)
    summary.fetched += 1
    if score is not None:
        summary.changed_since_read += 1
        summary.changes.append({"id": resource_id, "url": result.request.url, "similarity": round(score, 3)})
    if not doc.text.strip():
        summary.no_text += 1
