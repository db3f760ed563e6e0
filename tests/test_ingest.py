"""Ingest end to end against a real HTTP server on 127.0.0.1 serving good and faulty routes."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.http import static
from support.pdf import make_pdf
from support.queues import write_queue as _write_queue
from support.routes import fails_first, page, redirect, reset, slow
from rq.errors import ArchiveError
from rq.ingest.pipeline import ingest
from rq.settings import Settings
from rq.archive.db import open_archive

FAST = dict(allow_private=True, fetch_host_delay=0.0, connect_timeout=2.0, read_timeout=1.0,
            total_timeout=3.0, backoff=0.05, retries=2, max_bytes=200_000)


def article(title: str, *paragraphs: str) -> bytes:
    return page(title, *paragraphs, head="<meta name='author' content='Ada Writer'>", footer="Copyright footer text")


LONG = ("Streaming feature pipelines update user embeddings within seconds of each click, "
        "so the candidate retrieval stage sees fresh intent. ") * 6


@pytest.fixture(scope="module")
def faulty_site(http_server):
    p = "/ingest"
    s = http_server
    urls = {
        "good": s.route(f"{p}/good", static(article("Real time recommendations", LONG, LONG))),
        "pdf": s.route(f"{p}/paper.pdf", static(make_pdf([["Attention over sparse features",
                                                             "improves click prediction"]]), "application/pdf")),
        "mislabelled": s.route(f"{p}/mislabelled", static(make_pdf([["A PDF served as html",
                                                                      "about vector quantisation"]]))),
        "sjis": s.route(f"{p}/sjis", static(article("日本語の記事", "検索エンジンの仕組み " + LONG).decode()
                                             .encode("shift_jis"), "text/html; charset=Shift_JIS")),
        "flaky": s.route(f"{p}/flaky", fails_first(500, article("Flaky but fine", LONG))),
        "missing": s.url(f"{p}/missing"),
        "slow": s.route(f"{p}/slow", slow(2.5, static(b"<html><body>too late</body></html>"))),
        "big": s.route(f"{p}/big", static(b"<html><body>" + b"x" * 300_000 + b"</body></html>")),
        "loop": s.route(f"{p}/loop-a", redirect(f"{p}/loop-b")),
        "reset": s.route(f"{p}/reset", reset),
    }
    s.route(f"{p}/loop-b", redirect(f"{p}/loop-a"))
    return urls


def write_queue(path: Path, urls: dict) -> Path:
    return _write_queue(path, [(name, url, False, f"note for {name}") for name, url in urls.items()],
                        "Test queue", "Things")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, faulty_site):
    root = tmp_path_factory.mktemp("ingest")
    queue = write_queue(root / "queue.md", faulty_site)
    settings = Settings(queue=queue, index=root / "index", **FAST)
    summary = ingest(settings)
    return settings, summary


def _last_fetch_by_title(settings):
    conn = sqlite3.connect(settings.index / "archive.sqlite")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("""SELECT r.title, f.outcome, f.reason, f.http_status, f.attempts FROM resources r
                           JOIN fetches f ON f.resource_id = r.id""").fetchall()
    docs = {r["title"]: r for r in conn.execute(
        "SELECT r.title, d.kind, d.text, d.problem FROM resources r JOIN documents d ON d.resource_id = r.id")}
    return {r["title"]: r for r in rows}, docs


def test_each_fault_is_recorded_with_its_own_reason(ingested):
    settings, summary = ingested
    fetches, _ = _last_fetch_by_title(settings)
    assert fetches["missing"]["reason"] == "not_found"
    assert fetches["missing"]["attempts"] == 1  # a 404 is never retried
    assert fetches["slow"]["reason"] == "timeout"
    assert fetches["big"]["reason"] == "too_large"
    assert fetches["loop"]["reason"] == "redirect_loop"
    assert fetches["reset"]["reason"] == "reset"
    assert fetches["flaky"]["outcome"] == "ok" and fetches["flaky"]["attempts"] == 2
    assert sum(summary.failed.values()) == 5
    assert summary.fetched == 5


def test_good_pages_are_all_archived_with_extracted_text(ingested):
    settings, _ = ingested
    _, docs = _last_fetch_by_title(settings)
    assert set(docs) == {"good", "pdf", "mislabelled", "sjis", "flaky"}
    assert "candidate retrieval stage" in docs["good"]["text"]
    assert "Copyright footer" not in docs["good"]["text"]
    assert docs["pdf"]["kind"] == "pdf" and "sparse features" in docs["pdf"]["text"]
    assert docs["mislabelled"]["kind"] == "pdf" and "vector quantisation" in docs["mislabelled"]["text"]
    assert "検索エンジンの仕組み" in docs["sjis"]["text"]


def test_raw_bodies_are_content_addressed(ingested):
    settings, _ = ingested
    conn = sqlite3.connect(settings.index / "archive.sqlite")
    for (sha,) in conn.execute("SELECT body_sha FROM documents"):
        import hashlib
        path = settings.index / "raw" / sha[:2] / sha
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_rerun_fetches_nothing_fresh_and_refresh_extracts_nothing_unchanged(tmp_path, http_server):
    urls = {"one": http_server.route("/rerun/one", static(article("One", LONG), headers={"ETag": '"v1"'})),
            "two": http_server.route("/rerun/two", static(article("Two", LONG)))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    first = ingest(settings)
    assert first.fetched == 2
    hits = dict(http_server.hits)
    second = ingest(settings)
    assert (second.fresh, second.fetched) == (2, 0)
    assert dict(http_server.hits) == hits  # nothing was requested at all
    third = ingest(settings.replace(refresh=True))
    assert (third.fetched, third.unchanged) == (0, 2)


def test_a_dead_link_keeps_its_archived_text(tmp_path, http_server):
    state = {"alive": True}

    def sometimes(req):
        if state["alive"]:
            static(article("Soon gone", LONG))(req)
        else:
            static(b"gone", status=410)(req)

    urls = {"soon-gone": http_server.route("/dying/page", sometimes)}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    ingest(settings)
    state["alive"] = False
    summary = ingest(settings.replace(refresh=True))
    assert summary.failed["not_found"] == 1
    fetches, docs = _last_fetch_by_title(settings)
    assert "candidate retrieval stage" in docs["soon-gone"]["text"]


def test_an_index_folder_serves_one_queue(tmp_path):
    open_archive(tmp_path / "ix", "queue-a").close()
    with pytest.raises(ArchiveError, match="belongs to queue queue-a"):
        open_archive(tmp_path / "ix", "queue-b")


def test_private_addresses_are_refused_by_default(tmp_path, http_server):
    urls = {"local": http_server.route("/private/page", static(article("Internal", LONG)))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix",
                        **{**FAST, "allow_private": False})
    summary = ingest(settings)
    assert summary.failed["blocked"] == 1
    assert http_server.hits["/private/page"] == 0


def test_killed_ingest_resumes_with_nothing_lost_or_duplicated(tmp_path, http_server):
    n = 12

    def slowish(i):
        def handle(req):
            time.sleep(0.3)
            static(article(f"Page {i}", LONG))(req)
        return handle

    urls = {f"p{i}": http_server.route(f"/kill/{i}", slowish(i)) for i in range(n)}
    queue = write_queue(tmp_path / "q.md", urls)
    index = tmp_path / "ix"
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", "RQ_FETCH_CONCURRENCY": "1",
           "RQ_FETCH_PER_HOST": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rq", "ingest", "--queue", str(queue), "--index", str(index)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = index / "archive.sqlite"
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    stored = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            except sqlite3.Error:
                continue
            if stored >= 3:
                break
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= stored < n

    settings = Settings(queue=queue, index=index, **FAST)
    summary = ingest(settings)
    assert summary.fresh >= 3 and summary.fetched + summary.fresh == n
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == n
        assert conn.execute("SELECT COUNT(DISTINCT resource_id) FROM documents").fetchone()[0] == n
        assert conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0] == n
    assert not list(index.rglob(".rq-tmp-*"))
