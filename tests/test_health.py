"""Link health against a real HTTP server on 127.0.0.1: soft 404s, pages changed since read, the report."""

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from support.http import FixtureServer, closed_port, static
from support.queues import write_queue as _write_queue
from support.routes import CatchAll, page, redirect, slow, wrong_turn
from rq.archive.marks import mark
from rq.report.health import health_report
from rq.ingest.pipeline import ingest
from rq.settings import Settings
from rq.report.status import load_views, summarize
from rq.queue.ids import resource_id

FAST = dict(allow_private=True, fetch_host_delay=0.0, connect_timeout=2.0, read_timeout=1.0,
            total_timeout=3.0, backoff=0.05, retries=1, max_bytes=200_000)

LONG = ("Streaming feature pipelines update user embeddings within seconds of each click, "
        "so the candidate retrieval stage sees fresh intent and the ranker can act on it. ") * 8


def write_queue(path: Path, items: list[tuple[str, str, bool]]) -> Path:
    return _write_queue(path, items, "Health queue")


def db(settings: Settings) -> sqlite3.Connection:
    conn = sqlite3.connect(settings.index / "archive.sqlite")
    conn.row_factory = sqlite3.Row
    return conn


def last_fetch(settings: Settings, url: str) -> sqlite3.Row:
    return db(settings).execute("SELECT * FROM fetches WHERE resource_id = ? ORDER BY id DESC LIMIT 1",
                                (resource_id(url),)).fetchone()


def document(settings: Settings, url: str) -> sqlite3.Row | None:
    return db(settings).execute("SELECT * FROM documents WHERE resource_id = ?", (resource_id(url),)).fetchone()


@pytest.fixture
def soft_site(http_server, monkeypatch):
    s = http_server
    monkeypatch.setitem(s.routes, "/", static(page("Acme home", "Welcome to Acme. " + LONG)))
    monkeypatch.setattr(s, "routes", CatchAll("/health-kb/", wrong_turn, s.routes))
    return {
        "title": s.route("/health-soft/launch-notes", static(page(
            "Page not found | Acme Blog", "Sorry, we could not find that page.", h1="Nothing to see"))),
        "home": s.route("/health-soft/old-post", redirect("/")),
        "sibling": s.url("/health-kb/article-that-was-deleted"),  # caught by the catch-all: 200 "wrong turn"
        "about-404": s.route("/health-kb/designing-404-pages", static(page(
            "Designing a helpful 404 page | Acme Blog",
            "A page not found error is a dead end; a good 404 page turns it into a way forward. " + LONG,
            "When a page does not exist any more, say so plainly and offer search. " + LONG))),
        "real-kb": s.route("/health-kb/reset-password", static(page(
            "How to reset your password", "Open the account menu and choose reset password. " + LONG))),
    }


def test_soft_404s_are_failed_links_with_their_signal_and_real_pages_are_not(tmp_path, soft_site, http_server):
    queue = write_queue(tmp_path / "q.md", [(name, url, False) for name, url in soft_site.items()])
    settings = Settings(queue=queue, index=tmp_path / "ix", **FAST)
    summary = ingest(settings)

    assert summary.failed == {"soft_404": 3}
    assert summary.fetched == 2
    expected = {"title": "title", "home": "home_redirect", "sibling": "sibling"}
    for name, signal in expected.items():
        row = last_fetch(settings, soft_site[name])
        assert (row["outcome"], row["reason"], row["http_status"]) == ("failed", "soft_404", 200), name
        assert row["detail"].startswith(signal + ":"), (name, row["detail"])
        raw = settings.index / "raw" / row["body_sha"][:2] / row["body_sha"]  # the body is still archived
        assert hashlib.sha256(raw.read_bytes()).hexdigest() == row["body_sha"]
        assert document(settings, soft_site[name]) is None  # the error page is not the resource's text
    assert "Page not found" in last_fetch(settings, soft_site["title"])["detail"]

    # Neither the article about 404 pages nor a real page on the catch-all site is flagged.
    assert "helpful 404 page" in document(settings, soft_site["about-404"])["title"]
    assert "account menu" in document(settings, soft_site["real-kb"])["text"]
    # The made-up sibling was asked once for the whole run, under the pages' own folder.
    probes = [p for p in http_server.hits if p.startswith("/health-kb/rq-missing-")]
    probes += [p for p in http_server.hits if p.startswith("/health-soft/rq-missing-")]
    assert len(probes) == 1 and sum(http_server.hits[p] for p in probes) == 1

    location, parsed, items = load_views(settings)
    by_title = {v.title: v for v in items}
    assert (by_title["sibling"].fetch, by_title["sibling"].reason) == ("failed", "soft_404")
    assert summarize(location, parsed, items)["failed_by_reason"] == {"soft_404": 3}


