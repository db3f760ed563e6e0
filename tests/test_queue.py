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
    five = by_url["https://example.com/five"]
    assert five.state == "unread" and not five.has_checkbox  # no checkbox: unread
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


def _parses_back_byte_exact_or_is_refused(raw: bytes) -> None:
    """Either the bytes are refused as not Markdown, or they parse with no surrogates and are
    written back exactly."""
    try:
        q = parse_queue(raw)
    except QueueError as exc:
        assert "not a Markdown file" in str(exc)
        return
    assert q.to_bytes() == raw
    assert _no_surrogates(q)


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
    assert len(fresh.warnings) == 4  # one in the seed itself, and the encoding the odd byte made rq guess
    assert fresh.encoding == "cp1252" and str(fresh.warnings[0]).startswith("read as cp1252")
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


# -- encodings ----------------------------------------------------------------------------------

ENCODED = "# Lecture\n\n## Café\n* [ ] [It’s “quoted” — Müller](https://e.com/a) - déjà vu\n* [x] [Zweite](https://e.com/b)\n"


def _no_surrogates(queue) -> bool:
    texts = list(queue.lines) + [s for r in queue.resources for s in (r.title, r.note, r.url, *r.section_path)]
    return not any(0xD800 <= ord(ch) <= 0xDFFF for text in texts for ch in text)


