"""`rq import` (issue 16): each export format brings a realistic fixture into a queue under the
right headings, with the right read state, duplicates skipped and bad links refused with reasons.

The fixtures in tests/fixtures/exports were written by hand in each service's own layout:
* bookmarks-chrome.html: Chrome's (and Edge's) Netscape export: <DT><H3 PERSONAL_TOOLBAR_FOLDER>,
  nested <DL><p>, ADD_DATE in seconds, ICON data URIs, a javascript: bookmarklet;
* bookmarks-firefox.html: Firefox's: a CSP <meta>, "Bookmarks Menu" as <H1>, TAGS="a,b" and a <DD>
  description after a link, UNFILED_BOOKMARKS_FOLDER; Safari writes the same markup without TAGS;
* pocket.csv: Pocket's export (title,url,time_added,tags,status; tags joined by "|", status
  "unread" or "archive");
* instapaper.csv: Instapaper's (URL,Title,Selection,Folder,Timestamp; CRLF; Folder "Unread",
  "Archive" or the reader's own folder);
* raindrop.csv: Raindrop.io's (id,title,note,excerpt,url,folder,tags,created,cover,highlights,
  favorite; folder paths "A/B", "Unsorted", ISO times);
* feeds.opml: an OPML 2.0 subscription list (outline folders, rss outlines with xmlUrl/htmlUrl,
  a type="link" outline with url);
* omnivore.json: Omnivore's export (a list of items with slug, state "Archived"/"Succeeded",
  labels, savedAt);
* karakeep.json: Karakeep's (formerly Hoarder) export ({"bookmarks": [...]}, content.type "link"
  or "text", createdAt in seconds, archived);
* urls.txt: a plain list, with a comment, a blank line, ftp and localhost links.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rq.errors import UsageError
from rq.queue.importers import plan_import, read_export
from rq.queue.insert import insert_items
from rq.queue.parse import parse_queue

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
QUEUE = (b"# Reading\n\n## MLOps\n\n- [ ] [Feature stores](https://www.featurestore.org/)\n\n"
         b"## Engineering culture\n\n- [x] [Code review](https://google.github.io/eng-practices/review/)\n")


def imported(name: str, fmt: str = "auto", queue: bytes = QUEUE):
    kind, entries = read_export((FIXTURES / name).read_bytes(), fmt)
    before = parse_queue(queue)
    plan = plan_import(before, kind, entries)
    after = insert_items(before, plan.items)
    old, new_lines = queue.splitlines(keepends=True), iter(after.splitlines(keepends=True))
    assert all(line in new_lines for line in old)  # every existing line kept, in order, byte for byte
    new = parse_queue(after)
    by_url = {r.url: r for r in new.resources}
    return kind, plan, by_url, after


def reasons(plan, status):
    return {o.url: o.reason for o in plan.outcomes if o.status == status}


def test_chrome_bookmarks_folders_become_headings():
    kind, plan, items, after = imported("bookmarks-chrome.html")
    assert kind == "netscape"
    assert items["https://martinfowler.com/articles/cd4ml.html"].section_path == ("Bookmarks bar",)
    assert items["https://www.pinecone.io/learn/series/faiss/"].section_path == ("Bookmarks bar", "Recsys & search")
    assert b"\n## Bookmarks bar\n\n" in after and b"\n### Recsys & search\n\n" in after  # siblings' level, nested
    assert "saved 2023-11-14" in items["https://martinfowler.com/articles/cd4ml.html"].note  # ADD_DATE kept
    assert list(reasons(plan, "duplicate").values()) == ["listed earlier in the import"]  # the utm_source copy
    refused = reasons(plan, "refused")
    assert refused["javascript:alert(document.title)"].startswith("not an http(s) link")
    assert "private" in refused["http://192.168.1.1/admin"]


def test_firefox_bookmarks_keep_tags_and_descriptions():
    kind, plan, items, _ = imported("bookmarks-firefox.html")
    attention = items["https://arxiv.org/abs/1706.03762"]
    assert kind == "netscape" and attention.section_path == ("Bookmarks",)  # a link outside any folder
    assert attention.note == "The transformer paper · tags: papers, transformers · saved 2023-11-14"
    assert items["https://jalammar.github.io/illustrated-transformer/"].section_path == ("Other Bookmarks",)
    assert items["https://support.mozilla.org/products/firefox"].section_path == ("Mozilla Firefox",)


def test_pocket_archive_is_read_and_a_tag_that_names_a_section_files_it_there():
    kind, plan, items, _ = imported("pocket.csv")
    assert kind == "pocket"
    transformer = items["https://jalammar.github.io/illustrated-transformer/"]
    assert transformer.state == "read" and transformer.section_path == ("From Pocket",)
    assert transformer.note == "tags: transformers, nlp · saved 2022-04-15"
    rules = items["https://developers.google.com/machine-learning/guides/rules-of-ml"]
    assert rules.state == "unread" and rules.title == "Rules of ML: Best Practices, by Google"
    # featurestore.org is in the queue already (tag MLOps would have filed it there)
    assert reasons(plan, "duplicate") == {"https://www.featurestore.org/": "already in the queue (line 5)"}
    assert reasons(plan, "refused") == {"not-a-url": "not an http(s) link (no scheme)"}


def test_instapaper_folders_and_archive():
    kind, plan, items, _ = imported("instapaper.csv")
    assert kind == "instapaper"
    great = items["https://www.paulgraham.com/greatwork.html"]
    assert great.state == "unread" and great.section_path == ("From Instapaper",)
    assert great.note.startswith("If you collected lists of techniques")  # the selection
    assert items["https://danluu.com/productivity-velocity/"].state == "read"
    # the reader's own folder is a heading, here one the queue already has
    assert items["https://sre.google/sre-book/table-of-contents/"].section_path == ("Engineering culture",)


def test_raindrop_folder_paths_and_tags():
    kind, plan, items, after = imported("raindrop.csv")
    assert kind == "raindrop"
    vector = items["https://superlinked.com/vector-db-comparison"]
    assert vector.section_path == ("Research", "Search")
    assert vector.note == "Good table of options · tags: vector-search, databases · saved 2024-02-01"
    assert items["https://developers.google.com/machine-learning/guides/rules-of-ml/"].section_path == ("From Raindrop",)
    chip = items["https://huyenchip.com/2022/01/02/real-time-machine-learning-challenges-and-solutions.html"]
    assert chip.section_path == ("MLOps",)  # its tag names a section
    assert after.index(b"huyenchip") < after.index(b"## Engineering culture")


def test_opml_outlines():
    kind, plan, items, _ = imported("feeds.opml")
    assert kind == "opml"
    assert items["https://eugeneyan.com/"].section_path == ("ML blogs",)
    assert items["https://lilianweng.github.io/"].title == "Lil'Log"
    assert items["https://developers.google.com/machine-learning/guides/rules-of-ml"].section_path == ("From OPML",)


def test_omnivore_and_karakeep_json():
    kind, plan, items, _ = imported("omnivore.json")
    assert kind == "omnivore"
    great = items["https://paulgraham.com/greatwork.html"]
    assert great.state == "read" and great.note == "Paul Graham's essay · tags: essays · saved 2023-07-05"
    assert items["https://eugeneyan.com/writing/llm-patterns/"].state == "unread"
    kind, plan, items, _ = imported("karakeep.json")
    assert kind == "karakeep"
    drift = items["https://evidentlyai.com/ml-in-production/data-drift"]
    assert drift.section_path == ("MLOps",) and drift.note == "drift explainer · tags: monitoring · saved 2024-05-29"
    assert items["https://www.hopsworks.ai/dictionary/two-tower-embedding-model"].state == "read"
    assert reasons(plan, "refused") == {"": "not an http(s) link (no scheme)"}  # a text note, no link


def test_a_plain_list_of_urls():
    kind, plan, items, _ = imported("urls.txt")
    assert kind == "urls"
    assert items["https://simonwillison.net/2023/Aug/3/weird-world-of-llms/"].section_path == ("Imported links",)
    assert reasons(plan, "duplicate") == {"https://www.featurestore.org": "already in the queue (line 5)"}
    assert set(reasons(plan, "refused")) == {"ftp://files.example.com/paper.pdf", "http://localhost:8080/notes"}


def test_xml_bombs_and_wrong_formats_are_refused(tmp_path):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            b'<opml><body><outline text="&lol2;" url="https://a.com"/></body></opml>')
    with pytest.raises(UsageError, match="not a readable OPML"):
        read_export(bomb)
    with pytest.raises(UsageError, match="not a karakeep export"):
        read_export((FIXTURES / "omnivore.json").read_bytes(), "karakeep")


def rq(*args):
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_the_command_dry_run_then_import_reports_each_link(tmp_path):
    queue = tmp_path / "reading.md"
    queue.write_bytes(QUEUE)
    proc = rq("import", FIXTURES / "pocket.csv", "--into", queue, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "+- [x] [The Illustrated Transformer](https://jalammar.github.io/illustrated-transformer/)" in proc.stdout
    assert "would add 3, skipped 1 duplicate(s), refused 1" in proc.stdout and queue.read_bytes() == QUEUE
    proc = rq("import", FIXTURES / "pocket.csv", "--into", queue, "--json")
    answer = json.loads(proc.stdout)
    assert proc.returncode == 0 and (answer["added"], answer["duplicate"], answer["refused"]) == (3, 1, 1)
    assert queue.read_bytes().startswith(QUEUE) and len(parse_queue(queue.read_bytes()).resources) == 5
    again = json.loads(rq("import", FIXTURES / "pocket.csv", "--into", queue, "--json").stdout)
    assert (again["added"], again["duplicate"]) == (0, 4)  # a second import adds nothing
    assert rq("import", tmp_path / "missing.csv", "--into", queue).returncode == 2
