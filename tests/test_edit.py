import os
import stat
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import rq.files
import rq.queue.edit as edit
from rq.errors import NotFoundError, RqError, UsageError
from rq.queue.encoding import decode_as, encode_queue
from rq.queue.parse import parse_queue
from rq.queue.ids import resource_id
from support.editrace import STYLES, race, summary_table

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


_ENCODINGS = [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("latin-1", b""),
              ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-16-le", b""), ("utf-16-be", b"")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_item, _other), min_size=1, max_size=25), st.sampled_from(["\n", "\r\n"]),
       st.sampled_from(_ENCODINGS), st.data())
def test_done_changes_only_the_target_line_in_the_files_own_encoding(tmp_path, lines, newline, encoding, data):
    codec, bom = encoding
    raw = bom + newline.join(lines).encode(codec)
    queue = parse_queue(raw)
    if not queue.resources:
        return
    target = data.draw(st.sampled_from(queue.resources))
    path = tmp_path / "q.md"
    path.write_bytes(raw)
    result = edit.set_state(path, target.id, "read")
    written = path.read_bytes()
    # Read back in the encoding the file was read in: the bytes are that encoding, BOM and all.
    before, after = queue.lines, decode_as(written, queue.encoding).splitlines(keepends=True)
    assert written.startswith(bom) and written == encode_queue("".join(after), raw, queue.encoding)
    assert len(before) == len(after)
    changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == result.lines
    assert set(changed) <= {p.line_no for p in target.places}
    assert parse_queue(written).by_id()[target.id].state == "read"


ENCODED = "# Lecture\n\n## Café\n* [ ] [It’s “quoted”](https://e.com/a) - déjà vu\n* [x] [Zweite](https://e.com/b)\n"


@pytest.mark.parametrize("codec, bom, unit", [
    ("cp1252", b"", 1), ("utf-8", b"\xef\xbb\xbf", 1), ("utf-16-le", b"\xff\xfe", 2), ("utf-16-be", b"\xfe\xff", 2),
    ("utf-16-le", b"", 2), ("utf-32-le", b"\xff\xfe\x00\x00", 4),
])
def test_done_and_todo_change_only_the_box_in_the_files_encoding(tmp_path, codec, bom, unit):
    raw = bom + ENCODED.encode(codec)
    path = tmp_path / "q.md"
    path.write_bytes(raw)
    done = edit.set_state(path, "https://e.com/a", "read")
    box = len(bom) + len("# Lecture\n\n## Café\n* [".encode(codec))  # where the space in "[ ]" starts
    assert len(" ".encode(codec)) == unit
    assert path.read_bytes() == raw[:box] + "x".encode(codec) + raw[box + unit:]
    assert ("not UTF-8" in " ".join(done.warnings)) == (codec != "utf-8")
    edit.set_state(path, "https://e.com/a", "unread")
    assert path.read_bytes() == raw


def _last_look_then(action, exchange: bool, monkeypatch):
    """Run ``action(target, displaced)`` around rq's rename: right after its last look at the file."""
    if not exchange:  # the portable path: a hard link made just before a plain rename
        monkeypatch.setattr(rq.files, "_exchange", lambda a, b: False)
    real, calls = edit.replace_keeping_old, []

    def swap(tmp, target, still_wanted=None):
        if still_wanted is None or calls:
            return real(tmp, target, still_wanted)
        calls.append(target)
        assert still_wanted()  # rq's last look finds the file as it read it...
        return action(target, lambda: real(tmp, target))  # ...and then the editor acts

    monkeypatch.setattr(edit, "replace_keeping_old", swap)
    return calls


EDITOR_SAVE = UNUSUAL.replace(b"## Topic\r\n", b"## Topic\r\n* [ ] [Typed in the editor](https://e.com/typed)\r\n")


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "link-and-rename"])
def test_an_editor_save_renamed_in_just_before_rqs_rename_is_kept(queue_file, monkeypatch, exchange):
    def editor_renames_its_save(target, rename):
        saved = target.with_name("editor-save.tmp")
        saved.write_bytes(EDITOR_SAVE)
        os.replace(saved, target)
        return rename()

    calls = _last_look_then(editor_renames_its_save, exchange, monkeypatch)
    result = edit.set_state(queue_file, "https://e.com/tabbed", "read")
    assert calls and queue_file.read_bytes() == EDITOR_SAVE.replace(b"\t* [ ] [Tabbed]", b"\t* [x] [Tabbed]")
    assert result.changed and any("changed while" in w for w in result.warnings)
    assert sorted(p.name for p in queue_file.parent.iterdir()) == [".queue.md.rq-lock", "queue.md"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "link-and-rename"])
