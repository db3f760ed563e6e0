"""The parsed queue, remembered in the index folder so a read command does not parse it again.

Parsing 5,000 items takes about 0.2 s, a third of a cold `rq search`; reading them back from
JSON takes a tenth of that. The cache is keyed by the file's bytes (sha256) and by the
parser itself (rq's version and the size and mtime of the parsing modules), so an edit to
the queue, or to rq, parses again. A cache that cannot be read is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rq import __version__
from rq.files import atomic_write_bytes
from rq.queue.encoding import decode_as
from rq.queue.model import Item, ParseWarning, Queue, Resource, Section
from rq.queue.parse import parse_queue, read_queue_bytes

CACHE_FILE = "queue-parse.json"
# A long-running process (rq serve) opens the same queue for every answer: once it calls
# keep_in_memory(), the last queue read per index folder is kept by its digest, so an unchanged
# file costs a hash, not a read-back (5,000 items: ~0.2-0.4 s). Parsed queues are not changed
# after parsing, so sharing one is safe. A one-shot command reads once and keeps nothing.
_LAST: dict[Path, tuple[str, Path, Queue]] = {}
_KEEP = False


def keep_in_memory() -> None:
    global _KEEP
    _KEEP = True
FORMAT = 4  # 2: full 40-digit resource ids; 3: the encoding the file was read in; 4: no null state


def parser_key() -> str:
    """Changes whenever the code that parses a queue does."""
    import rq.queue.encoding
    import rq.queue.ids
    import rq.queue.links
    import rq.queue.model
    import rq.queue.parse
    import rq.queue.urls

    stamps = []
    for module in (rq.queue.parse, rq.queue.encoding, rq.queue.model, rq.queue.links, rq.queue.urls, rq.queue.ids):
        stat = Path(module.__file__).stat()
        stamps.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    return f"{FORMAT}|{__version__}|{'|'.join(stamps)}"


def queue_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest() + "|" + parser_key()


def read_queue_cached(path: Path, cache_dir: Path, remember: bool = True) -> Queue:
    """The queue in ``path``, parsed, or read back from ``cache_dir`` when the file is unchanged.
    ``remember``: write a fresh parse into ``cache_dir`` (only while holding its writer lock)."""
    raw = read_queue_bytes(path)
    digest = queue_digest(raw)
    last = _LAST.get(Path(cache_dir))
    if last is not None and last[0] == digest and last[1] == path:
        return last[2]
    cache_file = Path(cache_dir) / CACHE_FILE
    queue = _load(cache_file, raw, digest, path)
    if queue is None:
        queue = parse_queue(raw, path)
        if remember and cache_file.parent.is_dir():
            try:
                atomic_write_bytes(cache_file, _dump(queue, digest))
            except OSError:
                pass  # a read-only index folder only costs the next command a parse
    if _KEEP:
        _LAST[Path(cache_dir)] = (digest, path, queue)
    return queue


def _dump(queue: Queue, digest: str) -> bytes:
    def item(i: Item) -> list:
        return [i.line_no, i.section_path, i.state, i.box_span, i.box_insert_at, i.title, i.url, i.note,
                i.extra_links, i.indent]

    data = {
        "digest": digest,
        # The encoding is kept, not found again: guessing a charset costs more than the whole read.
        "encoding": queue.encoding,
        "title": queue.title,
        "resources": [[r.id, r.url, r.title, r.note, r.section_path, r.state, r.line_no, r.extra_links,
                       [item(p) for p in r.places]] for r in queue.resources],
        "sections": [[s.path, s.level, s.line_no] for s in queue.sections],
        "warnings": [[w.line_no, w.message] for w in queue.warnings],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _load(cache_file: Path, raw: bytes, digest: str, path: Path) -> Queue | None:
    try:
        data = json.loads(cache_file.read_bytes().decode("utf-8", "surrogatepass"))
        if data.get("digest") != digest:
            return None
        encoding = data["encoding"]
        text = decode_as(raw, encoding)
        resources = [Resource(rid, url, title, note, tuple(section), state, line_no, tuple(extra),
                              [_item(p) for p in places])
                     for rid, url, title, note, section, state, line_no, extra, places in data["resources"]]
        sections = [Section(tuple(p), level, line_no) for p, level, line_no in data["sections"]]
        warnings = [ParseWarning(line_no, message) for line_no, message in data["warnings"]]
        return Queue(path, raw, encoding, text.splitlines(keepends=True), data["title"], resources,
                     sections, warnings)
    except (OSError, ValueError, KeyError, TypeError, LookupError):  # UnicodeError is a ValueError
        return None


def _item(fields: list) -> Item:
    line_no, section, state, box_span, insert_at, title, url, note, extra, indent = fields
    return Item(line_no, tuple(section), state, tuple(box_span) if box_span else None, insert_at, title, url,
                note, tuple(extra), indent)
