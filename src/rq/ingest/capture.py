"""One link fetched now, for `rq add`: the same guard, limits, soft-404 check and archive as an
ingest run, so what `rq add` learns of a page is what `rq ingest` would have stored.

The link need not be in the queue yet (a dry run files nothing): its fetch and text are stored
under the id it will have, and the archive is a cache, so the ingest that follows finds it fresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rq.archive.db import open_archive
from rq.archive.lock import writer_lock
from rq.ingest.pipeline import Notice, _fetch_and_store, _needs_fetch
from rq.ingest.store import IngestSummary
from rq.paths import locate
from rq.queue.ids import resource_id
from rq.queue.urls import fetch_url, normalize_url
from rq.settings import Settings


@dataclass
class Captured:
    url: str
    id: str
    title: str  # the page's own title; "" when it has none or could not be fetched
    text: str  # the page's main text; "" when it could not be fetched
    fetched: bool  # fetched in this call (False: the archive's copy was fresh, or the fetch failed)
    failure: str = ""  # why the page could not be had: "not_found: HTTP 404 ..."; "" when it was


def capture(settings: Settings, url: str, notice: Notice | None = None) -> Captured:
    """Fetch, extract and archive ``url`` unless the archive holds a fresh copy; its title and text."""
    from rq.fetch.client import FetchRequest

    location = locate(settings)
    rid = resource_id(url, normalize_url(url))
    summary = IngestSummary(queue=str(location.queue_path), index=str(location.index_dir), resources=1)
    with writer_lock(location.index_dir, notice=notice):
        archive = open_archive(location.index_dir, location.queue_key)
        try:
            last = archive.last_fetch(rid)
            fetched = _needs_fetch(last, settings, time.time())
            if fetched:
                _fetch_and_store(archive, [FetchRequest(url=fetch_url(url), key=rid)], settings, summary, None, {rid})
                last = archive.last_fetch(rid)
            doc = archive.document(rid)
        finally:
            archive.close()
    failure = ""
    if last is not None and last.outcome not in ("ok", "not_modified"):
        failure = f"{last.reason}: {last.detail}" if last.detail else str(last.reason)
    if doc is None:
        return Captured(url, rid, "", "", False, failure or "no text could be extracted")
    return Captured(url, rid, doc["title"] or "", doc["text"] or "", fetched and not failure, failure)
