"""Durable file writes shared by every part that writes: the archive, the index and the queue edit.

A file is never written in place: the bytes go to a temporary name in the same folder,
are fsynced, and the temporary file is renamed over the target, so a reader (or a run
killed at any moment) sees the old content or the new, never a mix. Temporary names
start with ``TMP_PREFIX``, so leftovers of a killed run can be recognised and swept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".rq-tmp-"


def atomic_write_bytes(path: Path, data: bytes | list[bytes], *, prefix: str = TMP_PREFIX) -> None:
    """Write ``data`` (bytes, or a list of chunks) to ``path`` through a temp file, fsync and rename.

    The new file keeps the mode of the file it replaces; a new file gets 0666 less the umask
    (mkstemp's 0600 would hide a map or an export from the user's other tools). ``prefix`` names
    the temp file, for a caller that sweeps only its own leftovers.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _mode_for(path))
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _mode_for(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return new_file_mode()


def new_file_mode() -> int:
    """0666 less the process umask: the mode a plain ``open(path, "w")`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_orphans(folder: Path, prefix: str = TMP_PREFIX) -> int:
    """Delete the temp files a killed run left under ``folder``; they never sit under a final name.
    Call it only while holding the lock of whoever writes there."""
    count = 0
    if folder.is_dir():
        for tmp in folder.rglob(f"{prefix}*"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count