@pytest.fixture
def hosts_whose_probe_hangs():
    """Five hosts (127.0.0.2-6: rq counts politeness per host name) serving a real article, and
    hanging on any made-up address next to it."""
    servers = [FixtureServer(host=f"127.0.0.{i + 2}").start() for i in range(5)]
    for i, server in enumerate(servers):
        server.routes = CatchAll("/notes/rq-missing-", slow(30, static(b"late")), server.routes)
        server.route("/notes/article", static(page(f"Article {i}", LONG)))
    yield servers
    for server in servers:
        server.stop()


def test_hanging_probes_of_many_hosts_cost_one_timeout_not_one_each(tmp_path, hosts_whose_probe_hangs):
    timeout = 3.0
    items = [(f"article {i}", s.url("/notes/article"), False) for i, s in enumerate(hosts_whose_probe_hangs)]
    settings = Settings(queue=write_queue(tmp_path / "q.md", items), index=tmp_path / "ix",
                        **{**FAST, "read_timeout": timeout, "total_timeout": timeout, "retries": 0})
    started = time.monotonic()
    summary = ingest(settings)
    elapsed = time.monotonic() - started
    assert (summary.fetched, dict(summary.failed)) == (5, {})  # no sibling answer: the pages stand
    assert elapsed < 3 * timeout, f"{elapsed:.1f}s: the probes ran one after another (5 x {timeout:g}s)"
    for server in hosts_whose_probe_hangs:
        probes = [p for p in server.hits if p.startswith("/notes/rq-missing-")]
        assert len(probes) == 1 and server.hits[probes[0]] == 1  # one made-up address per host and run


def test_pages_waiting_for_a_slow_probe_are_all_judged_by_it(tmp_path):
    def catch_all(req):
        if "/rq-missing-" in req.path:
            time.sleep(0.5)  # the sibling answers after the site's pages (within the read timeout)
        wrong_turn(req)

    server = FixtureServer(host="127.0.0.7").start()
    try:
        server.routes = CatchAll("/kb/", catch_all, server.routes)
        items = [(f"kb {i}", server.url(f"/kb/article-{i}"), False) for i in range(4)]
        settings = Settings(queue=write_queue(tmp_path / "q.md", items), index=tmp_path / "ix", **FAST)
        summary = ingest(settings)
    finally:
        server.stop()
    assert summary.failed == {"soft_404": 4} and summary.fetched == 0
    for _, url, _ in items:
        assert last_fetch(settings, url)["detail"].startswith("sibling:")
    assert sum(n for p, n in server.hits.items() if "/rq-missing-" in p) == 1


def test_with_the_probe_off_no_made_up_address_is_asked(tmp_path, soft_site, http_server):
    queue = write_queue(tmp_path / "q.md", [(name, url, False) for name, url in soft_site.items()])
    before = sum(n for p, n in http_server.hits.items() if "/rq-missing-" in p)
    summary = ingest(Settings(queue=queue, index=tmp_path / "ix", **FAST, probe_soft_404=False))
    assert sum(n for p, n in http_server.hits.items() if "/rq-missing-" in p) == before
    assert summary.failed == {"soft_404": 2}  # the page's own title and the home redirect still tell
    assert summary.fetched == 3  # the catch-all page cannot be told from an article without the probe


def test_an_honest_site_gets_no_soft_404_and_a_page_that_turned_soft_keeps_its_text(tmp_path, http_server):
    state = {"alive": True}

    def dying(req):
        if state["alive"]:
            static(page("Vector search at scale", "Product quantisation shrinks vectors. " + LONG))(req)
        else:
            static(page("404 Not Found", "The requested URL was not found on this server."))(req)

    url = http_server.route("/health-honest/vector-search", dying)
    other = http_server.route("/health-honest/ranking", static(page("Learning to rank", LONG)))
    settings = Settings(queue=write_queue(tmp_path / "q.md", [("vs", url, True), ("ltr", other, False)]),
                        index=tmp_path / "ix", **FAST)
    first = ingest(settings)
    assert first.fetched == 2 and not first.failed  # the sibling got a real 404: nothing to compare

    state["alive"] = False
    second = ingest(settings.replace(refresh=True))
    assert second.failed == {"soft_404": 1}
    assert second.changed_since_read == 0  # an error page is not a new version of the article
    assert "Product quantisation" in document(settings, url)["text"]  # last good text kept for search
    report = health_report(settings)
    entry = report["by_reason"]["soft_404"][0]
    assert entry["url"] == url and entry["signal"] == "title" and entry["http_status"] == 200
    assert entry["archived_copy"] is True and entry["last_ok_at"] is not None


