"""The archive: the SQLite database of a queue's index folder, and its raw bodies.

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

from rq.archive.connect import cannot_open, connect, connect_to_read, out_of_room
from rq.archive.lock import try_writer_lock
from rq.archive.records import FetchRecord
from rq.archive.schema import SCHEMA, SCHEMA_VERSION, create_tables, has_tables, migrate
from rq.errors import ArchiveError, DiskFullError
from rq.files import atomic_write_bytes, is_disk_full


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

    def schema_version(self) -> int:
        """The schema the archive was written with (the current one for an empty archive)."""
        if self.meta("queue") is None:
            return SCHEMA_VERSION
        return int(self.meta("schema_version", "0") or 0)

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.conn.in_transaction:  # nested: the outer one commits
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self._rollback()
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()  # a failed COMMIT may leave the transaction open
            full = out_of_room(exc, self.folder)
            if full is None:
                raise
            raise full from None

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK would fail
        # with "cannot rollback - no transaction is active" and hide the error that matters.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # closing the connection rolls back what is left

    def close(self) -> None:
        self.conn.close()

    # -- raw bodies ------------------------------------------------------------
    def body_path(self, sha: str) -> Path:
        return self.raw_dir / sha[:2] / sha

    def put_body(self, data: bytes) -> str:
        sha = sha256_hex(data)
        path = self.body_path(sha)
        if not path.exists():
            try:
                atomic_write_bytes(path, data)
            except OSError as exc:
                if is_disk_full(exc):
                    raise DiskFullError("a page's raw body", self.folder) from None
                raise ArchiveError(f"cannot write {path} ({exc.strerror or exc})") from None
        return sha

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

    def last_ok_times(self) -> dict[str, float]:
        """When each resource was last fetched successfully (a 304 counts)."""
        rows = self.conn.execute("""SELECT resource_id, MAX(at) FROM fetches WHERE outcome IN ('ok', 'not_modified')
                                    GROUP BY resource_id""")
        return {row[0]: row[1] for row in rows}

    def fetch_history(self, resource_id: str, limit: int = 20) -> list[FetchRecord]:
        rows = self.conn.execute(
            "SELECT * FROM fetches WHERE resource_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (resource_id, limit))
        return [_fetch_record(r) for r in rows]

    def add_fetch(self, record: FetchRecord) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO fetches(resource_id, url, at, outcome, reason, detail, http_status,
                       final_url, content_type, etag, last_modified, body_sha, bytes, attempts, elapsed, policy)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (record.resource_id, record.url, record.at, record.outcome, record.reason,
                 record.detail, record.http_status, record.final_url, record.content_type,
                 record.etag, record.last_modified, record.body_sha, record.bytes,
                 record.attempts, record.elapsed, record.policy),
            )

    def document(self, resource_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM documents WHERE resource_id = ?", (resource_id,)).fetchone()

    def documents(self) -> dict[str, sqlite3.Row]:
        return {row["resource_id"]: row for row in self.conn.execute("SELECT * FROM documents")}

    def document_openings(self, chars: int) -> dict[str, str]:
        """The first ``chars`` characters of each archived document's text, by resource (cheap
        where documents() would load every whole page)."""
        return {row[0]: row[1] or "" for row in
                self.conn.execute("SELECT resource_id, substr(text, 1, ?) FROM documents", (chars,))}

    def text_shas(self) -> dict[str, str]:
        """The sha256 of each archived document's text, by resource."""
        return {row[0]: row[1] for row in self.conn.execute("SELECT resource_id, text_sha FROM documents")}

    def put_document(self, resource_id: str, body_sha: str, doc: Any, record: FetchRecord | None = None,
                     extractor: int | None = None) -> None:
        """Store an extracted document (and the extractor version that made it), and its fetch
        record, in one transaction."""
        with self.transaction() as conn:
            if record is not None:
                self.add_fetch(record)
            conn.execute(
                """INSERT OR REPLACE INTO documents(resource_id, body_sha, kind, text, text_sha, title,
                       author, date, pages, charset, problem, detail, extracted_at, extractor)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (resource_id, body_sha, doc.kind, doc.text, sha256_hex(doc.text.encode("utf-8", "surrogatepass")),
                 doc.title, doc.author, doc.date, doc.pages, doc.charset, doc.problem, doc.detail, time.time(),
                 extractor),
            )

    def stale_documents(self, extractor: int) -> list[tuple[str, str, FetchRecord]]:
        """(resource id, body sha, the fetch that brought the body) of every document extracted by
        an older extractor whose raw body is still archived: what can be extracted again offline."""
        rows = self.conn.execute(
            """SELECT d.resource_id, d.body_sha, f.* FROM documents d
               JOIN fetches f ON f.id = (SELECT MAX(id) FROM fetches WHERE resource_id = d.resource_id
                                         AND body_sha = d.body_sha)
               WHERE d.extractor IS NULL OR d.extractor < ?""", (extractor,)).fetchall()
        return [(row[0], row[1], _fetch_record(row)) for row in rows if self.body_path(row[1]).exists()]

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

    def passages_of(self, resource_id: str) -> list[sqlite3.Row]:
        """One resource's passages in order: text, source and hash."""
        return list(self.conn.execute(
            "SELECT text, source, hash FROM passages WHERE resource_id = ? ORDER BY ord", (resource_id,)))

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

    def add_boxes(self, resource_id: str, places: list[int]) -> None:
        """Remember that `rq done` gave these places of a resource a checkbox they did not have."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO added_boxes(resource_id, place, at) VALUES (?, ?, ?)",
                             [(resource_id, p, time.time()) for p in places])

    def boxes_added(self, resource_id: str) -> set[int]:
        rows = self.conn.execute("SELECT place FROM added_boxes WHERE resource_id = ?", (resource_id,))
        return {row[0] for row in rows}

    def forget_boxes(self, resource_id: str, places: list[int]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM added_boxes WHERE resource_id = ? AND place = ?",
                             [(resource_id, p) for p in places])

    def queue_state(self, resource_id: str) -> str | None:
        """The read state the queue gave a resource when the archive last mirrored it."""
        row = self.conn.execute("SELECT state FROM resources WHERE id = ?", (resource_id,)).fetchone()
        return row["state"] if row is not None else None

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


def _fetch_record(row: sqlite3.Row) -> FetchRecord:
    return FetchRecord(**{k: row[k] for k in FetchRecord.__dataclass_fields__})


DB_FILE = "archive.sqlite"


def open_archive(folder: Path, queue_key: str, create: bool = True) -> Archive:
    """Open (or create) the archive in ``folder`` for the queue named by ``queue_key``, for a
    command that writes (it holds the folder's writer lock). An archive of an earlier schema
    is upgraded.

    An index folder serves one queue: opening it for another is refused rather
    than mixing two libraries.
    """
    db_path = folder / DB_FILE
    if not db_path.exists() and not create:
        raise ArchiveError(f"no archive in {folder}: run `rq ingest` first")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        conn = connect(db_path)
        conn.execute("PRAGMA journal_mode=WAL")
        create_tables(conn)
    except (OSError, sqlite3.Error) as exc:
        raise cannot_open(exc, folder) from None
    archive = Archive(folder, conn)
    _claim(archive, queue_key)
    _upgrade(archive)
    return archive


def open_archive_to_read(folder: Path, queue_key: str) -> Archive:
    """Open the archive in ``folder`` for a command that only reads: nothing is written. Where
    no archive exists yet, an empty one in memory stands in. An archive of an earlier schema
    is upgraded only while no other rq process is writing the folder."""
    db_path = folder / DB_FILE
    read_only = False
    try:
        conn = None
        if db_path.exists():
            conn, read_only = connect_to_read(db_path)
            if not has_tables(conn):  # another rq process has only begun to create it
                conn.close()
                conn, read_only = None, False
        if conn is None:
            conn = connect(":memory:")
            conn.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise ArchiveError(f"cannot open archive in {folder}: {exc}") from None
    archive = Archive(folder, conn)
    _check_owner(archive, queue_key)
    if archive.schema_version() < SCHEMA_VERSION and db_path.exists():
        if read_only:
            archive.close()
            raise ArchiveError(f"the archive in {folder} needs an upgrade, and that folder cannot be written; "
                               "run `rq ingest` where it can")
        with try_writer_lock(folder) as held:
            if not held:
                archive.close()
                raise ArchiveError(f"the archive in {folder} needs an upgrade, and another rq process is "
                                   "writing it; try again when it ends")
            _upgrade(archive)
    return archive


def _claim(archive: Archive, queue_key: str) -> None:
    if archive.meta("queue") is None:
        with archive.transaction():
            archive.set_meta("queue", queue_key)
            archive.set_meta("schema_version", str(SCHEMA_VERSION))
    _check_owner(archive, queue_key)


def _check_owner(archive: Archive, queue_key: str) -> None:
    owner = archive.meta("queue")
    if owner is not None and owner != queue_key:
        archive.close()
        raise ArchiveError(
            f"index folder {archive.folder} belongs to queue {owner}, not {queue_key}; "
            "pass another --index folder (or delete that one to start over)")
    version = archive.schema_version()
    if version > SCHEMA_VERSION:
        archive.close()
        raise ArchiveError(f"index folder {archive.folder} was written by a newer rq (schema {version})")


def _upgrade(archive: Archive) -> None:
    try:
        migrate(archive.conn, archive.schema_version())
    except sqlite3.Error as exc:
        archive.close()
        raise ArchiveError(f"cannot upgrade the archive in {archive.folder}: {exc}") from None