@pytest.mark.parametrize("raw, encoding, note", [
    (ENCODED.encode("cp1252"), "cp1252", "read as cp1252"),
    (b"\xef\xbb\xbf" + ENCODED.encode("utf-8"), "utf-8", None),
    (b"\xff\xfe" + ENCODED.encode("utf-16-le"), "utf-16-le", "byte-order mark"),
    (b"\xfe\xff" + ENCODED.encode("utf-16-be"), "utf-16-be", "byte-order mark"),
    (ENCODED.encode("utf-16-le"), "utf-16-le", "no byte-order mark"),
    (ENCODED.encode("utf-16-be"), "utf-16-be", "no byte-order mark"),
    (b"\xff\xfe\x00\x00" + ENCODED.encode("utf-32-le"), "utf-32-le", "byte-order mark"),
], ids=["cp1252", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-16-le", "utf-16-be", "utf-32-le-bom"])
def test_a_queue_in_another_encoding_reads_right_says_so_and_round_trips(raw, encoding, note):
    q = parse_queue(raw)
    assert q.encoding == encoding
    assert [r.title for r in q.resources] == ["It’s “quoted” — Müller", "Zweite"]
    assert q.resources[0].note == "déjà vu" and q.resources[0].section_path == ("Café",)
    assert q.to_bytes() == raw
    assert _no_surrogates(q)
    notes = [str(w) for w in q.warnings if w.line_no == 0]
    assert notes == ([] if note is None else [notes[0]]) and (note is None or note in notes[0])


def test_one_cp1252_byte_in_a_utf8_file_is_read_as_cp1252_not_as_surrogates():
    raw = b"# Q\n\n* [ ] [It\x92s here](https://e.com/a) - it\x92s good\n"
    q = parse_queue(raw)
    assert q.resources[0].title == "It’s here" and q.resources[0].note == "it’s good"
    assert str(q.warnings[0]) == "read as cp1252 (not UTF-8; guessed from its bytes, save it as UTF-8 to be sure)"
    assert q.to_bytes() == raw and _no_surrogates(q)


def test_latin1_text_reads_right_and_bytes_no_charset_fits_still_round_trip():
    latin = "# Q\n* [Café Müller](https://e.com/c) - Ñandú, señor\n".encode("latin-1")
    q = parse_queue(latin)
    assert (q.resources[0].title, q.resources[0].note) == ("Café Müller", "Ñandú, señor")
    assert q.to_bytes() == latin
    # 0x81 and 0x8d are in no Windows code page a detector trusts: the last resort keeps every byte
    odd = b"# Q\n* [A\x81\x8d\x8f\x90\x9d](https://e.com/a)\n"
    q = parse_queue(odd)
    assert q.to_bytes() == odd and len(q.resources) == 1 and _no_surrogates(q)
    assert "not UTF-8" in str(q.warnings[0])


def test_cp1252_quotes_beside_a_pasted_escape_sequence_still_read_as_quotes():
    # control characters make the detector give up; cp1252 still reads the file exactly
    raw = b"# Q\n\n* [ ] [Caf\xe9 \x1b[1mbold](https://e.com/a) - it\x92s good\n"
    q = parse_queue(raw)
    assert q.resources[0].note == "it\u2019s good" and q.encoding == "cp1252"
    assert q.to_bytes() == raw and _no_surrogates(q)


def test_utf16_without_a_bom_is_not_refused_as_binary(tmp_path):
    path = tmp_path / "q.md"
    path.write_bytes(("# Q\n" + "".join(f"* [ ] [T{i}](https://e.com/{i})\n" for i in range(50))).encode("utf-16-le"))
    q = read_queue(path)
    assert len(q.resources) == 50 and q.encoding == "utf-16-le"


_ENCODINGS = [("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("latin-1", b""), ("utf-16-le", b"\xff\xfe"),
              ("utf-16-be", b"\xfe\xff"), ("utf-16-le", b""), ("utf-16-be", b""), ("utf-32-be", b"\x00\x00\xfe\xff")]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_line, max_size=30), st.sampled_from(["\n", "\r\n"]), st.sampled_from(_ENCODINGS))
def test_every_encoding_round_trips_without_surrogates(lines, newline, encoding):
    codec, bom = encoding
    raw = bom + (newline.join(lines) + newline).encode(codec, errors="replace")
    _parses_back_byte_exact_or_is_refused(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_are_refused_and_round_trip(raw):
    _parses_back_byte_exact_or_is_refused(raw)


def test_the_parse_cache_reads_a_utf16_queue_back_byte_exact(tmp_path, monkeypatch):
    import rq.archive.queue_cache as queue_cache

    queue_file = tmp_path / "q.md"
    queue_file.write_bytes(b"\xfe\xff" + ENCODED.encode("utf-16-be"))
    (tmp_path / "ix").mkdir()
    first = queue_cache.read_queue_cached(queue_file, tmp_path / "ix")
    monkeypatch.setattr(queue_cache, "parse_queue", lambda *a: pytest.fail("parsed again"))
    again = queue_cache.read_queue_cached(queue_file, tmp_path / "ix")
    assert _parsed(again) == _parsed(first)
    assert again.to_bytes() == queue_file.read_bytes() and again.encoding == "utf-16-be"
    assert "byte-order mark" in str(again.warnings[0])


@pytest.mark.parametrize("raw", [
    b"# Q\n\n## Caf\xe9\n* [ ] [It\x92s](https://e.com/a) - caf\xe9\n",
    b"\xff\xfe" + "# Q\n\n## Café\n* [ ] [It’s](https://e.com/a) - café\n".encode("utf-16-le"),
], ids=["cp1252", "utf-16"])
def test_read_commands_on_a_non_utf8_queue_answer_and_status_says_how_it_was_read(tmp_path, raw):
    import json
    import os
    import subprocess
    import sys

    queue_file = tmp_path / "q.md"
    queue_file.write_bytes(raw)

    def rq(*args):
        return subprocess.run([sys.executable, "-m", "rq", *args, "--queue", str(queue_file), "--index",
                               str(tmp_path / "ix")], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})

    listed = rq("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["title"], row["section"]) == ("It’s", "Café")
    status = rq("status")
    assert status.returncode == 0 and "warning: read as" in status.stderr and "not UTF-8" in status.stderr
    for command in (["show", row["id"]], ["health"]):
        proc = rq(*command)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert queue_file.read_bytes() == raw


# -- limits and code blocks -----------------------------------------------------------------------


def test_a_megabyte_title_is_cut_and_an_overlong_url_is_not_a_resource():
    text = ("# Q\n"
            f"* [{'t' * 1_000_000}](https://e.com/long-title)\n"
            f"* [Long URL](https://e.com/{'u' * 5000})\n"
            f"* https://e.com/{'b' * 5000}\n"
            f"* [Fine](https://e.com/fine) {'note ' * 3000}\n"
            "* [Notes](https://e.com/notes) first\n" + "  more words of note\n" * 300)
    q = parse(text)
    by_url = {r.url: r for r in q.resources}
    assert set(by_url) == {"https://e.com/long-title", "https://e.com/fine", "https://e.com/notes"}
    assert len(by_url["https://e.com/long-title"].title) == 500 and by_url["https://e.com/long-title"].title.endswith("…")
    assert len(by_url["https://e.com/fine"].note) == 2000
    assert len(by_url["https://e.com/notes"].note) == 2000
    assert [str(w) for w in q.warnings] == [
        "line 2: title longer than 500 characters; cut to 500",
        "line 3: a link of 5,014 characters (over 4,096) is not read as a resource",
        "line 4: a link of 5,014 characters (over 4,096) is not read as a resource",
        "line 5: note longer than 2,000 characters; cut to 2,000",
        "line 112: note longer than 2,000 characters; cut to 2,000",  # 105 lines of 19 fill it exactly
    ]
    assert q.to_bytes() == text.encode()


def test_indented_code_is_not_items_but_nested_and_loose_list_items_are():
    text = ("# Q\n\n"
            "Install it like this:\n\n"
            "    * [Example](https://e.com/code-example)\n"
            "    * [Another](https://e.com/code-another)\n\n"
            "Some paragraph\n"
            "    * [Continuation](https://e.com/paragraph-continuation)\n\n"
            "* [Parent](https://e.com/parent)\n"
            "    * [Child four spaces](https://e.com/child4)\n\n"
            "  * [Child after a blank line](https://e.com/child-loose)\n\n"
            "    * [Grandchild after a blank line](https://e.com/grandchild-loose)\n"
            "1. [Numbered](https://e.com/numbered)\n\n"
            "    - [Under a number](https://e.com/under-number)\n\n"
            "## Section\n"
            "    * [Right under a heading](https://e.com/under-heading)\n")
    q = parse(text)
    urls = [r.url.rsplit("/", 1)[1] for r in q.resources]
    assert urls == ["parent", "child4", "child-loose", "grandchild-loose", "numbered", "under-number",
                    "under-heading"]
    warnings = [w for w in q.warnings if "code" in w.message]
    assert [w.line_no for w in warnings] == [5, 9]  # once per block, where its first item-like line is
