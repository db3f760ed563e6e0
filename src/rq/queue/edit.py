"""`rq done` / `rq todo`: tick or untick one item's checkbox, and change nothing else.

The file is rewritten atomically (temp file in the same folder, fsync, rename), keeping its
line endings, byte-order mark, encoding and mode; a symlinked queue is written through to
its target. A lock keeps other rq processes out, but an editor may save the file at any
moment, and its save must never be lost:

* right before the rename (the new text already fsynced), rq reads the file again; if it
  changed, the tick is applied to the new text instead (matching the item by its URL);
* the rename swaps the two names and hands back the file it replaced (on Linux in one step,
  elsewhere by a hard link made just before). If that is not what rq read last (an editor
  saved in between, or, seen after a moment's grace, was still writing the old file in
  place), the editor's file is swapped straight back and the tick redone on it, so rq's
  text stands in the file without the editor's save only for those few microseconds
  (or the grace).

What is left open is an editor that opened the old file to overwrite it in place before
the rename and writes into it later than the grace: POSIX gives no way to see that. A file
being saved in place is read until two reads agree, so half a file is never taken for the
user's text.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from rq.errors import NotFoundError, QueueError, RqError
from rq.files import TMP_PREFIX, replace_keeping_old, write_temp
from rq.queue.model import Item, Queue, Resource
from rq.queue.parse import parse_queue
from rq.queue.resolve import resolve_resource
from rq.queue.urls import normalize_url

# How many saves by another program rq redoes its tick on before it gives up, having written nothing.
_MAX_REDOS = 20
# After the rename: the time an editor that opened the old file just before gets to finish writing it.
_GRACE_S = 0.02
# A file saved in place is truncated and then written: reads this far apart must agree before
# its text is trusted, and an empty file is waited on this long before it is believed.
_SETTLE_S = 0.01
_SETTLE_WAIT_S = 1.0
_CHANGED = "the file changed while rq was working; the tick was applied to the new text"


@dataclass
class EditResult:
    resource: Resource
    state: str  # the state asked for
    changed: bool
    lines: list[int]  # 1-based line numbers touched
    warnings: list[str] = field(default_factory=list)
    # Places (their order among the resource's places) where a checkbox was added to an item that
    # had none, or taken away again: `rq todo` gives such an item back its own line.
    boxes_added: list[int] = field(default_factory=list)
    boxes_removed: list[int] = field(default_factory=list)


def box_style(queue: Queue) -> tuple[str, str]:
    """The file's own spelling of a ticked and an empty box, by majority."""
    read, unread = Counter(), Counter()
    for resource in queue.resources:
        for item in resource.places:
            if item.box_span:
                box = queue.lines[item.line_no - 1][item.box_span[0]:item.box_span[1]]
                (read if item.state == "read" else unread)[box] += 1
    return (read.most_common(1)[0][0] if read else "[x]",
            unread.most_common(1)[0][0] if unread else "[ ]")


def _retick(queue: Queue, item: Item, state: str, style: tuple[str, str], unbox: bool = False) -> str | None:
    """The item's line with its checkbox set to ``state``, or None when nothing changes.
    ``unbox``: rq added this item's box, so unticking takes the box (and the space after it) away."""
    line = queue.lines[item.line_no - 1]
    ticked, empty = style
    if item.box_span:
        start, end = item.box_span
        current = "read" if item.state == "read" else "unread"
        if current == state:
            return None
        if state == "unread" and unbox:
            return line[:start] + line[end + 1 if line[end:end + 1] == " " else end:]
        return line[:start] + (ticked if state == "read" else empty) + line[end:]
    if state == "unread":
        return None  # no checkbox already means "not read"
    if line[:item.box_insert_at].strip().lower().startswith("<li"):
        raise RqError(f"line {item.line_no}: cannot add a checkbox to an HTML list item; tick it by hand")
    at = item.box_insert_at
    # A bullet with no space before its text ("*[T](u)") is not a list item; keep one space after the box.
    return line[:at] + ticked + " " + line[at:]


def apply_state(queue: Queue, url: str, state: str,
                unbox: frozenset[int] = frozenset()) -> tuple[bytes, list[int], Resource]:
    """New file bytes with every place of the resource at ``url`` set to ``state``; the places
    numbered in ``unbox`` lose the checkbox rq gave them instead of being unticked."""
    wanted = normalize_url(url)
    resource = next((r for r in queue.resources if normalize_url(r.url) == wanted), None)
    if resource is None:
        raise RqError(f"{url} is no longer in the queue file; nothing was written")
    style = box_style(queue)
    lines = list(queue.lines)
    touched = []
    for place, item in enumerate(resource.places):
        new_line = _retick(queue, item, state, style, unbox=place in unbox)
        if new_line is not None:
            lines[item.line_no - 1] = new_line
            touched.append(item.line_no)
    edited = Queue(queue.path, queue.raw, queue.encoding, lines, queue.title, queue.resources,
                   queue.sections, queue.warnings)
    return edited.to_bytes(), touched, resource


