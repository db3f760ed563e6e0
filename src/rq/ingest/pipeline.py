"""Ingest: queue -> fetch -> extract -> archive, resumable and incremental.

Each link is stored in its own transaction as soon as it is fetched (rq.ingest.store), so
a run killed midway keeps what it did and the next run picks up the rest. A link fetched
within the freshness window is not fetched again, unless it failed because of a setting
that has changed since (rq.ingest.policy); a body whose hash is already archived for that
resource is not extracted again; a link that fails keeps its last good document, so search
still works after the link dies. A page answered 200 that is really the site's "not found"
page fails as ``soft_404``, a page already read whose text changed is noted
(rq.ingest.changes), and a run that reaches no server at all records its links as not
checked (``offline``) rather than dead (rq.ingest.offline).
"""

from __future__ import annotations

import time
from typing import Callable

from rq.archive.db import Archive, open_archive
from rq.archive.lock import writer_lock
from rq.archive.records import PERMANENT_REASONS, FetchRecord
from rq.archive.session import sync_queue
from rq.ingest.policy import policy_of, setting_changed
from rq.ingest.reextract import reextract_stale
from rq.ingest.store import IngestSummary, RunStore
from rq.paths import locate
from rq.queue.model import Queue
from rq.queue.parse import read_queue
from rq.queue.urls import fetch_url, is_web_url
from rq.settings import Settings

Progress = Callable[[int, int, str], None]
Notice = Callable[[str], None]

__all__ = ["IngestSummary", "ingest", "plan_fetches"]


def _needs_fetch(last: FetchRecord | None, settings: Settings, now: float) -> bool:
    if settings.refresh or last is None:
        return True
    age = now - last.at
    fresh = age < settings.freshness_days * 86400
    if last.outcome in ("ok", "not_modified"):
        return not fresh
    if setting_changed(last, settings):
        return True  # e.g. refused as a private address, and --allow-private given now
    return not (fresh and last.reason in PERMANENT_REASONS)


def plan_fetches(archive: Archive, queue: Queue, settings: Settings, summary: IngestSummary,
                 only_new: bool = False):
    from rq.fetch.client import FetchRequest

    now = time.time()
    last = archive.last_fetches()
    requests = []
    for resource in queue.resources:
        if not is_web_url(resource.url):
            summary.not_web += 1
            continue
        if (only_new and resource.id in last) or not _needs_fetch(last.get(resource.id), settings, now):
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


def ingest(settings: Settings, progress: Progress | None = None, notice: Notice | None = None,
           only_new: bool = False) -> IngestSummary:
    """Fetch, extract and archive the queue's stale links. ``notice`` hears what the run waits
    for before it starts (another rq process writing the same index). ``only_new``: only links
    never fetched (what `rq watch` does on each save: a dead link is not retried at every save)."""
    location = locate(settings)
    queue = read_queue(location.queue_path)
    started = time.monotonic()
    summary = IngestSummary(queue=str(location.queue_path), index=str(location.index_dir),
                            resources=len(queue.resources), engine=settings.engine)
    with writer_lock(location.index_dir, notice=notice):
        archive = open_archive(location.index_dir, location.queue_key)
        try:
            summary.added, summary.removed = sync_queue(archive, queue)
            requests = plan_fetches(archive, queue, settings, summary, only_new)
            run = _fetch_and_store
            if settings.engine == "ray":
                from rq.ingest.on_ray import fetch_and_store as run
            run(archive, requests, settings, summary, progress, {r.id for r in queue.resources})
        finally:
            archive.close()
    shown = {r.id: r.short_id for r in queue.resources}
    for entry in summary.failures + summary.changes:
        entry["short_id"] = shown.get(entry["id"], entry["id"][:8])
    summary.seconds = time.monotonic() - started
    return summary


def _fetch_and_store(archive: Archive, requests: list, settings: Settings, summary: IngestSummary,
                     progress: Progress | None, in_queue: set[str]) -> None:
    """Fetch the links and store each result as it arrives. A made-up sibling a page needs
    (rq.ingest.soft404) joins the same fetch_all run, so the probes of many hosts run at once
    within the per-host limits and deadlines, instead of one after another."""
    from rq.extract.worker import ExtractorPool
    from rq.fetch.client import fetch_all

    total = len(requests)
    probes: list = []  # requests for fetch_all to start while it runs
    done = 0
    # One worker: results are stored one by one in this thread anyway.
    with ExtractorPool(size=1) as pool:
        # First, so that a body fetched again unchanged below finds its text up to date.
        summary.reextracted = reextract_stale(archive, pool, settings, in_queue, progress)
        if progress:
            progress(0, total, "fetching")
        store = RunStore(archive, pool, settings, summary, policy_of(settings))
        for result in fetch_all(requests, settings, added=probes):
            if store.checker.is_probe(result):
                store.probed(result)
                continue
            done += 1
            probe = store.take(result)
            if probe is not None:
                probes.append(probe)
            if progress:
                last_waits = done == total and store.pages_waiting
                progress(done, total, "checking hosts for a catch-all error page" if last_waits else result.request.url)
        store.finish()
