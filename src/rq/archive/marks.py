"""`rq done` / `rq todo`: tick or untick an item in the queue file, and log when in the archive.

The queue file is the user's; the archive only remembers when each item was read (what
`rq next` learns from). So the archive is opened before the file is touched: an index
folder that belongs to another queue stops the command with the file as it was, while a
folder that cannot take the log (read-only, a file in its place, a full disk) costs only
the log, and a warning says so.
"""

from __future__ import annotations

import sqlite3

from rq.archive.db import Archive, open_archive, open_archive_to_read
from rq.errors import ArchiveError, RqError
from rq.paths import Location, locate
from rq.queue.edit import EditResult, set_state


def mark(settings, ref: str, state: str) -> EditResult:
    """`rq done` / `rq todo`: edit the user's queue file and log a timestamped read event."""
    location = locate(settings)
    if location.embedded:
        raise RqError("the embedded sample queue is read-only; copy it and pass --queue "
                      f"(cp {location.queue_path} ~/reading.md && rq done {ref} --queue ~/reading.md)")
    archive, why = _archive_to_log(location)
    try:
        result = set_state(location.queue_path, ref, state,
                           boxes_rq_added=_boxes_added_by(archive) if archive is not None else None)
        if result.changed:
            if archive is not None:
                why = _log(archive, result)
            if why:
                result.warnings.append(f"the read was not recorded in the archive ({why}); "
                                       "rq next will not know when you read it")
    finally:
        if archive is not None:
            archive.close()
    return result


def marked(result: EditResult) -> dict:
    """What `rq done`/`rq todo --json` print and `rq serve`'s POST /api/done and /api/todo return."""
    res = result.resource
    return {"id": res.id, "short_id": res.short_id, "title": res.title, "state": result.state,
            "changed": result.changed, "lines": result.lines}


def _archive_to_log(location: Location) -> tuple[Archive | None, str | None]:
    """The archive to log the read in, or None and why it cannot be written. Raises the archive's
    own error, before the file is touched, when the folder belongs to another queue."""
    try:
        return open_archive(location.index_dir, location.queue_key), None
    except (ArchiveError, OSError, sqlite3.Error) as exc:
        why = str(exc)
    _refuse_another_queues_folder(location)
    return None, why


def _refuse_another_queues_folder(location: Location) -> None:
    """Raise when the index folder, read without writing anything, belongs to another queue (or a
    newer rq). A folder that cannot even be read cannot tell, and then the edit goes ahead."""
    try:
        archive = open_archive_to_read(location.index_dir, location.queue_key)
    except (OSError, sqlite3.Error):
        return
    archive.close()


def _boxes_added_by(archive: Archive):
    """Which places of a resource rq gave a checkbox; none when the archive cannot say."""
    def boxes(resource_id: str) -> set[int]:
        try:
            return archive.boxes_added(resource_id)
        except sqlite3.Error:
            return set()
    return boxes


def _log(archive: Archive, result: EditResult) -> str | None:
    """Record the read event, and the checkboxes rq added or took away; None when it was, else why not."""
    resource_id = result.resource.id
    try:
        archive.add_read_event(resource_id, result.state)
        if result.boxes_added:
            archive.add_boxes(resource_id, result.boxes_added)
        if result.boxes_removed:
            archive.forget_boxes(resource_id, result.boxes_removed)
    except (ArchiveError, OSError, sqlite3.Error) as exc:
        return str(exc)
    return None
