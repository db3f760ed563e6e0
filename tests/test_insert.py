"""Adding an item to the queue file (issue 16): one new line at the end of its section's list,
in the file's own bullet, indent, checkbox spelling and line endings; every other byte kept."""

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rq.errors import RqError
from rq.queue import edit
from rq.queue.insert import NewItem, insert_items
from rq.queue.parse import parse_queue


def added_lines(before: bytes, after: bytes) -> list[bytes]:
    """The lines ``after`` adds to ``before``, asserting that every line of ``before`` is still
    there, in order and byte for byte (only additions)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    added, i = [], 0
    for line in new:
        if i < len(old) and line == old[i]:
            i += 1
        else:
            added.append(line)
    assert i == len(old), "a line of the file changed"
    return added


def add(raw: bytes, url: str, title: str, section: tuple, **kw) -> bytes:
    return insert_items(parse_queue(raw), [NewItem(url, title, section, **kw)])


@pytest.mark.parametrize("raw, section, read, expected", [
    # the file's bullet, checkbox spelling and the gap after the bullet
    (b"# Q\n\n## A\n* [ ] [One](https://a.com/1)\n* [x] [Two](https://a.com/2)\n\n## B\n- [ ] [Three](https://b.com)\n",
     ("A",), False, b"* [ ] [New](https://n.com/p)\n"),
    (b"## A\n+ [] [One](https://a.com/1)\n+ [X] [Two](https://a.com/2)\n", ("A",), True,
     b"+ [X] [New](https://n.com/p)\n"),
    (b"## A\n-   [] [One](https://a.com/1)\n", ("A",), False, b"-   [] [New](https://n.com/p)\n"),
    # numbered lists count on; a list numbered "1." throughout stays so
    (b"## A\n1. [One](https://a.com/1)\n2. [Two](https://a.com/2)\n", ("A",), False, b"3. [New](https://n.com/p)\n"),
    (b"## A\n1) [One](https://a.com/1)\n1) [Two](https://a.com/2)\n", ("A",), False, b"1) [New](https://n.com/p)\n"),
    # no checkboxes in the file: none added unless the item is read
    (b"## A\n- [One](https://a.com/1)\n", ("A",), False, b"- [New](https://n.com/p)\n"),
    (b"## A\n- [One](https://a.com/1)\n", ("A",), True, b"- [x] [New](https://n.com/p)\n"),
    # an indented list keeps its indent; CRLF files get CRLF
    (b"## A\r\n  * [ ] [One](https://a.com/1)\r\n", ("A",), False, b"  * [ ] [New](https://n.com/p)\r\n"),
    # a bare checkbox line
    (b"## A\n[ ] [One](https://a.com/1)\n", ("A",), False, b"[ ] [New](https://n.com/p)\n"),
])
def test_the_new_line_copies_the_list_it_joins(raw, section, read, expected):
    after = add(raw, "https://n.com/p", "New", section, read=read)
    assert added_lines(raw, after) == [expected]
    new = next(r for r in parse_queue(after).resources if r.url == "https://n.com/p")
    assert new.section_path == section and new.state == ("read" if read else "unread")


def test_it_goes_after_the_last_item_its_nested_items_and_continuation_lines():
    raw = (b"## A\n- [ ] [One](https://a.com/1)\n  - [ ] [Child](https://a.com/c)\n  a note that goes on\n"
           b"lazily continued\n\nA paragraph after the list.\n\n## B\n- [ ] [B](https://b.com)\n")
    after = add(raw, "https://n.com/p", "New", ("A",))
    assert after.splitlines()[4:6] == [b"lazily continued", b"- [ ] [New](https://n.com/p)"]
    assert added_lines(raw, after) == [b"- [ ] [New](https://n.com/p)\n"]


def test_a_file_without_a_final_newline_keeps_that_habit():
    raw = b"## A\n- [ ] [One](https://a.com/1)"
    after = add(raw, "https://n.com/p", "New", ("A",))
    assert after == b"## A\n- [ ] [One](https://a.com/1)\n- [ ] [New](https://n.com/p)"


def test_an_empty_section_gets_the_files_usual_item():
    raw = b"# Q\n\n## A\n\n* [ ] [One](https://a.com/1)\n\n## Empty\n\n## C\n* [x] [C](https://c.com)\n"
    after = add(raw, "https://n.com/p", "New", ("Empty",), note="why: a note")
    assert b"## Empty\n* [ ] [New](https://n.com/p) - why: a note\n\n## C" in after
    assert added_lines(raw, after) == [b"* [ ] [New](https://n.com/p) - why: a note\n"]


def test_a_new_heading_comes_at_the_end_at_its_siblings_level():
    raw = b"# Q\n\n## A\n\n- [ ] [One](https://a.com/1)\n\n### A1\n\n- [ ] [Deep](https://a.com/d)\n\n## B\n\n- [ ] [B](https://b.com)\n"
    after = add(raw, "https://n.com/p", "New", ("Fresh topic",))
    assert after.endswith(b"- [ ] [B](https://b.com)\n\n## Fresh topic\n\n- [ ] [New](https://n.com/p)\n")
    under = add(raw, "https://n.com/q", "Under A", ("A", "A2"))
    # at the end of A's part (after A1), at A1's level
    assert b"- [ ] [Deep](https://a.com/d)\n\n### A2\n\n- [ ] [Under A](https://n.com/q)\n\n## B" in under
    assert parse_queue(under).resources[-2].section_path == ("A", "A2")


def test_several_items_and_nested_new_headings_in_one_go():
    raw = b"## A\n- [One](https://a.com/1)\n"
    items = [NewItem("https://n.com/1", "Deep", ("F", "G")), NewItem("https://n.com/2", "In A", ("A",)),
             NewItem("https://n.com/3", "In F", ("F",)), NewItem("https://n.com/4", "Also A", ("A",))]
    after = insert_items(parse_queue(raw), items)
    assert after == (b"## A\n- [One](https://a.com/1)\n- [In A](https://n.com/2)\n- [Also A](https://n.com/4)\n"
                     b"\n## F\n- [In F](https://n.com/3)\n\n### G\n- [Deep](https://n.com/1)\n")


def test_titles_and_urls_that_would_break_the_link_are_made_safe():
    raw = b"## A\n- [One](https://a.com/1)\n"
    after = add(raw, "https://en.wikipedia.org/wiki/Foo_(bar)", "A [bracketed]\ntitle", ("A",))
    new = parse_queue(after).resources[-1]
    assert new.url == "https://en.wikipedia.org/wiki/Foo_(bar)" and new.title == "A (bracketed) title"
    odd = parse_queue(add(raw, "https://a.com/x y(", "T", ("A",))).resources[-1]
    assert odd.url == "https://a.com/x%20y%28"


def test_an_html_list_is_refused_not_broken():
    raw = b"## A\n<ul>\n<li><a href=\"https://a.com/1\">One</a></li>\n</ul>\n"
    with pytest.raises(RqError, match="HTML"):
        add(raw, "https://n.com/p", "New", ("A",))


def test_the_files_encoding_and_bom_are_kept():
    raw = b"\xff\xfe" + "## Café\n- [ ] [Un](https://a.com/1)\n".encode("utf-16-le")
    after = add(raw, "https://n.com/p", "Nouveau thé", ("Café",))
    assert after.startswith(b"\xff\xfe")
    assert after.decode("utf-16").endswith("- [ ] [Nouveau thé](https://n.com/p)\n")


_bullets = st.sampled_from(["-", "*", "+", "1.", "3)"])
_boxes = st.sampled_from(["[ ] ", "[x] ", "[] ", "[X] ", ""])
_eols = st.sampled_from(["\n", "\r\n"])


@st.composite
def queues(draw):
    eol = draw(_eols)
    lines, sections, n = [], [], 0
    if draw(st.booleans()):
        lines += ["# Title", ""]
    for s in range(draw(st.integers(1, 4))):
        name = f"Section {s}"
        sections.append((name,))
        lines.append(f"{'#' * draw(st.integers(2, 3))} {name}")
        if draw(st.booleans()):
            lines.append("")
        bullet, indent = draw(_bullets), draw(st.sampled_from(["", "  "]))
        for _ in range(draw(st.integers(0, 3))):
            n += 1
            lines.append(f"{indent}{bullet} {draw(_boxes)}[Item {n}](https://x.com/{n}) note {n}")
            if draw(st.integers(0, 4)) == 0:
                lines.append(f"{indent}    - [Child {n}](https://x.com/c{n})")
        lines += [""] * draw(st.integers(0, 2))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text.encode(), [s.path for s in parse_queue(text.encode()).sections], eol


@settings(max_examples=150, deadline=None)
@given(queues(), st.data())
def test_any_queue_gets_exactly_one_new_line_in_its_own_line_ending(drawn, data):
    raw, sections, eol = drawn
    if b"\n" not in raw:
        eol = "\n"  # a file of one line shows no habit: rq writes "\n"
    section = data.draw(st.sampled_from(sections))
    read = data.draw(st.booleans())
    after = add(raw, "https://new.example/p", "New item", section, read=read)
    if not raw.endswith(b"\n") and after.endswith(b"(https://new.example/p)"):
        # added after the last line, which had no line ending: it gains one, and the new line has none
        assert after[:len(raw)] == raw and after[len(raw):len(raw) + len(eol)] == eol.encode()
        assert after.count(b"\n") == raw.count(b"\n") + 1
    else:
        added = added_lines(raw, after)
        assert len(added) == 1 and added[0].endswith(eol.encode()) and not added[0].endswith(b"\r\r\n")
    new = [r for r in parse_queue(after).resources if r.url == "https://new.example/p"]
    assert len(new) == 1 and new[0].section_path == section
    assert new[0].state == ("read" if read else "unread")
    assert len(parse_queue(after).resources) == len(parse_queue(raw).resources) + 1


def test_edit_file_keeps_a_save_that_lands_while_rq_writes(tmp_path, monkeypatch):
    path = tmp_path / "q.md"
    path.write_bytes(b"## A\n- [ ] [One](https://a.com/1)\n\n## B\n- [ ] [Two](https://b.com/2)\n")
    saved = b"## A\n- [ ] [One](https://a.com/1)\n\n## B\n- [ ] [Two](https://b.com/2)\n- [ ] [Typed](https://t.com)\n"
    real_read, calls = edit._read, {"n": 0}

    def editor_saves_meanwhile(target):
        calls["n"] += 1
        if calls["n"] == 3:  # rq's look right before its rename: the editor has just saved
            path.write_bytes(saved)
        return real_read(target)

    monkeypatch.setattr(edit, "_read", editor_saves_meanwhile)
    change = lambda q: insert_items(q, [NewItem("https://n.com/p", "New", ("A",))])
    result = edit.edit_file(path, change)
    text = path.read_bytes()
    assert b"[Typed](https://t.com)" in text and b"- [ ] [New](https://n.com/p)\n\n## B" in text
    assert result.changed and result.warnings


def test_edit_file_dry_run_writes_nothing(tmp_path):
    path = tmp_path / "q.md"
    path.write_bytes(b"## A\n- [ ] [One](https://a.com/1)\n")
    stamp = path.stat().st_mtime_ns
    time.sleep(0.01)
    result = edit.edit_file(path, lambda q: insert_items(q, [NewItem("https://n.com/p", "New", ("A",))]),
                            dry_run=True)
    assert result.changed and path.stat().st_mtime_ns == stamp
    assert path.read_bytes() == result.before


def test_two_adds_at_once_both_land(tmp_path):
    path = tmp_path / "q.md"
    path.write_bytes(b"## A\n- [ ] [One](https://a.com/1)\n")
    def adding(url):
        return lambda q: insert_items(q, [NewItem(url, "T", ("A",))])

    threads = [threading.Thread(target=edit.edit_file, args=(path, adding(f"https://n.com/{i}"))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.url for r in parse_queue(path.read_bytes()).resources} == {"https://a.com/1"} | {
        f"https://n.com/{i}" for i in range(4)}
