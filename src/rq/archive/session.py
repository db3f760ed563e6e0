"""A queue's archive, opened: the shared start of every command.

``open_for`` finds the queue and its index folder, parses the queue (or reads the parse
back from the index folder while the file is unchanged) and opens the archive for a
command that writes, which holds the folder's writer lock. ``open_to_read`` does the same
for a command that only reads, and writes nothing unless the lock is free at that moment.
``sync_queue`` mirrors the parsed queue into the archive's resources table (writers only).
"""

from __future__ import annotations

from rq.archive.db import Archive, open_archive, open_archive_to_read
from rq.archive.lock import try_writer_lock
from rq.archive.queue_cache import queue_digest, read_queue_cached
from rq.paths import Location, locate
from rq.queue.model import Queue, Resource
from rq.queue.urls import fetch_url
from rq.settings import Settings


def resource_row(resource: Resource) -> dict:
    return {
        "id": resource.id, "url": resource.url, "fetch_url": fetch_url(resource.url),
        "title": resource.title, "note": resource.note, "section": resource.section,
        "state": resource.state, "line_no": resource.line_no, "extra_links": resource.extra_links,
    }


def sync_queue(archive: Archive, queue: Queue) -> tuple[int, int]:
    """Mirror the parsed queue into the archive's resources table: (added, removed). Call it
    under the writer lock. Skipped when the table already mirrors these very bytes."""
    digest = queue_digest(queue.raw)
    if archive.meta("queue_synced") == digest:
        (count,) = archive.conn.execute("SELECT COUNT(*) FROM resources WHERE in_queue = 1").fetchone()
        if count == len(queue.resources):
            return 0, 0
    with archive.transaction():
        changed = archive.sync_resources([resource_row(r) for r in queue.resources])
        archive.set_meta("queue_synced", digest)
    return changed


def open_for(settings: Settings, create: bool = True) -> tuple[Location, Queue, Archive]:
    """Parse the queue and open its archive, for a command holding the folder's writer lock."""
    location = locate(settings)
    queue = read_queue_cached(location.queue_path, location.index_dir, remember=True)
    archive = open_archive(location.index_dir, location.queue_key, create=create)
    return location, queue, archive


def open_to_read(settings: Settings) -> tuple[Location, Queue, Archive]:
    """Parse the queue and open its archive for a command that only reads. The parse is
    remembered in the index folder only while no other rq process is writing there."""
    location = locate(settings)
    with try_writer_lock(location.index_dir) as free:
        queue = read_queue_cached(location.queue_path, location.index_dir, remember=free)
    archive = open_archive_to_read(location.index_dir, location.queue_key)
    return location, queue, archive
