"""Durable file writes shared by every part that writes: the archive, the index and the queue edit.

A file is never written in place: the bytes go to a temporary name in the same folder,
are fsynced, and the temporary file is renamed over the target, so a reader (or a run
killed at any moment) sees the old content or the new, never a mix. Temporary names
start with ``TMP_PREFIX``, so leftovers of a killed run can be recognised and swept.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

TMP_PREFIX = ".rq-tmp-"
# A write refused for want of room: a full disk, a full quota, a file size limit (RLIMIT_FSIZE).
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of room (the caller says so in one line)."""
    return isinstance(exc, OSError) and exc.errno in _NO_ROOM


def atomic_write_bytes(path: Path, data: bytes | list[bytes], *, prefix: str = TMP_PREFIX) -> None:
    """Write ``data`` (bytes, or a list of chunks) to ``path`` through a temp file, fsync and rename.

    The new file keeps the mode of the file it replaces; a new file gets 0666 less the umask
    (mkstemp's 0600 would hide a map or an export from the user's other tools). ``prefix`` names
    the temp file, for a caller that sweeps only its own leftovers.
    """
    path = Path(path)
    tmp = write_temp(path, data, prefix=prefix)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_temp(path: Path, data: bytes | list[bytes], *, prefix: str = TMP_PREFIX) -> Path:
    """The first half of an atomic write: ``data`` in a new, fsynced temp file beside ``path``, with
    the mode ``path`` has. The caller renames it over ``path``, or unlinks it."""
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def replace_keeping_old(tmp: Path, path: Path, still_wanted: Callable[[], bool] | None = None) -> Path | None:
    """Rename the temp file ``tmp`` over ``path`` and return where the file it replaced now is,
    so a caller can see whether another program saved ``path`` at the last moment (the caller
    unlinks that file when done with it).

    On Linux the two names are swapped in one step (renameat2 with RENAME_EXCHANGE), so what is
    returned is exactly the file ``path`` held at the instant of the swap. Elsewhere the old file
    is hard-linked aside first, which leaves the window of those two system calls open. ``path``
    must exist (FileNotFoundError otherwise, and nothing is changed).

    ``still_wanted``, when given, is asked right before the rename, with everything else done:
    when it says no, nothing is renamed and None is returned.
    """
    _renameat2()  # loaded before the last look, not between it and the rename
    if still_wanted is not None and not still_wanted():
        return None
    if _exchange(tmp, path):
        fsync_dir(path.parent)
        return tmp
    aside = tmp.with_name(tmp.name + "-replaced")  # the temp file's prefix: swept like one
    os.link(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return aside


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two names atomically; False, having changed nothing, where the system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    import ctypes

    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):  # a filesystem or kernel without it
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.lru_cache(maxsize=1)
def _renameat2():
    """glibc's renameat2 (2.28 and later), or None. ctypes loads only for a write that swaps."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


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


def write_for_viewing(text: str, name_hint: str) -> Path:
    """``text`` in a new UTF-8 ``.txt`` file in the temporary folder, readable by the user only,
    for a browser or viewer to open after rq has exited (so it is not removed)."""
    safe = "".join(c for c in name_hint if c.isalnum() or c in "-_")[:40] or "text"
    fd, name = tempfile.mkstemp(prefix=f"rq-{safe}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(text)
    return Path(name)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What says a file changed, from one stat (the file is never opened): its modification time,
    size and inode (an editor that saves by rename gives the file a new inode). None when missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def wait_for_settled_change(path: Path, since: tuple | None, *, settle_s: float = 1.0, poll_s: float = 0.25,
                            stop=None) -> tuple | None:
    """Block until ``path``'s stamp differs from ``since`` and then holds still for ``settle_s``: an
    editor's save is often several writes (truncate, write, rename, a backup), and acting on the
    first would read half a file and run again at once. Returns the settled stamp, or None when
    ``stop`` (a threading.Event) is set. Only stats the file; it is never held open."""
    import time

    def stopped(seconds: float) -> bool:
        if stop is None:
            time.sleep(seconds)
            return False
        return stop.wait(seconds)

    stamp = file_stamp(path)
    while True:
        while stamp == since:
            if stopped(poll_s):
                return None
            stamp = file_stamp(path)
        changed_at = time.monotonic()
        while time.monotonic() - changed_at < settle_s:
            if stopped(min(poll_s, settle_s)):
                return None
            now = file_stamp(path)
            if now != stamp:
                stamp, changed_at = now, time.monotonic()
        if stamp is not None:
            return stamp
        since = None  # the file is gone (a rename in progress, or deleted): wait for it to come back
