"""`rq done` / `rq todo`: tick or untick one item's checkbox, and change nothing else.

The file is rewritten atomically (temp file in the same folder, fsync, rename),
keeping its line endings, BOM, encoding and mode; a symlinked queue is written
through to its target. An editor may save the file while rq works: rq remembers
what it read, holds a lock against other rq processes, re-reads just before
replacing and, if the file changed, applies the tick to the new text by
matching the item's URL, or stops without writing.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rq.errors import QueueError, RqError
from rq.files import TMP_PREFIX, atomic_write_bytes
from rq.queue.model import Item, Queue, Resource
from rq.queue.parse import parse_queue
from rq.queue.resolve import resolve_resource
from rq.queue.urls import normalize_url


@dataclass
class EditResult:
    resource: Resource
    state: str  # the state asked for
    changed: bool
    lines: list[int]  # 1-based line numbers touched
    warnings: list[str] = field(default_factory=list)


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


def _retick(queue: Queue, item: Item, state: str, style: tuple[str, str]) -> str | None:
    """The item's line with its checkbox set to ``state``, or None when nothing changes."""
    line = queue.lines[item.line_no - 1]
    ticked, empty = style
    if item.box_span:
        start, end = item.box_span
        current = "read" if item.state == "read" else "unread"
        if current == state:
            return None
        return line[:start] + (ticked if state == "read" else empty) + line[end:]
    if state == "unread":
        return None  # no checkbox already means "not read"
    if line[:item.box_insert_at].strip().lower().startswith("<li"):
        raise RqError(f"line {item.line_no}: cannot add a checkbox to an HTML list item; tick it by hand")
    at = item.box_insert_at
    # A bullet with no space before its text ("*[T](u)") is not a list item; keep one space after the box.
    return line[:at] + ticked + " " + line[at:]


def apply_state(queue: Queue, url: str, state: str) -> tuple[bytes, list[int], Resource]:
    """New file bytes with every place of the resource at ``url`` set to ``state``."""
    wanted = normalize_url(url)
    resource = next((r for r in queue.resources if normalize_url(r.url) == wanted), None)
    if resource is None:
        raise RqError(f"{url} is no longer in the queue file; nothing was written")
    style = box_style(queue)
    lines = list(queue.lines)
    touched = []
    for item in resource.places:
        new_line = _retick(queue, item, state, style)
        if new_line is not None:
            lines[item.line_no - 1] = new_line
            touched.append(item.line_no)
    edited = Queue(queue.path, queue.raw, queue.encoding, lines, queue.title, queue.resources,
                   queue.sections, queue.warnings)
    return edited.to_bytes(), touched, resource


@dataclass(frozen=True)
class _Snapshot:
    digest: str
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, raw: bytes, st: os.stat_result) -> "_Snapshot":
        return cls(hashlib.sha256(raw).hexdigest(), st.st_size, st.st_mtime_ns, st.st_ino)


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
            # A run killed mid-write leaves its temp file beside the queue; only this queue's
            # own temp files are swept, and only while holding its lock.
            for leftover in target.parent.glob(f"{_tmp_prefix(target)}*"):
                leftover.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(target: Path) -> tuple[bytes, _Snapshot]:
    try:
        with open(target, "rb") as fh:
            raw = fh.read()
            st = os.fstat(fh.fileno())
    except FileNotFoundError:
        raise QueueError("no such queue file", target) from None
    except OSError as exc:
        raise QueueError(f"cannot read queue file ({exc.strerror})", target) from None
    return raw, _Snapshot.of(raw, st)


def _replace(target: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(target, data, prefix=_tmp_prefix(target))
    except OSError as exc:
        raise QueueError(f"cannot write queue file ({exc.strerror}); it was left as it was", target) from None


def set_state(path: Path, ref: str, state: str) -> EditResult:
    """Mark the resource named by ``ref`` (id, prefix or URL) read or unread in the file at ``path``."""
    if state not in ("read", "unread"):
        raise ValueError(state)
    target = Path(os.path.realpath(path))  # a symlinked queue stays a symlink: write its target
    warnings = []
    with _queue_lock(target):
        raw, before = _read(target)
        queue = parse_queue(raw, path)
        resource = resolve_resource(queue, ref)
        new_raw, touched, resource = apply_state(queue, resource.url, state)
        if not touched:
            return EditResult(resource, state, False, [], warnings)
        st = os.stat(target)
        if st.st_nlink > 1:
            warnings.append(f"{path} has {st.st_nlink} hard links; the others keep the old text")
        again, now = _read(target)
        if now != before:  # an editor saved in between: re-apply to what is there now
            new_raw, touched, resource = apply_state(parse_queue(again, path), resource.url, state)
            warnings.append("the file changed while rq was working; the tick was applied to the new text")
            if not touched:
                return EditResult(resource, state, False, [], warnings)
        _replace(target, new_raw)
    return EditResult(resource, state, True, touched, warnings)
