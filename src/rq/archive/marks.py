"""`rq done` / `rq todo`: tick or untick an item in the queue file, and log when in the archive."""

from __future__ import annotations

from rq.archive.db import open_archive
from rq.errors import RqError
from rq.paths import locate
from rq.queue.edit import EditResult, set_state


def mark(settings, ref: str, state: str) -> EditResult:
    """`rq done` / `rq todo`: edit the user's queue file and log a timestamped read event."""
    location = locate(settings)
    if location.embedded:
        raise RqError("the embedded sample queue is read-only; copy it and pass --queue "
                      f"(cp {location.queue_path} ~/reading.md && rq done {ref} --queue ~/reading.md)")
    result = set_state(location.queue_path, ref, state)
    if result.changed:
        archive = open_archive(location.index_dir, location.queue_key)
        try:
            archive.add_read_event(result.resource.id, state)
        finally:
            archive.close()
    return result