def test_an_editor_writing_the_old_file_in_place_just_after_rqs_rename_is_kept(queue_file, monkeypatch, exchange):
    writers = []

    def editor_opened_the_file_before(target, rename):
        fd = os.open(target, os.O_WRONLY)  # opened (to truncate and write) before rq's rename...
        displaced = rename()

        def write_late():  # ...and written after it, within rq's grace
            os.ftruncate(fd, 0)
            os.write(fd, EDITOR_SAVE)
            os.close(fd)

        writers.append(threading.Thread(target=write_late))
        writers[0].start()
        return displaced

    _last_look_then(editor_opened_the_file_before, exchange, monkeypatch)
    result = edit.set_state(queue_file, "https://e.com/tabbed", "read")
    writers[0].join()
    assert queue_file.read_bytes() == EDITOR_SAVE.replace(b"\t* [ ] [Tabbed]", b"\t* [x] [Tabbed]")
    assert result.changed and any("changed while" in w for w in result.warnings)
    assert sorted(p.name for p in queue_file.parent.iterdir()) == [".queue.md.rq-lock", "queue.md"]


def test_an_edit_without_renameat2_leaves_nothing_behind(queue_file, monkeypatch):
    monkeypatch.setattr(rq.files, "_exchange", lambda a, b: False)
    edit.set_state(queue_file, "https://e.com/last", "read")
    assert queue_file.read_bytes() == UNUSUAL.replace(b"* [ ] [Last]", b"* [x] [Last]")
    assert sorted(p.name for p in queue_file.parent.iterdir()) == [".queue.md.rq-lock", "queue.md"]


@pytest.mark.parametrize("style", STYLES)
def test_rq_done_racing_an_editor_never_loses_one_of_its_saves(tmp_path, style):
    report = race(tmp_path, style, edits=30, parallel=6, seed=7)
    table = "\n".join(summary_table([report]) + report.failures)
    assert report.lost_saves == [] and report.failures == [], table
    assert report.saves >= 10 and sum(e.redone for e in report.edits) > 0, table  # a real race
    assert report.count("landed") == 30, table


def test_a_temp_file_left_by_a_killed_write_is_swept(queue_file):
    leftover = queue_file.parent / f".rq-tmp-{queue_file.name}-abc123"
    leftover.write_bytes(b"half a queue")
    other = queue_file.parent / ".rq-tmp-another.md-xyz"
    other.write_bytes(b"not ours")
    edit.set_state(queue_file, "https://e.com/last", "read")
    assert not leftover.exists() and other.exists()


# -- the archive's log of reads -------------------------------------------------------------------


def _rq(*args):
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_done_with_another_queues_index_folder_fails_before_touching_the_file(queue_file, tmp_path):
    other = tmp_path / "other.md"
    other.write_bytes(UNUSUAL)
    assert _rq("done", "https://e.com/last", "--queue", other, "--index", tmp_path / "ix").returncode == 0
    proc = _rq("done", "https://e.com/tabbed", "--queue", queue_file, "--index", tmp_path / "ix")
    assert proc.returncode == 1 and "belongs to queue" in proc.stderr and "Traceback" not in proc.stderr
    assert queue_file.read_bytes() == UNUSUAL


def test_done_keeps_the_edit_and_warns_when_the_read_cannot_be_logged(queue_file, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the index folder should be")  # unwritable even for root
    proc = _rq("done", "https://e.com/tabbed", "--queue", queue_file, "--index", blocked)
    assert proc.returncode == 0, proc.stderr
    assert "marked read" in proc.stdout and b"\t* [x] [Tabbed]" in queue_file.read_bytes()
    assert "the read was not recorded in the archive (" in proc.stderr and "rq next will not know" in proc.stderr


def test_done_with_a_read_only_index_folder_keeps_the_edit(queue_file, tmp_path):
    index = tmp_path / "ix"
    assert _rq("done", "https://e.com/last", "--queue", queue_file, "--index", index).returncode == 0
    os.chmod(index / "archive.sqlite", 0o444)
    os.chmod(index, 0o555)
    try:
        proc = _rq("done", "https://e.com/tabbed", "--queue", queue_file, "--index", index)
    finally:
        os.chmod(index, 0o755)
        os.chmod(index / "archive.sqlite", 0o644)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert b"\t* [x] [Tabbed]" in queue_file.read_bytes()
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root writing, so the log cannot be refused this way "
                    "(test_done_keeps_the_edit_and_warns_when_the_read_cannot_be_logged covers the warning)")
    assert "the read was not recorded in the archive" in proc.stderr
