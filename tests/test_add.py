"""`rq add` (issue 16) as a reader runs it: a served page is fetched, filed in the section its
text belongs to with a one-line diff, indexed by embedding only its own passages, and found by
`rq search` at once; a link already there, a dry run, weak evidence and a new heading."""

import json
import os
import subprocess
import sys

import pytest

from support.http import static
from support.routes import page

FETCH_ENV = {"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}

TOPICS = {
    "MLOps": [
        ("Feature stores", "A feature store keeps training and serving features consistent across pipelines."),
        ("Model monitoring", "Monitoring deployed models catches data drift and failing feature pipelines."),
        ("ML pipelines in production", "Orchestrated training pipelines retrain, validate and deploy models."),
    ],
    "Recommender systems": [
        ("Real-time recommendations", "Real-time recommender systems update candidate items per user session."),
        ("Collaborative filtering", "Collaborative filtering recommends items that similar users liked."),
        ("Two-tower retrieval for recsys", "Two-tower models retrieve candidate items for recommendation feeds."),
    ],
    "Engineering culture": [
        ("Code review habits", "Good code reviews are small, prompt and kind to the author of the change."),
        ("Writing design docs", "A design doc lets engineers agree on a plan before writing the code."),
        ("On-call without burnout", "Healthy on-call rotations share the pager and fix noisy alerts."),
    ],
}


def rq(*args, env_extra=None):
    env = {**os.environ, **FETCH_ENV, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


def serve(http_server, slug: str, title: str, text: str) -> str:
    return http_server.route(f"/add/{slug}", static(page(title, *[text] * 6, nav="", footer=None)))


@pytest.fixture(scope="module")
def served(http_server):
    urls = {}
    for items in TOPICS.values():
        for title, text in items:
            urls[title] = serve(http_server, title.lower().replace(" ", "-"), title, text)
    urls["new recsys"] = serve(http_server, "session-recs", "Session-based recommendation with transformers",
                               "Session-based recommender systems predict the next item a user clicks "
                               "from the items of the current session; candidate retrieval and ranking "
                               "of items for each user, as in collaborative filtering.")
    urls["gardening"] = serve(http_server, "tomatoes", "Growing tomatoes on a balcony",
                              "Tomatoes need six hours of sun, deep pots and regular watering; pinch the "
                              "side shoots and feed them weekly once the first fruit sets.")
    return urls


@pytest.fixture
def library(tmp_path, served):
    """A queue of three sections of three served pages each, ingested and indexed once."""
    lines = ["# Reading", ""]
    for section, items in TOPICS.items():
        lines += [f"## {section}", ""]
        lines += [f"- [ ] [{title}]({served[title]})" for title, _ in items]
        lines.append("")
    path = tmp_path / "reading.md"
    path.write_bytes("\r\n".join(lines).encode())  # CRLF: the new line must be CRLF too
    index = tmp_path / "ix"
    proc = rq("ingest", "--queue", path, "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    return path, index, json.loads(proc.stdout)["index"]


def added_lines(before: bytes, after: bytes) -> list[bytes]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert [line for line in new if line in old] == old  # every old line kept, in order
    return [line for line in new if line not in old]


def test_add_files_a_served_page_in_its_section_and_search_finds_it(library, served):
    path, index, before_index = library
    before = path.read_bytes()
    proc = rq("add", served["new recsys"], "--note", "via a colleague", "--queue", path, "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["section"] == ["Recommender systems"] and answer["chosen_by"] == "strong evidence"
    assert answer["title"] == "Session-based recommendation with transformers"
    assert [c["section"] for c in answer["candidates"]][0] == ["Recommender systems"] and len(answer["candidates"]) == 3
    assert answer["candidates"][0]["nearest"]  # the evidence: the section's closest items
    assert added_lines(before, path.read_bytes()) == [
        f"- [ ] [Session-based recommendation with transformers]({served['new recsys']}) - via a colleague\r\n".encode()]
    assert path.read_bytes().index(b"Session-based") < path.read_bytes().index(b"## Engineering culture")
    # Only the new link's texts were embedded (its passages, dense windows and title/note entry, less
    # any whose text some other passage already had); every text embedded before came from the cache.
    report = answer["index"]
    new_passages = report["passages"] - before_index["passages"]
    assert new_passages >= 2  # its meta passage and its page's text
    assert 1 <= report["embedded"] <= new_passages + 1 + (report["windows"] - before_index["windows"])
    assert report["cached"] >= before_index["embedded"] + before_index["cached"]
    hits = json.loads(rq("search", "session-based next item prediction", "--queue", path, "--index", index,
                         "--json").stdout)["results"]
    assert hits[0]["title"] == "Session-based recommendation with transformers"


def test_weak_evidence_asks_and_yes_takes_the_best(library, served):
    path, index, _ = library
    before = path.read_bytes()
    proc = rq("add", served["gardening"], "--queue", path, "--index", index)
    assert proc.returncode == 2, proc.stderr
    assert "evidence for a section is weak" in proc.stderr and "--yes" in proc.stderr
    assert proc.stdout.count("close to:") >= 3  # the three candidates were shown, with their evidence
    assert path.read_bytes() == before
    proc = rq("add", served["gardening"], "--yes", "--dry-run", "--queue", path, "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["chosen_by"] == "--yes" and answer["dry_run"] and path.read_bytes() == before
    assert answer["diff"].count("\n+") == 2  # the +++ header and the one new line


def test_dry_run_prints_the_diff_and_a_known_link_changes_nothing(library, served):
    path, index, _ = library
    before = path.read_bytes()
    proc = rq("add", served["new recsys"], "--section", "mlops", "--dry-run", "--read", "--queue", path,
              "--index", index)
    assert proc.returncode == 0, proc.stderr
    assert f"+- [x] [Session-based recommendation with transformers]({served['new recsys']})" in proc.stdout
    assert "would add" in proc.stdout and "nothing was written" in proc.stdout
    assert path.read_bytes() == before
    # The same page written another way (tracking parameter, trailing slash) is already there.
    known = served["Feature stores"] + "/?utm_source=newsletter"
    proc = rq("add", known, "--queue", path, "--index", index)
    assert proc.returncode == 0 and "already in the queue: Feature stores" in proc.stdout
    assert "MLOps, line" in proc.stdout and path.read_bytes() == before


def test_a_new_heading_only_with_an_explicit_section_and_a_dead_link_goes_by_its_title(library):
    path, index, _ = library
    proc = rq("add", "http://nonexistent.invalid/essay", "--title", "An essay on reading", "--section",
              "Essays", "--queue", path, "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["chosen_by"] == "new heading" and not answer["fetched"] and "could not fetch" in proc.stderr
    assert path.read_bytes().endswith(b"## Essays\r\n\r\n- [ ] [An essay on reading](http://nonexistent.invalid/essay)\r\n")
    listed = json.loads(rq("ls", "--queue", path, "--index", index, "--json").stdout)
    assert any(r["title"] == "An essay on reading" and r["section"] == "Essays" for r in listed)


def test_add_refuses_the_embedded_sample_and_non_web_links(tmp_path):
    proc = rq("add", "https://example.com/x", "--section", "A", env_extra={"RQ_QUEUE": ""})
    assert proc.returncode == 2 and "your own queue file" in proc.stderr
    path = tmp_path / "q.md"
    path.write_text("## A\n- [ ] [One](https://a.com/1)\n")
    proc = rq("add", "ftp://example.com/x", "--queue", path, "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout)["error"]["code"] == 2