def test_a_read_page_that_changed_is_reported_and_an_unread_or_trivially_edited_one_is_not(tmp_path, http_server):
    version = {"n": 1}
    rewritten = ("The second edition drops the feature store entirely and explains how to serve "
                 "embeddings from the online database with change data capture. ") * 6

    def evolving(title):
        def handle(req):
            text = LONG if version["n"] == 1 else rewritten
            static(page(title, text))(req)
        return handle

    def dated(req):
        static(page("Weekly notes", f"Updated on {version['n'] + 10} March 2025. " + LONG))(req)

    read_url = http_server.route("/health-change/read", evolving("Read and changed"))
    unread_url = http_server.route("/health-change/unread", evolving("Unread and changed"))
    dated_url = http_server.route("/health-change/dated", dated)
    queue = write_queue(tmp_path / "q.md", [("read one", read_url, True), ("unread one", unread_url, False),
                                            ("dated one", dated_url, True)])
    settings = Settings(queue=queue, index=tmp_path / "ix", **FAST)
    assert ingest(settings).fetched == 3
    assert health_report(settings)["changed_since_read"] == []

    version["n"] = 2
    summary = ingest(settings.replace(refresh=True))
    assert summary.fetched == 3  # all three bodies changed...
    assert summary.changed_since_read == 1  # ...but only the read one changed in substance
    assert [c["id"] for c in summary.changes] == [resource_id(read_url)]

    changed = health_report(settings)["changed_since_read"]
    assert [c["url"] for c in changed] == [read_url]
    assert changed[0]["similarity"] < 0.9 and changed[0]["changes"] == 1
    assert "online database" in document(settings, read_url)["text"]
    location, parsed, items = load_views(settings)
    assert summarize(location, parsed, items)["changed_since_read"] == 1
    assert [v.url for v in items if v.changed_since_read] == [read_url]

    # Reading it again (todo, then done) clears it: the change is no longer since the last read.
    mark(settings, resource_id(read_url), "unread")
    mark(settings, resource_id(read_url), "read")
    assert health_report(settings)["changed_since_read"] == []


def test_health_report_lists_failures_by_reason_with_archived_copy_info(tmp_path, http_server):
    state = {"alive": True}

    def dies(req):
        if state["alive"]:
            static(page("Once alive", "Feature stores keep features consistent. " + LONG))(req)
        else:
            static(b"<html><title>Gone</title></html>", status=404)(req)

    died = http_server.route("/health-report/died", dies)
    never = http_server.url("/health-report/never-existed")
    empty = http_server.route("/health-report/empty", static(b"<html><body></body></html>"))
    image = http_server.route("/health-report/photo", static(b"\x89PNG\r\n\x1a\n" + bytes(500), "image/png"))
    refused = f"http://127.0.0.1:{closed_port()}/post"
    good = http_server.route("/health-report/good", static(page("Still fine", LONG)))
    items = [("died", died, True), ("never", never, False), ("empty", empty, False), ("image", image, False),
             ("refused", refused, False), ("good", good, False)]
    settings = Settings(queue=write_queue(tmp_path / "q.md", items), index=tmp_path / "ix", **FAST)
    ingest(settings)
    state["alive"] = False
    ingest(settings.replace(refresh=True))

    report = health_report(settings)
    assert report["counts"] == {"not_found": 2, "not_text": 2, "refused": 1}
    assert report["failing"] == 5 and report["web_links"] == 6 and report["not_fetched"] == 0
    by_url = {e["url"]: e for entries in report["by_reason"].values() for e in entries}
    assert good not in by_url
    assert by_url[died]["archived_copy"] is True and by_url[died]["last_ok_at"] < by_url[died]["failed_at"]
    assert by_url[died]["http_status"] == 404 and "404" in by_url[died]["detail"]
    assert by_url[never]["archived_copy"] is False and by_url[never]["last_ok_at"] is None
    assert by_url[refused]["http_status"] is None and by_url[refused]["archived_copy"] is False
    assert {by_url[empty]["problem"], by_url[image]["problem"]} == {"no_text", "not_text"}
    assert by_url[empty]["last_ok_at"] is not None  # the fetch worked; the page has no text
    json.dumps(report)  # the CLI prints it as JSON as is


@pytest.mark.parametrize("title, text, flagged", [
    ("Page not found | Example Blog", "", True),
    ("Error 404 (Not Found)!!1", "", True),
    ("Oops! That page can\u2019t be found. \u2013 Acme", "", True),
    ("404", "", True),
    ("Acme", "Sorry, the page you were looking for does not exist. Go back home.", True),
    ("Designing 404 pages | Blog", "", False),
    ("404 Media", "", False),
    ("How to fix module not found errors", "", False),
    ("Nothing to see", "Our new 404 page got a redesign and it looks great.", False),
    ("Why soft 404s hurt", "A page not found error is a dead end; " + LONG, False),
])
def test_not_found_wording_in_the_title_or_a_short_text_only(title, text, flagged):
    from rq.ingest.soft404 import says_not_found
    assert (says_not_found(title, text) is not None) == flagged


@pytest.mark.parametrize("asked, landed, flagged", [
    ("https://blog.example.com/2020/post", "https://blog.example.com/", True),
    ("http://example.com/docs/intro", "https://www.example.com/en/", True),
    ("https://example.com/index.html", "https://example.com/", False),  # asked for home anyway
    ("https://bit.ly/abc", "https://example.com/", False),  # a short link to someone's home page
    ("https://example.com/post", "https://example.com/login?next=/post", False),
])
def test_redirect_to_the_home_page_of_the_same_site(asked, landed, flagged):
    from rq.ingest.soft404 import redirected_home
    assert redirected_home(asked, landed, [landed]) == flagged
