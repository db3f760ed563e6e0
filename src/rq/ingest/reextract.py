"""Archived bodies extracted again when the extractor has changed since they were stored.

Extraction improves (rq.extract.EXTRACTOR_VERSION says when): a page fetched last week keeps
its raw bytes in raw/, so its text is brought up to date from them, without a request, before
the run fetches anything. The body is the same, so this is neither a fetch nor a "changed
since read" event; the index picks up the new text by its hash like any other change.
"""

from __future__ import annotations

from typing import Callable

from rq.archive.db import Archive
from rq.extract.extract import EXTRACTOR_VERSION
from rq.settings import Settings

Progress = Callable[[int, int, str], None]


def reextract_stale(archive: Archive, pool, settings: Settings, in_queue: set[str],
                    progress: Progress | None = None) -> int:
    """Extract again every document of the queue made by an older extractor; how many were."""
    stale = [entry for entry in archive.stale_documents(EXTRACTOR_VERSION) if entry[0] in in_queue]
    for done, (resource_id, body_sha, record) in enumerate(stale, 1):
        body = archive.body_path(body_sha).read_bytes()
        doc = pool.extract(body, record.content_type, record.final_url or record.url, settings)
        archive.put_document(resource_id, body_sha, doc, extractor=EXTRACTOR_VERSION)
        if progress:
            progress(done, len(stale), f"extracting again (rq's extractor improved): {record.url}")
    return len(stale)
