"""SQLite connections to an archive: for writing, for reading a folder that may be read-only,
and what a failed write means.

A read command must answer from a folder it cannot write (a shared or backed-up library,
a read-only mount), and a write that finds no room must end in one clear line, not in
SQLite's "database or disk is full" (or "disk I/O error", which is what a quota or a file
size limit gives) with a traceback.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from rq.errors import ArchiveError, DiskFullError
from rq.files import is_disk_full


def connect_to_read(db_path: Path) -> tuple[sqlite3.Connection, bool]:
    """A connection for reading, and whether it is read-only. Read-write when the folder and the
    database can be written (WAL needs its -shm file). Otherwise mode=ro, which reads a WAL
    database only while its -shm file exists (left by a writer that was killed, say); then
    immutable=1, which needs no -shm: a cleanly closed WAL database has everything in the main
    file, and in a folder no one can write nothing changes under the reader."""
    uri = db_path.absolute().as_uri()
    writable = os.access(db_path.parent, os.W_OK) and os.access(db_path, os.W_OK)
    attempts = ([(str(db_path), False, False)] if writable else []) + [
        (f"{uri}?mode=ro", True, True), (f"{uri}?immutable=1", True, True)]
    for target, as_uri, read_only in attempts:
        conn = None
        try:
            conn = connect(target, uri=as_uri)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file (and its WAL) now
            return conn, read_only
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
            failure = exc
    raise failure


# SQLite's primary result codes for a full disk and for a failed read or write: writing past
# a quota or a file size limit gives the latter (SQLite says "full" only for ENOSPC).
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


def out_of_room(exc: sqlite3.Error, folder: Path) -> DiskFullError | None:
    """The one-line error for a write the disk had no room for, or None for another error."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == _SQLITE_FULL:
        return DiskFullError("the archive", folder)
    if code == _SQLITE_IOERR:
        return DiskFullError("the archive", folder, detail=str(exc))
    return None


def cannot_open(exc: OSError | sqlite3.Error, folder: Path) -> ArchiveError:
    """The one-line error for an archive that could not be opened (or created) for writing."""
    if is_disk_full(exc) or isinstance(exc, sqlite3.Error) and out_of_room(exc, folder) is not None:
        return DiskFullError("the archive", folder)
    return ArchiveError(f"cannot open archive in {folder}: {exc}")


def connect(target, uri: bool = False) -> sqlite3.Connection:
    """rq's connection settings: autocommit (transactions are explicit), rows by name."""
    conn = sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False, uri=uri)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