def _tmp_prefix(target: Path) -> str:
    return f"{TMP_PREFIX}{target.name}-"


@contextmanager
def _queue_lock(target: Path) -> Iterator[None]:
    import fcntl

    lock_path = target.parent / f".{target.name}.rq-lock"
    try:
        fh = open(lock_path, "a+b")
    except OSError as exc:
        raise QueueError(f"cannot lock the queue file ({exc.strerror})", target) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            # A run killed mid-write leaves its temp files beside the queue; only this queue's
            # own temp files are swept, and only while holding its lock.
            for leftover in target.parent.glob(f"{_tmp_prefix(target)}*"):
                leftover.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(target: Path) -> bytes:
    try:
        with open(target, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise QueueError("no such queue file", target) from None
    except OSError as exc:
        raise QueueError(f"cannot read queue file ({exc.strerror})", target) from None


def _settled_read(target: Path, expected: bytes | None) -> bytes:
    """The file's bytes when they are ``expected``, else once two reads agree: a program saving in
    place truncates the file and then writes it, and half a file must never be taken for the
    user's text (an empty one is believed only after _SETTLE_WAIT_S)."""
    raw = _read(target)
    deadline = time.monotonic() + _SETTLE_WAIT_S
    while raw != expected and time.monotonic() < deadline:
        time.sleep(_SETTLE_S)
        again = _read(target)
        if again == raw and raw:
            break
        raw = again
    return raw


def _commit(target: Path, raw: bytes, redo: Callable[[bytes], bytes], warnings: list[str],
            changed: str = _CHANGED) -> bytes:
    """Put ``redo(raw)`` in the file, applied to whatever the file holds at the instant rq's text
    takes its place, so what another program saved meanwhile stays (``redo`` is called again on
    that save, and may raise to write nothing). Returns the bytes now in the file: ``raw`` when
    the change was already there."""
    for _ in range(_MAX_REDOS + 1):
        new_raw = redo(raw)
        if new_raw == raw:
            return raw
        now = _install(target, new_raw, raw)
        if now is None:
            return new_raw
        raw = now  # another program saved meanwhile; the file holds its save: redo the change on it
        if changed not in warnings:
            warnings.append(changed)
    raise QueueError("the file kept changing while rq tried to edit it; nothing was written; try again", target)


def _install(target: Path, data: bytes, expected: bytes) -> bytes | None:
    """Put ``data`` in the file's place if the file still holds ``expected``: None when it did.
    Otherwise another program saved meanwhile; the file is left holding that save, whose text
    is returned."""
    try:
        tmp = write_temp(target, data, prefix=_tmp_prefix(target))
    except OSError as exc:
        raise QueueError(f"cannot write queue file ({exc.strerror}); it was left as it was", target) from None
    now = [expected]  # what the last look found

    def unchanged() -> bool:  # the last look, right before the rename
        now[0] = _settled_read(target, expected)
        return now[0] == expected

    replaced = None
    try:
        replaced = _swap(tmp, target, unchanged)
    finally:
        if replaced is None:
            tmp.unlink(missing_ok=True)
    if replaced is None:
        return now[0]
    return _undo_if_displaced(target, replaced, data, expected)


def _swap(tmp: Path, target: Path, still_wanted=None) -> Path | None:
    """Swap ``tmp`` in for ``target``; None when ``still_wanted`` says no. Returns where the
    displaced file now is."""
    try:
        return replace_keeping_old(tmp, target, still_wanted)
    except FileNotFoundError:
        raise QueueError("the queue file was removed while rq was writing it; nothing was written",
                         target) from None
    except OSError as exc:
        raise QueueError(f"cannot write queue file ({exc.strerror})", target) from None


def _undo_if_displaced(target: Path, replaced: Path, data: bytes, expected: bytes) -> bytes | None:
    """After rq's ``data`` took the file's place: None when the file it displaced is the one rq
    read (also after a moment's grace for an editor still writing it in place). Otherwise another
    program saved in between: its file is swapped straight back in, and its text returned."""
    held = _read(replaced)
    if held == expected:
        time.sleep(_GRACE_S)
        held = _settled_read(replaced, expected)
    if held == expected:
        replaced.unlink(missing_ok=True)
        return None
    try:
        out = _swap(replaced, target)
    except QueueError:
        raise QueueError(f"another program saved the file while rq was writing it, and rq could not put that "
                         f"save back: it is in {replaced}; copy it over the queue file before running rq again",
                         target) from None
    if _read(out) != data:  # a newer save came in the microseconds since: it stays, the older goes
        out = _swap(out, target)
    out.unlink(missing_ok=True)
    return _settled_read(target, held)


def _ticked(raw: bytes, path: Path, url: str, state: str,
            unbox: frozenset[int]) -> tuple[bytes, list[int], Resource | None]:
    """``raw`` with the item at ``url`` set to ``state``; ``raw`` itself, and no resource, when the
    item is no longer there."""
    queue = parse_queue(raw, path)
    wanted = normalize_url(url)
    if not any(normalize_url(r.url) == wanted for r in queue.resources):
        return raw, [], None
    return apply_state(queue, url, state, unbox)


def _file_warnings(path: Path, target: Path, queue: Queue) -> list[str]:
    """What the user should know about a file rq is about to rewrite."""
    warnings = [f"{w.message}; the file is written back in that encoding" for w in queue.warnings if w.line_no == 0]
    links = os.stat(target).st_nlink
    if links > 1:
        warnings.append(f"{path} has {links} hard links; the others keep the old text")
    return warnings


def _read_and_resolve(target: Path, path: Path, ref: str) -> tuple[bytes, Queue, Resource]:
    """The file, parsed, and the resource ``ref`` names in it. A reference that names nothing is
    looked up again in the file's settled text: an editor saving in place may have been caught
    halfway through."""
    raw = _read(target)
    try:
        queue = parse_queue(raw, path)
        return raw, queue, resolve_resource(queue, ref)
    except NotFoundError:
        settled = _settled_read(target, None)
        if settled == raw:
            raise
    queue = parse_queue(settled, path)
    return settled, queue, resolve_resource(queue, ref)


def set_state(path: Path, ref: str, state: str,
              boxes_rq_added: Callable[[str], set[int]] | None = None) -> EditResult:
    """Mark the resource named by ``ref`` (id, prefix, URL or part of a title) read or unread in
    the file at ``path``. ``boxes_rq_added(id)``: the places whose checkbox rq added (the archive
    remembers them), which unticking removes, so the line is as the user wrote it."""
    if state not in ("read", "unread"):
        raise ValueError(state)
    target = Path(os.path.realpath(path))  # a symlinked queue stays a symlink: write its target
    with _queue_lock(target):
        raw, queue, resource = _read_and_resolve(target, path, ref)
        unbox = frozenset(boxes_rq_added(resource.id)) if boxes_rq_added and state == "unread" else frozenset()
        _, touched, before = apply_state(queue, resource.url, state, unbox)
        if not touched:
            return EditResult(before, state, False, [], [])
        warnings = _file_warnings(path, target, queue)
        found: dict = {}

        def redo(now: bytes) -> bytes:
            new_raw, found["lines"], found["resource"] = _ticked(now, path, before.url, state, unbox)
            if found["resource"] is None:
                raise RqError(f"{before.url} is no longer in the queue file; nothing was written")
            return new_raw

        _commit(target, raw, redo, warnings)
        lines, resource = found["lines"], found["resource"]
    result = EditResult(resource, state, bool(lines), lines, warnings)
    if lines and state == "read":
        result.boxes_added = [i for i, item in enumerate(before.places) if item.box_span is None]
    elif lines:
        result.boxes_removed = [i for i, item in enumerate(before.places) if i in unbox and item.box_span]
    return result


@dataclass
class FileEdit:
    before: bytes  # the file as the change was first worked out on
    after: bytes  # the file as rq left it (``before`` when the change was already there)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.after != self.before


_CHANGED_EDIT = "the file changed while rq was working; the change was applied to the new text"


def edit_file(path: Path, change: Callable[[Queue], bytes], dry_run: bool = False) -> FileEdit:
    """Apply ``change`` (the parsed queue -> the file's new bytes) to the queue file at ``path``
    with the safety of `rq done`: under the queue's lock, on a settled read, written whole and
    renamed into place, and worked out again on another program's save that lands meanwhile.
    ``change`` may raise an rq error to write nothing. ``dry_run``: work it out, write nothing."""
    target = Path(os.path.realpath(path))
    with _queue_lock(target):
        raw = _settled_read(target, None)
        queue = parse_queue(raw, path)
        after = change(queue)
        if dry_run or after == raw:
            return FileEdit(raw, after)
        warnings = _file_warnings(path, target, queue)
        first = [after]

        def redo(now: bytes) -> bytes:
            return first.pop() if now == raw and first else change(parse_queue(now, path))

        after = _commit(target, raw, redo, warnings, _CHANGED_EDIT)
    return FileEdit(raw, after, warnings)
