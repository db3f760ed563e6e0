"""One writer per index folder, and the small writes a read command may make when no one writes.

The lock is an ``flock`` on ``.lock`` in the index folder. A writer (ingest, index, the
model export into it) holds it for its whole run and is the only process that sweeps
the temp files a killed run left, so no process ever deletes a file another is still
writing. A read command writes nothing, except what it can write while the lock is
free at that moment (the queue's parse cache, heading vectors): it never waits for it.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rq.errors import ArchiveError
from rq.files import remove_orphans

LOCK_FILE = ".lock"


@contextmanager
def writer_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """One writer per index folder. Leftover temp files are swept only by the lock holder,
    so a second process never deletes a file the first is still writing."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ArchiveError(f"another rq process is writing {folder}; try again when it ends") from None
        try:
            remove_orphans(folder)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def try_writer_lock(folder: Path) -> Iterator[bool]:
    """Hold the writer lock if it is free now; yields whether it is held. Sweeps nothing (the
    holder is a read command making one small write, not a writer recovering from a crash)."""
    import fcntl

    try:
        fh = open(folder / LOCK_FILE, "a+b")
    except OSError:
        yield False  # no folder, or one we cannot write: then there is nothing to write either
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
