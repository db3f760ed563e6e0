"""The warm engine notices what changes under it (issue 15): a tick made by another program
shows in the very next answer, new links are indexed in the background while the engine
keeps answering, and a `rq ingest` run beside it is picked up."""

import subprocess
import sys
import time

import httpx
import pytest

from support.http import static
from support.routes import page
from support.serving import running_library

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory, http_server, _session_cache):
    with running_library(tmp_path_factory.mktemp("serve-engine"), http_server, _session_cache) as (engine, queue):
        yield engine, queue


def search(engine, q, **params):
    answer = httpx.get(engine.url("/api/search"), params={"q": q, **params}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def wait_for(check, seconds=120):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("not within the time")


def test_a_tick_by_another_program_shows_in_the_next_answer(served):
    engine, queue = served
    text = queue.read_text()
    queue.write_text(text.replace("* [ ] [Code review habits]", "* [x] [Code review habits]"))
    try:
        hits = search(engine, "code reviews", n=1)
        assert hits[0]["title"] == "Code review habits" and hits[0]["state"] == "read"
        assert "Code review habits" not in {s["title"] for s in httpx.get(engine.url("/api/next"),
                                                                        params={"n": 10}, timeout=60).json()["suggestions"]}
        assert "re-indexing" not in engine.log()  # read state alone never forces a re-index
    finally:
        queue.write_text(text)


def test_a_new_link_is_indexed_in_the_background(served):
    engine, queue = served
    with queue.open("a") as fh:
        fh.write("* [ ] [Zanzibar authorization at planet scale](http://nonexistent.invalid/zanzibar)\n")
    # The engine answers at once, from the index it has, while it re-indexes.
    started = time.monotonic()
    assert httpx.get(engine.url("/api/status"), timeout=60).status_code == 200
    first = search(engine, "zanzibar authorization")
    assert time.monotonic() - started < 5
    assert all(h["title"] != "Zanzibar authorization at planet scale" for h in first) or "index reloaded" in engine.log()
    found = wait_for(lambda: [h for h in search(engine, "zanzibar authorization", n=1)
                              if h["title"] == "Zanzibar authorization at planet scale"])
    assert found[0]["fetch"] == "not fetched"
    log = engine.log()
    assert "re-indexing in the background" in log and "index reloaded" in log


def test_an_ingest_beside_the_engine_is_picked_up(served, http_server):
    engine, queue = served
    url = http_server.route("/serve/quokka", static(page("Quokka field notes", *[
        "Quokkas on Rottnest Island forage at night among the scrub."] * 6, nav="", footer=None)))
    with queue.open("a") as fh:
        fh.write(f"* [ ] [Quokka field notes]({url})\n")
    proc = subprocess.run([sys.executable, "-m", "rq", "ingest", "--queue", str(queue), "--index", str(engine.index)],
                          capture_output=True, text=True, timeout=600,
                          env={**engine.env, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"})
    assert proc.returncode == 0, proc.stderr
    # The page's own words (not in its title) find it once the engine has the new index.
    found = wait_for(lambda: [h for h in search(engine, "Rottnest Island scrub at night", n=1)
                              if h["title"] == "Quokka field notes" and h["has_text"]])
    assert "Rottnest" in found[0]["passage"]
