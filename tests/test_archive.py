"""The archive under several processes: read commands write nothing while a writer holds the
index folder's lock, readers and a writer at once lose nothing, and an archive of the
previous schema (8-digit ids) is upgraded with every row kept."""

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rq.archive.schema import SCHEMA_VERSION
from rq.queue.ids import resource_id
from support.http import static
from support.queues import write_queue
from support.routes import page

READERS = (["ls"], ["status"], ["health"], ["search", "streaming features"])


def rq(*args, check=True):
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", "RQ_FETCH_PER_HOST": "8"}
    proc = subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)
    if check:
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    return proc


@pytest.fixture
def library(tmp_path, http_server):
    urls = [http_server.route(f"/archive/p{i}", static(page(f"Page {i}", f"Streaming features number {i}. " * 20)))
            for i in range(12)]
    queue = write_queue(tmp_path / "reading.md", [(f"Page {i}", u) for i, u in enumerate(urls)])
    return queue, tmp_path / "ix", urls


def _state(index: Path) -> tuple[dict, list[str]]:
    """Every file but SQLite's own WAL bookkeeping, with size and mtime; and the database's rows."""
    files = {str(p.relative_to(index)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(index.rglob("*"))
             if p.is_file() and not p.name.endswith(("-wal", "-shm", "archive.sqlite"))}
    conn = sqlite3.connect(index / "archive.sqlite")
    try:
        rows = list(conn.iterdump())
    finally:
        conn.close()
    return files, rows


def test_read_commands_write_nothing_while_a_writer_holds_the_lock(library):
    queue, index, _ = library
    rq("ingest", "--queue", queue, "--index", index)
    rq("ls", "--queue", queue, "--index", index)  # the parse cache is written while the lock is free
    queue.write_text(queue.read_text().replace("[ ] [Page 3]", "[x] [Page 3]"))  # read state: no re-index
    with open(index / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as `rq ingest` holds it
        before = _state(index)
        for args in READERS:
            proc = rq(*args, "--queue", queue, "--index", index, "--json")
            json.loads(proc.stdout)
        listing = json.loads(rq("ls", "--queue", queue, "--index", index, "--json").stdout)
        after = _state(index)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert after == before  # no file, no row written
    assert [r["state"] for r in listing if r["title"] == "Page 3"] == ["read"]  # yet the file's news is shown
    rq("ls", "--queue", queue, "--index", index)
    assert _state(index)[0]["queue-parse.json"] != before[0]["queue-parse.json"]  # remembered once the lock is free


def test_two_readers_and_a_writer_at_once_lose_nothing(library, tmp_path):
    queue, index, urls = library
    rq("ls", "--queue", queue, "--index", index)
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}
    writer = subprocess.Popen([sys.executable, "-m", "rq", "ingest", "--no-index", "--queue", str(queue), "--index",
                               str(index)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    failures, runs = [], 0
    while writer.poll() is None or runs < 4:
        readers = [subprocess.Popen([sys.executable, "-m", "rq", args, "--queue", str(queue), "--index", str(index),
                                     "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for args in ("ls", "status")]
        for reader in readers:
            out, err = reader.communicate(timeout=120)
            runs += 1
            if reader.returncode != 0:
                failures.append(err)
            else:
                json.loads(out)
    assert writer.wait(timeout=300) == 0, writer.stderr.read()
    assert failures == []
    conn = sqlite3.connect(index / "archive.sqlite")
    try:
        documents = conn.execute("SELECT COUNT(*) FROM documents WHERE text != ''").fetchone()[0]
        resources = {row[0] for row in conn.execute("SELECT id FROM resources WHERE in_queue = 1")}
    finally:
        conn.close()
    assert documents == len(urls)
    assert resources == {resource_id(u) for u in urls}


def test_an_archive_with_eight_digit_ids_is_upgraded_with_every_row_kept(library):
    queue, index, urls = library
    rq("ingest", "--queue", queue, "--index", index)
    rq("done", resource_id(urls[2])[:8], "--queue", queue, "--index", index)
    conn = sqlite3.connect(index / "archive.sqlite")
    with conn:  # what rq wrote before ids were whole: the first 8 hex digits, schema 1
        for table, column in (("resources", "id"), ("fetches", "resource_id"), ("documents", "resource_id"),
                              ("passages", "resource_id"), ("read_events", "resource_id")):
            conn.execute(f"UPDATE {table} SET {column} = substr({column}, 1, 8)")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    manifest = json.loads((index / "manifest.json").read_text())
    (index / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))

    listing = json.loads(rq("ls", "--queue", queue, "--index", index, "--json").stdout)
    assert {r["id"] for r in listing} == {resource_id(u) for u in urls}
    assert {r["fetch"] for r in listing} == {"archived"}  # every document found under its new id
    conn = sqlite3.connect(index / "archive.sqlite")
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert conn.execute("SELECT resource_id FROM read_events").fetchall() == [(resource_id(urls[2]),)]
        assert conn.execute("SELECT COUNT(*) FROM fetches WHERE length(resource_id) != 40").fetchone()[0] == 0
    finally:
        conn.close()
    found = rq("search", "streaming features number 7", "--queue", queue, "--index", index, "--json")
    assert "index format changed" in found.stderr  # the derived files are rebuilt, from cached vectors
    assert json.loads(found.stdout)["results"][0]["title"] == "Page 7"


def test_an_archive_from_before_extractor_versions_marks_its_documents_for_extraction_again(tmp_path):
    from types import SimpleNamespace

    from rq.archive.db import open_archive

    archive = open_archive(tmp_path, "queue-key")
    doc = SimpleNamespace(kind="html", text="Some text", title="T", author=None, date=None, pages=None,
                          charset="utf-8", problem=None, detail="")
    archive.put_document("a" * 40, archive.put_body(b"<html>body</html>"), doc, extractor=2)
    archive.close()
    conn = sqlite3.connect(tmp_path / "archive.sqlite")
    with conn:  # what schema 3 looked like: no documents.extractor
        conn.execute("ALTER TABLE documents DROP COLUMN extractor")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.close()

    archive = open_archive(tmp_path, "queue-key")
    try:
        assert archive.schema_version() == SCHEMA_VERSION
        row = archive.document("a" * 40)
        assert (row["text"], row["extractor"]) == ("Some text", None)  # kept, and known to be old
    finally:
        archive.close()


def test_a_reader_meeting_an_archive_still_being_created_sees_an_empty_one(tmp_path):
    # `rq ingest` creates archive.sqlite, then its tables (in one transaction): a `rq status` that
    # opens the file in between finds no tables, and must answer as for no archive, not fail.
    queue = write_queue(tmp_path / "reading.md", [("Page", "https://example.org/page")])
    index = tmp_path / "ix"
    index.mkdir()
    sqlite3.connect(index / "archive.sqlite").close()  # the file exists, with no table yet
    proc = rq("status", "--queue", queue, "--index", index, "--json")
    assert json.loads(proc.stdout)["resources"] == 1
