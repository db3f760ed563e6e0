import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rq.errors import QueueError
from rq.paths import embedded_queue_path
from rq.queue.parse import parse_queue, read_queue
from rq.queue.ids import resource_id
from rq.queue.urls import fetch_url, normalize_url

LISTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "lists"

VARIED = """# My Queue

## Python
* [x] [Read One](https://example.com/one) - a note
- [ ] [Unread Two](https://example.com/two)
+ [] [Unread Three](https://example.com/three)
[X] [Bare Box](https://example.com/four)
1. [Numbered](https://example.com/five) `Company` `2020`
* https://example.com/bare-url
* Talk about things - https://example.com/titled-bare
* <https://example.com/autolink>
* <a href="https://example.com/html">Html Anchor</a>
* [Two Links](https://example.com/six) ([Part 2](https://example.com/six-part-2))
* [![badge](https://img.shields.io/x.svg)](https://example.com/badge-only)
* [Tool](https://example.com/tool) ![](https://img.shields.io/github/stars/x.svg) - does tool things
  continued note line

### Deeper
  * [Nested](https://example.com/nested)

## Empty Section

## Table of contents
- [Python](#python)
- [Local file](./CONTRIBUTING.md)

```
* [In A Fence](https://example.com/fenced)
```
<!-- * [Commented](https://example.com/commented) -->

## Dupes
* [One Again](https://EXAMPLE.com/one/?utm_source=x#frag)
"""


def parse(text: str):
    return parse_queue(text.encode("utf-8"))


def test_varied_items_are_found_with_title_state_note_and_section():
    q = parse(VARIED)
    by_url = {r.url: r for r in q.resources}
    assert q.title == "My Queue"
    one = by_url["https://example.com/one"]
    assert (one.title, one.state, one.note, one.section_path) == ("Read One", "read", "a note", ("Python",))
    assert by_url["https://example.com/two"].state == "unread"
    assert by_url["https://example.com/three"].state == "unread"
    assert by_url["https://example.com/four"].state == "read"
    assert by_url["https://example.com/five"].note == "Company 2020"
    assert by_url["https://example.com/five"].state is None
    assert by_url["https://example.com/titled-bare"].title == "Talk about things"
    assert "https://example.com/bare-url" in by_url
    assert "https://example.com/autolink" in by_url
    assert by_url["https://example.com/html"].title == "Html Anchor"
    assert by_url["https://example.com/six"].extra_links == ("https://example.com/six-part-2",)
    assert by_url["https://example.com/tool"].note == "does tool things continued note line"
    assert by_url["https://example.com/nested"].section_path == ("Python", "Deeper")


def test_badges_anchors_fences_and_comments_are_not_resources():
    urls = {r.url for r in parse(VARIED).resources}
    assert not any("shields.io" in u or "badge-only" in u for u in urls)
    assert not any(u.startswith("#") or u.startswith("./") for u in urls)
    assert "https://example.com/fenced" not in urls
    assert "https://example.com/commented" not in urls


def test_same_url_twice_is_one_resource_with_every_place_and_a_warning():
    q = parse(VARIED)
    one = [r for r in q.resources if r.url == "https://example.com/one"]
    assert len(one) == 1
    assert [p.line_no for p in one[0].places] == [4, 33]
    assert any(w.line_no == 33 and "same link as line 4" in w.message for w in q.warnings)


def test_empty_sections_are_kept():
    q = parse(VARIED)
    assert ("Empty Section",) in [s.path for s in q.sections]


def test_checkbox_without_link_is_reported_with_its_line_number():
    q = parse("# Q\n\n## A\n[]\n* [x] [T](https://e.com/t)\n")
    assert [(w.line_no, "without a link" in w.message) for w in q.warnings] == [(4, True)]


def test_ids_are_stable_when_the_file_is_edited_elsewhere():
    before = {r.url: r.id for r in parse(VARIED).resources}
    edited = "# Other title\n\nintro text\n\n" + VARIED.replace("## Python", "## Renamed")
    after = {r.url: r.id for r in parse(edited).resources}
    assert before == after


def test_url_normalisation_and_arxiv_mapping():
    assert normalize_url("HTTP://Example.com:80/a/?utm_source=x&b=2&a=1#top") == "https://example.com/a?a=1&b=2"
    assert resource_id("http://example.com/a/") == resource_id("https://example.com/a")
    assert fetch_url("https://arxiv.org/abs/1703.03924") == "https://arxiv.org/pdf/1703.03924"
    assert fetch_url("https://arxiv.org/abs/1703.03924v2") == "https://arxiv.org/pdf/1703.03924"
    assert fetch_url("https://example.com/abs/1") == "https://example.com/abs/1"


def test_round_trip_is_byte_identical_for_crlf_bom_and_no_final_newline():
    raw = b"\xef\xbb\xbf# Q\r\n\r\n* [ ] [T](https://e.com/t)\r\n\t* [x] [U](https://e.com/u)"
    q = parse_queue(raw)
    assert q.to_bytes() == raw
    assert [r.state for r in q.resources] == ["unread", "read"]


def test_non_utf8_bytes_round_trip():
    raw = "# Q\n* [Caf\xe9](https://e.com/c)\n".encode("latin-1")
    q = parse_queue(raw)
    assert q.to_bytes() == raw
    assert len(q.resources) == 1


