"""One writer per index folder, and the small writes a read command may make when no one writes.

The lock is an ``flock`` on ``.lock`` in the index folder. A writer (ingest, index, the
model export into it) holds it for its whole run and is the only process that sweeps
the temp files a killed run left, so no process ever deletes a file another is still
writing. A read command writes nothing, except what it can write while the lock is
free at that moment (the queue's parse cache, heading vectors): it never waits for it.
Whoever holds the lock writes its process id into the file, so a writer that has to
wait can say whom it waits for.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rq.errors import ArchiveError
from rq.files import remove_orphans

LOCK_FILE = ".lock"


@contextmanager
def writer_lock(folder: Path, wait: bool = True, notice: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writer per index folder. Leftover temp files are swept only by the lock holder,
    so a second process never deletes a file the first is still writing. ``notice`` hears,
    once, that this process waits for another (and which), so a wait is never silent."""
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / LOCK_FILE, "a+b")
    except OSError as exc:  # a read-only folder (or mount): say so, naming it
        raise ArchiveError(f"cannot write the index folder {folder} ({exc.strerror}); this command stores "
                           "its work there (read commands such as search, ls and show still answer)") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise ArchiveError(f"another rq process is writing {folder}; try again when it ends") from None
            if notice is not None:
                notice(f"waiting for {_holder(fh)} to finish with {folder}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        _sign(fh)
        try:
            remove_orphans(folder)
            yield
        finally:
            _unsign(fh)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holder(fh) -> str:
    """Who holds the lock, as the holder wrote it: "another rq (pid 1234)"."""
    try:
        fh.seek(0)
        pid = int(fh.read(32).strip() or 0)
    except (OSError, ValueError):
        pid = 0
    return f"another rq (pid {pid})" if pid > 0 else "another rq process"


def _sign(fh) -> None:
    """Write this process's id into the lock file (best effort: it only serves a waiter's message)."""
    try:
        fh.truncate(0)
        fh.write(str(os.getpid()).encode())
        fh.flush()
    except OSError:
        pass


def _unsign(fh) -> None:
    try:
        fh.truncate(0)
        fh.flush()
    except OSError:
        pass


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
        _sign(fh)
        try:
            yield True
        finally:
            _unsign(fh)
            fcntl.flock(fh, fcntl.LOCK_UN)
