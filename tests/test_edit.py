import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import rq.queue.edit as edit
from rq.errors import NotFoundError, RqError, UsageError
from rq.queue.parse import parse_queue
from rq.queue.ids import resource_id

UNUSUAL = (b"\xef\xbb\xbf# Queue\r\n"
           b"\r\n"
           b"## Topic\r\n"
           b"\t* [ ] [Tabbed](https://e.com/tabbed)  trailing  \r\n"
           b"* [x] [Done already](https://e.com/done)\r\n"
           b"  - [] [Nested empty](https://e.com/nested)\r\n"
           b"1. [No box](https://e.com/nobox) `Co` `2020`\r\n"
           b"* [ ] [Last](https://e.com/last)")


def diff_bytes(a: bytes, b: bytes) -> tuple[int, bytes, bytes]:
    """Where two byte strings start to differ, and the differing middles."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return start, a[start:len(a) - end], b[start:len(b) - end]


@pytest.fixture
def queue_file(tmp_path):
    path = tmp_path / "queue.md"
    path.write_bytes(UNUSUAL)
    os.chmod(path, 0o640)
    return path


def test_done_changes_only_the_checkbox_character(queue_file):
    result = edit.set_state(queue_file, resource_id("https://e.com/tabbed"), "read")
    after = queue_file.read_bytes()
    assert result.changed and result.lines == [4]
    at, old, new = diff_bytes(UNUSUAL, after)
    assert (old, new) == (b" ", b"x")
    assert after.startswith(b"\xef\xbb\xbf") and after.endswith(b"[Last](https://e.com/last)")
    assert after.count(b"\r\n") == UNUSUAL.count(b"\r\n")
    assert stat.S_IMODE(os.stat(queue_file).st_mode) == 0o640


def test_done_on_an_empty_pair_of_brackets_and_todo_in_the_files_style(queue_file):
    edit.set_state(queue_file, "https://e.com/nested", "read")
    assert b"  - [x] [Nested empty]" in queue_file.read_bytes()
    edit.set_state(queue_file, "https://e.com/done", "unread")
    _, old, new = diff_bytes(UNUSUAL.replace(b"- [] [Nested", b"- [x] [Nested"), queue_file.read_bytes())
    assert (old, new) == (b"x", b" ")  # the file's majority empty box is "[ ]"


def test_an_item_without_a_checkbox_gets_one(queue_file):
    edit.set_state(queue_file, "https://e.com/nobox", "read")
    assert queue_file.read_bytes() == UNUSUAL.replace(b"1. [No box]", b"1. [x] [No box]")
    assert parse_queue(queue_file.read_bytes()).by_id()[resource_id("https://e.com/nobox")].state == "read"


def test_marking_twice_writes_nothing(queue_file):
    first = edit.set_state(queue_file, "https://e.com/done", "read")
    assert not first.changed and queue_file.read_bytes() == UNUSUAL


def test_a_symlinked_queue_stays_a_symlink(queue_file, tmp_path):
    link = tmp_path / "link.md"
    link.symlink_to(queue_file)
    edit.set_state(link, "https://e.com/last", "read")
    assert link.is_symlink()
    assert queue_file.read_bytes().endswith(b"* [x] [Last](https://e.com/last)")


def test_a_hard_linked_queue_gets_a_warning(queue_file, tmp_path):
    os.link(queue_file, tmp_path / "other.md")
    result = edit.set_state(queue_file, "https://e.com/last", "read")
    assert any("hard links" in w for w in result.warnings)


def test_a_concurrent_edit_is_not_lost(queue_file, monkeypatch):
    real_read = edit._read
    calls = {"n": 0}

    def read_then_editor_saves(target):
        calls["n"] += 1
        if calls["n"] == 2:  # the re-check just before replacing: an editor saved meanwhile
            target.write_bytes(b"* [ ] [Inserted above](https://e.com/new)\r\n" + UNUSUAL)
        return real_read(target)

    monkeypatch.setattr(edit, "_read", read_then_editor_saves)
    result = edit.set_state(queue_file, "https://e.com/tabbed", "read")
    after = queue_file.read_bytes()
    assert after.startswith(b"* [ ] [Inserted above]")
    assert b"\t* [x] [Tabbed]" in after
    assert any("changed while" in w for w in result.warnings)


def test_an_item_removed_concurrently_stops_without_writing(queue_file, monkeypatch):
    real_read = edit._read
    calls = {"n": 0}
    shrunk = UNUSUAL.replace(b"\t* [ ] [Tabbed](https://e.com/tabbed)  trailing  \r\n", b"")

    def read_then_remove(target):
        calls["n"] += 1
        if calls["n"] == 2:
            target.write_bytes(shrunk)
        return real_read(target)

    monkeypatch.setattr(edit, "_read", read_then_remove)
    with pytest.raises(RqError, match="no longer in the queue"):
        edit.set_state(queue_file, "https://e.com/tabbed", "read")
    assert queue_file.read_bytes() == shrunk


def test_unknown_and_ambiguous_references(queue_file):
    with pytest.raises(NotFoundError):
        edit.set_state(queue_file, "zzzzzz", "read")
    with pytest.raises(NotFoundError):
        edit.set_state(queue_file, "https://e.com/not-there", "read")
    with pytest.raises(UsageError):
        edit.set_state(queue_file, "  ", "read")
    assert queue_file.read_bytes() == UNUSUAL


def test_an_ambiguous_prefix_is_a_usage_error_naming_the_candidates(tmp_path):
    urls = [f"https://e.com/u{i}" for i in range(17)]  # 17 ids, 16 first characters: two must share one
    ids = [resource_id(u) for u in urls]
    shared = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    path = tmp_path / "q.md"
    path.write_text("".join(f"* [ ] [T{i}]({u})\n" for i, u in enumerate(urls)))
    with pytest.raises(UsageError, match="ambiguous") as info:
        edit.set_state(path, shared, "read")
    assert sum(i[:8] in str(info.value) for i in ids) >= 2  # candidates named by their ids as shown


_item = st.builds(
    lambda indent, bullet, box, slug, note: f"{indent}{bullet} {box}[T {slug}](https://e.com/{slug}) {note}",
    st.sampled_from(["", "  ", "\t"]), st.sampled_from(["*", "-", "+", "1."]),
    st.sampled_from(["", "[x] ", "[ ] ", "[] ", "[X] "]), st.text(alphabet="abcdef", min_size=1, max_size=6),
    st.text(alphabet="abc xyz`-", max_size=12))
_other = st.one_of(st.just(""), st.just("## Section"), st.text(alphabet="abc #*", max_size=15))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_item, _other), min_size=1, max_size=25), st.sampled_from(["\n", "\r\n"]),
       st.data())
def test_done_changes_only_the_target_line(tmp_path, lines, newline, data):
    raw = newline.join(lines).encode()
    queue = parse_queue(raw)
    if not queue.resources:
        return
    target = data.draw(st.sampled_from(queue.resources))
    path = tmp_path / "q.md"
    path.write_bytes(raw)
    result = edit.set_state(path, target.id, "read")
    before, after = raw.split(newline.encode()), path.read_bytes().split(newline.encode())
    assert len(before) == len(after)
    changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == result.lines
    assert set(changed) <= {p.line_no for p in target.places}
    assert parse_queue(path.read_bytes()).by_id()[target.id].state == "read"


def test_a_temp_file_left_by_a_killed_write_is_swept(queue_file):
    leftover = queue_file.parent / f".rq-tmp-{queue_file.name}-abc123"
    leftover.write_bytes(b"half a queue")
    other = queue_file.parent / ".rq-tmp-another.md-xyz"
    other.write_bytes(b"not ours")
    edit.set_state(queue_file, "https://e.com/last", "read")
    assert not leftover.exists() and other.exists()