def test_embedded_default_parses():
    q = read_queue(embedded_queue_path())
    titles = [r.title for r in q.resources]
    assert "Real Time Recsys" in titles
    assert len(q.resources) == 15
    assert q.to_bytes() == embedded_queue_path().read_bytes()


def test_missing_and_binary_queue_files_are_clear_errors(tmp_path):
    with pytest.raises(QueueError, match="no such queue file"):
        read_queue(tmp_path / "nope.md")
    png = tmp_path / "image.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(QueueError, match="not a Markdown file"):
        read_queue(png)
    with pytest.raises(QueueError, match="folder"):
        read_queue(tmp_path)


@pytest.mark.parametrize("text", [
    "[" * 50_000 + "](https://e.com/x)",
    "* " + "[" * 50_000 + "x" + "]" * 50_000,
    "".join("  " * d + f"* [D{d}](https://e.com/{d})\n" for d in range(1000)),
    "* [Long](https://e.com/long) " + "word " * 2_000_000,
    "* [Nul\x00](https://e.com/nul)\x00\x00\n" * 100,
])
def test_pathological_inputs_parse_quickly(text):
    started = time.monotonic()
    q = parse(text)
    assert time.monotonic() - started < 4
    assert q.to_bytes() == text.encode("utf-8")


_line = st.one_of(
    st.text(max_size=60),
    st.builds(lambda b, box, t, u, n: f"{b} {box}[{t}](https://e.com/{u}) {n}",
              st.sampled_from(["*", "-", "+", "1.", ""]), st.sampled_from(["", "[x] ", "[ ] ", "[] ", "[X] "]),
              st.text(max_size=20), st.text(alphabet="abc/", max_size=8), st.text(max_size=20)),
    st.builds(lambda h, t: f"{'#' * h} {t}", st.integers(1, 6), st.text(max_size=20)),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_line, max_size=30), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_parsing_never_raises_and_round_trips(lines, newline, final_newline):
    text = newline.join(lines) + (newline if final_newline else "")
    raw = text.encode("utf-8", errors="surrogatepass")
    try:
        q = parse_queue(raw)
    except QueueError as exc:  # only a binary-looking file may be refused
        assert "not a Markdown file" in str(exc)
        return
    assert q.to_bytes() == raw


LIST_COUNTS = {
    # file: (list lines holding a web link as counted in data/lists/README.md,
    #        places rq finds; the difference is items like "* Title - https://..." that the README's
    #        [..](http..) rule misses but a reader would call resources)
    "eugeneyan__applied-ml.md": (544, 544),
    "visenger__awesome-mlops.md": (504, 504),
    "EthicalML__awesome-production-machine-learning.md": (548, 548),
    "creyesp__Awesome-recsys.md": (276 + 52, 337),
    "frutik__awesome-search.md": (450 + 8, 460),
    "RaghuHemadri__ML-Reading-List.md": (271, 271),
}


@pytest.mark.skipif(not LISTS.is_dir(), reason="shared data lists not present")
@pytest.mark.parametrize("name", sorted(LIST_COUNTS))
def test_real_lists_parse_with_justified_counts(name):
    q = read_queue(LISTS / name)
    places = sum(len(r.places) for r in q.resources)
    readme_count, expected = LIST_COUNTS[name]
    assert places == expected
    assert places >= readme_count
    assert q.to_bytes() == (LISTS / name).read_bytes()
    assert not any(r.url.startswith("#") for r in q.resources)
    assert all(r.title for r in q.resources)


def _parsed(queue):
    return ([r.__dict__ for r in queue.resources], queue.sections, queue.warnings, queue.title, queue.encoding,
            queue.lines, queue.to_bytes())


def test_a_parsed_queue_is_read_back_from_the_index_folder_until_the_file_changes(tmp_path, monkeypatch):
    import rq.archive.queue_cache as queue_cache

    queue_file = tmp_path / "q.md"
    # duplicates (warning), no-link checkbox (warning), an undecodable byte, nested sections
    queue_file.write_bytes(embedded_queue_path().read_bytes() + b"\n## Odd \xff bytes\n- [ ] [Again](https://github.com/ucbrise/flor)\n"
                           b"- [x] no link here\n")
    cache_dir = tmp_path / "ix"
    cache_dir.mkdir()
    fresh = read_queue(queue_file)
    assert len(fresh.warnings) == 3  # one in the seed itself
    first = queue_cache.read_queue_cached(queue_file, cache_dir)
    assert (cache_dir / queue_cache.CACHE_FILE).is_file()
    monkeypatch.setattr(queue_cache, "parse_queue", lambda *a: pytest.fail("parsed again"))
    again = queue_cache.read_queue_cached(queue_file, cache_dir)
    assert _parsed(again) == _parsed(first) == _parsed(fresh)
    assert again.to_bytes() == queue_file.read_bytes()

    monkeypatch.undo()
    queue_file.write_bytes(queue_file.read_bytes().replace(b"- [ ] [Again]", b"- [x] [Again]"))
    edited = queue_cache.read_queue_cached(queue_file, cache_dir)
    assert _parsed(edited) == _parsed(read_queue(queue_file)) != _parsed(fresh)

    (cache_dir / queue_cache.CACHE_FILE).write_text('{"digest": "x", "resour')
    assert _parsed(queue_cache.read_queue_cached(queue_file, cache_dir)) == _parsed(edited)
