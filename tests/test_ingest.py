"""Ingest end to end against a real HTTP server on 127.0.0.1 serving good and faulty routes."""

import json
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
from support.routes import fails_first, page, random_bytes, raw_status, redirect, reset, slow
from rq.errors import ArchiveError
from rq.ingest.pipeline import ingest
from rq.report.health import health_report
from rq.report.status import load_views, summarize
from rq.settings import Settings
from rq.archive.db import open_archive
from rq.archive.schema import SCHEMA_VERSION

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


def test_text_from_an_older_extractor_is_extracted_again_from_the_saved_copy(tmp_path, http_server):
    # A page archived by an rq whose extractor kept the reference list: after an upgrade, the
    # next ingest fixes the text from raw/ without fetching, and search follows.
    from rq.index.build import build_index
    from rq.rank.search import search

    references = "".join(f"<p>[{i}] A. Author. Paper number {i} on zebrafish. In Proc. ICML, 2019.</p>"
                         for i in range(1, 6))
    body = page("Streaming features", LONG, LONG, html="<h2>References</h2>" + references)
    urls = {"paper": http_server.route("/reextract/paper", static(body))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    assert ingest(settings).fetched == 1
    with sqlite3.connect(settings.index / "archive.sqlite") as conn:
        (current,) = conn.execute("SELECT text FROM documents").fetchone()
        assert "zebrafish" not in current  # today's extractor drops the list
        conn.execute("UPDATE documents SET text = ?, text_sha = 'old', extractor = NULL",  # an older rq's text
                     (current + "\n\nReferences\n[1] Paper on zebrafish.",))
    conn.close()
    build_index(settings)
    assert search(settings, "zebrafish", mode="keyword").hits  # the stale text is what is indexed

    hits = dict(http_server.hits)
    again = ingest(settings)
    assert (again.reextracted, again.fresh, again.fetched, again.changed_since_read) == (1, 1, 0, 0)
    assert dict(http_server.hits) == hits  # from the saved copy: nothing was requested
    _, docs = _last_fetch_by_title(settings)
    assert docs["paper"]["text"] == current
    assert search(settings, "zebrafish", mode="keyword").hits == []
    assert ingest(settings).reextracted == 0  # once


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


# -- a failure caused by a setting is tried again once the setting changes ------------------------


def test_a_link_refused_as_private_is_fetched_as_soon_as_private_addresses_are_allowed(tmp_path, http_server):
    urls = {"internal": http_server.route("/policy/private", static(article("Internal wiki", LONG)))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix",
                        **{**FAST, "allow_private": False})
    first = ingest(settings)
    assert first.failed == {"blocked": 1}
    assert "pass --allow-private" in first.failures[0]["detail"] and "allow_hosts" in first.failures[0]["detail"]
    assert ingest(settings).fresh == 1  # same settings: a refusal is not repeated within the window
    allowed = ingest(settings.replace(allow_private=True))
    assert (allowed.fetched, allowed.fresh, dict(allowed.failed)) == (1, 0, {})
    _, docs = _last_fetch_by_title(settings)
    assert "candidate retrieval stage" in docs["internal"]["text"]


def test_a_link_over_the_size_cap_is_fetched_again_once_the_cap_is_raised(tmp_path, http_server):
    urls = {"big": http_server.route("/policy/big", static(article("Big page", LONG * 300)))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix",
                        **{**FAST, "max_bytes": 50_000})
    first = ingest(settings)
    assert first.failed == {"too_large": 1}
    assert "max_bytes" in first.failures[0]["detail"] and "RQ_MAX_BYTES" in first.failures[0]["detail"]
    assert ingest(settings).fresh == 1
    assert ingest(settings.replace(max_bytes=5_000_000)).fetched == 1


def test_an_archive_of_schema_2_is_upgraded_and_its_refusals_are_tried_once_more(tmp_path, http_server):
    urls = {"internal": http_server.route("/policy/old", static(article("Old refusal", LONG)))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix",
                        **{**FAST, "allow_private": False})
    ingest(settings)
    with sqlite3.connect(settings.index / "archive.sqlite") as conn:  # as rq wrote it before fetches.policy
        conn.execute("ALTER TABLE fetches DROP COLUMN policy")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    again = ingest(settings)
    assert again.failed == {"blocked": 1} and again.fresh == 0  # unknown policy: tried under today's
    assert ingest(settings).fresh == 1
    with sqlite3.connect(settings.index / "archive.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        policies = [row[0] for row in conn.execute("SELECT policy FROM fetches ORDER BY id")]
    assert policies[0] is None and '"allow_private": false' in policies[-1]


def rq_cli(*args, env_extra=None):
    env = {**os.environ, "RQ_FETCH_HOST_DELAY": "0", "RQ_RETRIES": "0", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_following_the_private_address_hint_fetches_the_link(tmp_path, http_server):
    urls = {"internal": http_server.route("/policy/hint", static(article("Internal notes", LONG)))}
    where = ["--queue", write_queue(tmp_path / "q.md", urls), "--index", tmp_path / "ix"]
    refused = rq_cli("ingest", "--no-index", *where)
    assert refused.returncode == 1 and "pass --allow-private" in refused.stderr
    allowed = rq_cli("ingest", "--no-index", "--allow-private", *where)
    assert allowed.returncode == 0, allowed.stderr
    assert "1 fetched" in allowed.stderr and "0 failed" in allowed.stderr
    status = json.loads(rq_cli("status", "--json", *where).stdout)
    assert status["failed_by_reason"] == {} and status["by_fetch"] == {"archived": 1}


# -- offline is not dead -------------------------------------------------------------------------


def test_with_no_network_the_links_are_not_checked_rather_than_dead(tmp_path):
    # Names under .invalid never resolve: what every name does on a machine without a network.
    urls = {f"post {i}": f"https://blog{i}.invalid/post" for i in range(4)}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    summary = ingest(settings)
    assert (summary.offline, dict(summary.failed), summary.fetched) == (4, {}, 0)
    assert not summary.did_something and "looked offline" in summary.offline_detail
    report = health_report(settings)
    assert report["failing"] == 0 and report["counts"] == {}
    assert len(report["not_checked"]["offline"]) == 4
    location, parsed, items = load_views(settings)
    assert summarize(location, parsed, items)["failed_by_reason"] == {}
    assert {v.fetch for v in items} == {"not checked"}
    assert ingest(settings).offline == 4  # not a verdict: the next run tries them again


@pytest.mark.parametrize("dead, working", [(3, 1), (2, 0)])
def test_dead_domains_are_dead_when_the_network_answers_or_too_few_to_tell(tmp_path, http_server, dead, working):
    urls = {f"dead {i}": f"https://gone{i}.invalid/post" for i in range(dead)}
    urls.update({f"live {i}": http_server.route(f"/online/{i}", static(article(f"Live {i}", LONG)))
                 for i in range(working)})
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    summary = ingest(settings)
    assert (summary.offline, dict(summary.failed), summary.fetched) == (0, {"gone_dns": dead}, working)
    assert health_report(settings)["counts"] == {"gone_dns": dead}


def test_the_command_says_the_machine_looks_offline_and_health_lists_nothing_as_dead(tmp_path):
    urls = {f"post {i}": f"https://site{i}.invalid/post" for i in range(13)}
    where = ["--queue", write_queue(tmp_path / "q.md", urls), "--index", tmp_path / "ix"]
    run = rq_cli("ingest", "--no-index", *where)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "looks offline" in run.stderr and "13 not checked (offline)" in run.stderr and "0 failed" in run.stderr
    health = rq_cli("health", *where)
    assert "not checked: offline (13)" in health.stdout and "gone_dns" not in health.stdout
    assert "0 failing" in health.stdout


def test_the_failure_list_says_how_many_it_left_out(tmp_path, http_server):
    urls = {f"missing {i}": http_server.url(f"/many-missing/{i}") for i in range(13)}
    run = rq_cli("ingest", "--no-index", "--allow-private", "--queue", write_queue(tmp_path / "q.md", urls),
                 "--index", tmp_path / "ix")
    assert "13 failed" in run.stderr
    assert run.stderr.count(" not_found: ") == 10 and "and 3 more (see `rq ls --failed`)" in run.stderr


# -- pages that are not text, a second writer, hostile servers ---------------------------------------


def test_binary_served_as_html_is_recorded_as_not_text_without_garbage(tmp_path, http_server):
    urls = {"noise": http_server.route("/binary/page", static(random_bytes(85_000, seed=3), "text/html"))}
    settings = Settings(queue=write_queue(tmp_path / "q.md", urls), index=tmp_path / "ix", **FAST)
    summary = ingest(settings)
    assert summary.no_text == 1
    _, docs = _last_fetch_by_title(settings)
    assert (docs["noise"]["problem"], docs["noise"]["text"]) == ("not_text", "")
    assert health_report(settings)["counts"] == {"not_text": 1}


def test_a_second_ingest_says_whom_it_waits_for(tmp_path, http_server):
    urls = {"slow": http_server.route("/lock/slow", slow(3, static(article("Slow page", LONG))))}
    where = ["--no-index", "--queue", write_queue(tmp_path / "q.md", urls), "--index", tmp_path / "ix"]
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}
    first = subprocess.Popen([sys.executable, "-m", "rq", "ingest", *map(str, where)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "ix" / ".lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        time.sleep(0.05)
    assert lock.read_text().strip() == str(first.pid), "the first ingest never held the lock"
    second = subprocess.run([sys.executable, "-m", "rq", "ingest", *map(str, where)], env=env,
                            capture_output=True, text=True, timeout=120)
    first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"rq: waiting for another rq (pid {first.pid}) to finish" in second.stderr
    assert "1 fresh (skipped)" in second.stderr  # it ran after the first, not beside it


def test_markup_in_a_url_and_in_a_status_line_ends_in_a_recorded_failure(tmp_path, http_server):
    odd = http_server.route("/odd/[/x]", static(b"gone", status=410))
    oops = http_server.route("/odd/oops", raw_status(b"HTTP/1.1 404 [/oops] gone"))
    queue = tmp_path / "q.md"
    queue.write_text(f"# Odd\n\n## Links\n- [ ] <{odd}>\n- [ ] [Oops]({oops})\n")
    where = ["--queue", queue, "--index", tmp_path / "ix"]
    run = rq_cli("ingest", "--no-index", "--allow-private", *where)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "failed (not_found): 2" in run.stderr and "/odd/[/x]" in run.stderr
    status = rq_cli("status", *where)
    assert "failed: not_found 2" in status.stdout
    listing = rq_cli("ls", *where)
    assert listing.stdout.count("failed: not_found") == 2 and "[/x]" in listing.stdout
    shown = rq_cli("show", oops, *where)
    assert "HTTP 404 [/oops] gone" in shown.stdout
    assert "Traceback" not in status.stderr + listing.stderr + shown.stderr
