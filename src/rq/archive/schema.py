"""The archive's tables, and the upgrades from each earlier schema to the current one."""

from __future__ import annotations

import sqlite3

from rq.queue.ids import resource_id

# 2: resources are keyed by the whole SHA-1 of their normalised URL, not its first 8 hex digits.
# 3: each fetch records the policy it ran under (fetches.policy), so a link refused because of a
#    setting is fetched again as soon as that setting changes.
# 4: each document records the extractor version that produced its text (documents.extractor), so
#    an archive extracted by an older rq is extracted again from its raw bodies.
SCHEMA_VERSION = 4

SCHEMA = """
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
    body_sha TEXT, bytes INTEGER, attempts INTEGER, elapsed REAL, policy TEXT
);
CREATE INDEX IF NOT EXISTS fetches_by_resource ON fetches(resource_id, at);
CREATE TABLE IF NOT EXISTS documents (
    resource_id TEXT PRIMARY KEY, body_sha TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    text_sha TEXT NOT NULL, title TEXT, author TEXT, date TEXT, pages INTEGER, charset TEXT,
    problem TEXT, detail TEXT NOT NULL, extracted_at REAL NOT NULL, extractor INTEGER
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
CREATE TABLE IF NOT EXISTS added_boxes (
    resource_id TEXT NOT NULL, place INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (resource_id, place)
);
"""

# Every column that holds a resource id.
_RESOURCE_ID_COLUMNS = (("resources", "id"), ("fetches", "resource_id"), ("documents", "resource_id"),
                        ("passages", "resource_id"), ("read_events", "resource_id"), ("changes", "resource_id"))


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring an archive of schema ``version`` to SCHEMA_VERSION, in one transaction."""
    if version >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version < 2:
            _full_resource_ids(conn)
        if version < 3:
            _fetch_policy_column(conn)
        if version < 4:
            _extractor_column(conn)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _full_resource_ids(conn: sqlite3.Connection) -> None:
    """Schema 1 used the first 8 hex digits of the URL's SHA-1 as the id; 2 uses all 40. Every
    row keeps its resource; the derived index files are rebuilt (their format changed too)."""
    new = {old: resource_id(url) for old, url in conn.execute("SELECT id, url FROM resources")}
    for table, column in _RESOURCE_ID_COLUMNS:
        conn.executemany(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                         [(full, short) for short, full in new.items()])
    conn.execute("DELETE FROM meta WHERE key = 'queue_synced'")


def _fetch_policy_column(conn: sqlite3.Connection) -> None:
    """Schema 3 adds fetches.policy. Older fetches keep NULL there: unknown, so a failure that a
    setting caused is tried once more under the settings of the next ingest."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(fetches)")}
    if "policy" not in columns:
        conn.execute("ALTER TABLE fetches ADD COLUMN policy TEXT")


def _extractor_column(conn: sqlite3.Connection) -> None:
    """Schema 4 adds documents.extractor. Older documents keep NULL: extracted by a version before
    versions were recorded, so the next ingest extracts them again from their raw bodies."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
    if "extractor" not in columns:
        conn.execute("ALTER TABLE documents ADD COLUMN extractor INTEGER")


def create_tables(conn: sqlite3.Connection) -> None:
    """The current schema's tables, all in one transaction: a command reading the folder while
    another creates its archive sees either every table or none (rq.archive.db.open_archive_to_read
    reads "none" as no archive yet), never some without the others."""
    conn.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")


def has_tables(conn: sqlite3.Connection) -> bool:
    """Whether the database holds rq's tables (a file another process has only begun to create does not)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None
