"""The archive: every file rq writes lives behind this module.

An index folder holds ``archive.sqlite`` (resources, fetch attempts, extracted
documents, read events, changes to pages already read, passages and the embedding
cache), ``raw/`` (fetched bodies, content-addressed by SHA-256) and the derived
search indexes. SQLite runs in WAL mode with one transaction per item, and every
other file is written to a temporary name, fsynced and renamed, so a run killed
at any moment leaves an archive the next run can use and resume.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from rq.archive.records import FetchRecord
from rq.errors import ArchiveError
from rq.files import atomic_write_bytes, remove_orphans

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, fetch_url TEXT NOT NULL, title TEXT NOT NULL,
    note TEXT NOT NULL, section TEXT NOT NULL, state TEXT, line_no INTEGER NOT NULL,
    extra_links TEXT NOT NULL, in_queue INTEGER NOT NULL DEFAULT 1,
    first_seen REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fetches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, url TEXT NOT NULL,
    at REAL NOT NULL, outcome TEXT NOT NULL, reason TEXT, detail TEXT NOT NULL,
    http_status INTEGER, final_url TEXT, content_type TEXT, etag TEXT, last_modified TEXT,
    body_sha TEXT, bytes INTEGER, attempts INTEGER, elapsed REAL
);
CREATE INDEX IF NOT EXISTS fetches_by_resource ON fetches(resource_id, at);
CREATE TABLE IF NOT EXISTS documents (
    resource_id TEXT PRIMARY KEY, body_sha TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    text_sha TEXT NOT NULL, title TEXT, author TEXT, date TEXT, pages INTEGER, charset TEXT,
    problem TEXT, detail TEXT NOT NULL, extracted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY, resource_id TEXT NOT NULL, ord INTEGER NOT NULL, source TEXT NOT NULL,
    text TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_resource ON passages(resource_id, ord);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash)
);
CREATE TABLE IF NOT EXISTS read_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, at REAL NOT NULL, state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id TEXT NOT NULL, at REAL NOT NULL,
    old_text_sha TEXT NOT NULL, new_text_sha TEXT NOT NULL, old_body_sha TEXT, new_body_sha TEXT,
    similarity REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_resource ON changes(resource_id, at);
"""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Archive:
    """One index folder. Open it with :func:`open_archive`."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder = folder
        self.conn = conn
        self.raw_dir = folder / "raw"

    # -- meta ------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.conn.in_transaction:  # nested: the outer one commits
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # -- raw bodies ------------------------------------------------------------
    def body_path(self, sha: str) -> Path:
        return self.raw_dir / sha[:2] / sha

    def put_body(self, data: bytes) -> str:
        sha = sha256_hex(data)
        path = self.body_path(sha)
        if not path.exists():
            atomic_write_bytes(path, data)
        return sha

    def get_body(self, sha: str) -> bytes | None:
        try:
            return self.body_path(sha).read_bytes()
        except FileNotFoundError:
            return None

    # -- resources -------------------------------------------------------------
    def sync_resources(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Make the resources table mirror the queue; returns (added, removed)."""
        now = time.time()
        known = {r[0] for r in self.conn.execute("SELECT id FROM resources WHERE in_queue = 1")}
        ids = {row["id"] for row in rows}
        with self.transaction() as conn:
            for row in rows:
                conn.execute(
                    """INSERT INTO resources(id, url, fetch_url, title, note, section, state, line_no,
                                             extra_links, in_queue, first_seen, updated_at)
                       VALUES (:id, :url, :fetch_url, :title, :note, :section, :state, :line_no,
                               :extra_links, 1, :now, :now)
                       ON CONFLICT(id) DO UPDATE SET url=excluded.url, fetch_url=excluded.fetch_url,
                         title=excluded.title, note=excluded.note, section=excluded.section,
                         state=excluded.state, line_no=excluded.line_no,
                         extra_links=excluded.extra_links, in_queue=1, updated_at=excluded.updated_at""",
                    {**row, "extra_links": json.dumps(list(row["extra_links"])), "now": now},
                )
            gone = known - ids
            conn.executemany("UPDATE resources SET in_queue = 0 WHERE id = ?", [(i,) for i in gone])
        return len(ids - known), len(gone)

    def resources(self, in_queue_only: bool = True) -> list[sqlite3.Row]:
        sql = "SELECT * FROM resources" + (" WHERE in_queue = 1" if in_queue_only else "")
        return list(self.conn.execute(sql + " ORDER BY line_no"))

    # -- fetches and documents -------------------------------------------------
    def last_fetch(self, resource_id: str, ok_only: bool = False) -> FetchRecord | None:
        where = "AND outcome IN ('ok', 'not_modified')" if ok_only else ""
        row = self.conn.execute(
            f"SELECT * FROM fetches WHERE resource_id = ? {where} ORDER BY at DESC, id DESC LIMIT 1",
            (resource_id,),
        ).fetchone()
        return _fetch_record(row) if row else None

    def last_fetches(self) -> dict[str, FetchRecord]:
        rows = self.conn.execute(
            """SELECT f.* FROM fetches f JOIN (SELECT resource_id, MAX(id) AS id FROM fetches
               GROUP BY resource_id) last ON f.id = last.id""")
        return {row["resource_id"]: _fetch_record(row) for row in rows}

    def fetch_history(self, resource_id: str, limit: int = 20) -> list[FetchRecord]:
        rows = self.conn.execute(
            "SELECT * FROM fetches WHERE resource_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (resource_id, limit))
        return [_fetch_record(r) for r in rows]

    def add_fetch(self, record: FetchRecord) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO fetches(resource_id, url, at, outcome, reason, detail, http_status,
                       final_url, content_type, etag, last_modified, body_sha, bytes, attempts, elapsed)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (record.resource_id, record.url, record.at, record.outcome, record.reason,
                 record.detail, record.http_status, record.final_url, record.content_type,
                 record.etag, record.last_modified, record.body_sha, record.bytes,
                 record.attempts, record.elapsed),
            )

    def document(self, resource_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM documents WHERE resource_id = ?", (resource_id,)).fetchone()

    def documents(self) -> dict[str, sqlite3.Row]:
        return {row["resource_id"]: row for row in self.conn.execute("SELECT * FROM documents")}

    def put_document(self, resource_id: str, body_sha: str, doc: Any, record: FetchRecord | None = None) -> None:
        """Store an extracted document, and its fetch record, in one transaction."""
        with self.transaction() as conn:
            if record is not None:
                self.add_fetch(record)
            conn.execute(
                """INSERT OR REPLACE INTO documents(resource_id, body_sha, kind, text, text_sha, title,
                       author, date, pages, charset, problem, detail, extracted_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (resource_id, body_sha, doc.kind, doc.text, sha256_hex(doc.text.encode("utf-8", "surrogatepass")),
                 doc.title, doc.author, doc.date, doc.pages, doc.charset, doc.problem, doc.detail, time.time()),
            )

    # -- passages and the embedding cache -----------------------------------
    def replace_passages(self, rows: list[tuple[str, int, str, str, str]]) -> int:
        """Swap in a new passage table (resource_id, ord, source, text, hash) and bump the
        generation; the derived vector files carry the generation they were built from."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM passages")
            conn.executemany(
                "INSERT INTO passages(id, resource_id, ord, source, text, hash) VALUES (?, ?, ?, ?, ?, ?)",
                [(i, *row) for i, row in enumerate(rows)])
            generation = int(self.meta("generation", "0") or 0) + 1
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (str(generation),))
        return generation

    def passages(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM passages ORDER BY id"))

    def passages_by_id(self, ids) -> dict[int, sqlite3.Row]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {row["id"]: row for row in self.conn.execute(f"SELECT * FROM passages WHERE id IN ({marks})", ids)}

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            batch = unique[start:start + 500]
            marks = ",".join("?" * len(batch))
            for row in self.conn.execute(
                    f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN ({marks})", [model, *batch]):
                found[row[0]] = row[1]
        return found

    def cache_vectors(self, model: str, items: list[tuple[str, bytes]]) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO embeddings(model, hash, vector) VALUES (?, ?, ?)",
                             [(model, h, v) for h, v in items])

    # -- read events -----------------------------------------------------------
    def add_read_event(self, resource_id: str, state: str, at: float | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO read_events(resource_id, at, state) VALUES (?, ?, ?)",
                         (resource_id, time.time() if at is None else at, state))

    def last_read_times(self) -> dict[str, float]:
        """When each resource was last marked read with `rq done` (ticks made in an editor leave no event)."""
        rows = self.conn.execute("SELECT resource_id, MAX(at) FROM read_events WHERE state = 'read' GROUP BY resource_id")
        return {row[0]: row[1] for row in rows}

    # -- changes to pages already read -----------------------------------------
    def add_change(self, resource_id: str, at: float, old_text_sha: str, new_text_sha: str,
                   old_body_sha: str | None, new_body_sha: str | None, similarity: float) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO changes(resource_id, at, old_text_sha, new_text_sha, old_body_sha, new_body_sha,
                       similarity) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (resource_id, at, old_text_sha, new_text_sha, old_body_sha, new_body_sha, similarity))

    def changes(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM changes ORDER BY at, id"))

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _fetch_record(row: sqlite3.Row) -> FetchRecord:
    return FetchRecord(**{k: row[k] for k in FetchRecord.__dataclass_fields__})


def open_archive(folder: Path, queue_key: str, create: bool = True) -> Archive:
    """Open (or create) the archive in ``folder`` for the queue named by ``queue_key``.

    An index folder serves one queue: opening it for another is refused rather
    than mixing two libraries.
    """
    db_path = folder / "archive.sqlite"
    if not db_path.exists() and not create:
        raise ArchiveError(f"no archive in {folder}: run `rq ingest` first")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise ArchiveError(f"cannot open archive in {folder}: {exc}") from None
    archive = Archive(folder, conn)
    _claim(archive, queue_key)
    return archive


@contextmanager
def writer_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """One writer per index folder. Leftover temp files are swept only by the lock holder,
    so a second process never deletes a file the first is still writing."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ArchiveError(f"another rq process is writing {folder}; try again when it ends") from None
        try:
            remove_orphans(folder)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim(archive: Archive, queue_key: str) -> None:
    owner = archive.meta("queue")
    if owner is None:
        archive.set_meta("queue", queue_key)
        archive.set_meta("schema_version", str(SCHEMA_VERSION))
    elif owner != queue_key:
        archive.close()
        raise ArchiveError(
            f"index folder {archive.folder} belongs to queue {owner}, not {queue_key}; "
            "pass another --index folder (or delete that one to start over)")
    version = int(archive.meta("schema_version", "0") or 0)
    if version > SCHEMA_VERSION:
        archive.close()
        raise ArchiveError(f"index folder {archive.folder} was written by a newer rq (schema {version})")
