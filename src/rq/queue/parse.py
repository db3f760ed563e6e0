"""Parse a Markdown reading queue into resources, keeping every byte of the file.

A resource is a list item (``-``, ``*``, ``+``, ``1.``), a checkbox line without a
bullet (``[x] [T](u)``) or an HTML ``<li>``, that carries an http(s) link. The
first link is the resource; the others are kept as its extra links. Images,
badges and links to ``#anchors`` or relative files (tables of contents) are not
resources. Headings of any depth give each item its section path.
"""

from __future__ import annotations

import re
from pathlib import Path

from rq.errors import QueueError
from rq.queue.ids import resource_id
from rq.queue.links import find_links, strip_inline_markup
from rq.queue.model import Item, ParseWarning, Queue, Resource, Section
from rq.queue.urls import normalize_url

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
# bullet or number, optional checkbox; group "box" is the checkbox itself
_ITEM = re.compile(
    r"^(?P<indent>[ \t]*)(?P<marker>[-*+]|\d{1,9}[.)])(?P<gap>[ \t]+|$)"
    r"(?P<box>\[(?: |x|X|)\](?=[ \t]|$))?"
)
_BARE_BOX = re.compile(r"^(?P<indent>[ \t]*)(?P<box>\[(?: |x|X|)\])(?=[ \t]|$)")
_HTML_LI = re.compile(r"^[ \t]*<li\b", re.I)
_COMMENT_OPEN, _COMMENT_CLOSE = "<!--", "-->"
MAX_NOTE_CHARS = 2000  # a note is a line of commentary; a megabyte line is not read as one


def decode_queue(raw: bytes, path: Path | None = None) -> tuple[str, str]:
    """Return (text, encoding). Refuse bytes that are plainly not a text file."""
    head = raw[:8192]
    if head.startswith((b"%PDF-", b"\x89PNG", b"PK\x03\x04", b"\x1f\x8b", b"GIF8", b"\xff\xd8\xff")):
        raise QueueError("not a Markdown file (binary content)", path)
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and controls / len(head) > 0.1:
        raise QueueError("not a Markdown file (binary content)", path)
    # Non-UTF-8 text: keep undecodable bytes as surrogates so the file round-trips.
    return body.decode("utf-8", errors="surrogateescape"), "utf-8"


def read_queue_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise QueueError("no such queue file", path) from None
    except IsADirectoryError:
        raise QueueError("is a folder, not a queue file", path) from None
    except OSError as exc:
        raise QueueError(f"cannot read queue file ({exc.strerror})", path) from None


def read_queue(path: Path) -> Queue:
    return parse_queue(read_queue_bytes(path), path)


def parse_queue(raw: bytes, path: Path | None = None) -> Queue:
    text, encoding = decode_queue(raw, path)
    lines = text.splitlines(keepends=True)
    parser = _Parser(path)
    for line_no, line in enumerate(lines, start=1):
        parser.feed(line_no, line.rstrip("\r\n"))
    return parser.finish(raw, encoding, lines)


class _Parser:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fence: str | None = None
        self.in_comment = False
        self.headings: list[tuple[int, str]] = []  # (level, text) stack
        self.sections: list[Section] = []
        self.items: list[Item] = []
        self.warnings: list[ParseWarning] = []
        self.last_item_indent: int | None = None
        self.h1_count = 0

    # -- line classification -------------------------------------------------
    def feed(self, line_no: int, line: str) -> None:
        if self._skip_fenced_or_comment(line):
            return
        heading = _HEADING.match(line)
        if heading:
            self._heading(line_no, len(heading.group(1)), heading.group(2) or "")
            return
        if not line.strip():
            self.last_item_indent = None
            return
        match = _ITEM.match(line) or _BARE_BOX.match(line)
        if match or _HTML_LI.match(line):
            self._item(line_no, line, match)
        elif self.last_item_indent is not None and _indent_of(line) > self.last_item_indent:
            self._continue_note(line)
        else:
            self.last_item_indent = None

    def _skip_fenced_or_comment(self, line: str) -> bool:
        fence = _FENCE.match(line)
        if self.fence is not None:
            if fence and fence.group(1)[0] == self.fence[0] and len(fence.group(1)) >= len(self.fence):
                self.fence = None
            return True
        if fence:
            self.fence = fence.group(1)
            return True
        if self.in_comment:
            if _COMMENT_CLOSE in line:
                self.in_comment = False
            return True
        stripped = line.lstrip()
        if stripped.startswith(_COMMENT_OPEN) and _COMMENT_CLOSE not in stripped[4:]:
            self.in_comment = True
            return True
        return False

    def _heading(self, line_no: int, level: int, text: str) -> None:
        text = re.sub(r"[ \t]+#+$", "", text)  # closing hashes
        title = strip_inline_markup(text) or f"(untitled level-{level} heading)"
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, title))
        if level == 1:
            self.h1_count += 1
        self.sections.append(Section(tuple(t for _, t in self.headings), level, line_no))
        self.last_item_indent = None

    def _item(self, line_no: int, line: str, match: re.Match | None) -> None:
        indent = _indent_of(line)
        self.last_item_indent = indent
        box_span = match.span("box") if match and match.group("box") else None
        state = None
        if box_span:
            state = "read" if line[box_span[0] + 1:box_span[1] - 1] in ("x", "X") else "unread"
        links = [lk for lk in find_links(line) if lk.kind != "image"]
        web = [lk for lk in links if lk.is_web and not lk.badge]
        if not web:
            if box_span and not any(lk.is_web for lk in links):
                self.warnings.append(ParseWarning(line_no, "checkbox item without a link; skipped"))
            return
        first = web[0]
        rest = line[first.end:first.end + MAX_NOTE_CHARS]
        note = _clean_note(strip_inline_markup(rest))
        insert_at = match.end("gap") if match and "marker" in match.groupdict() else indent
        title = first.text or _text_before(line, match, first) or _title_from_url(first.url)
        self.items.append(Item(
            line_no=line_no,
            section_path=self._section_path(),
            state=state,
            box_span=box_span,
            box_insert_at=insert_at,
            title=title,
            url=first.url,
            note=note,
            extra_links=tuple(lk.url for lk in web[1:]),
            indent=indent,
        ))

    def _continue_note(self, line: str) -> None:
        if not self.items:
            return
        last = self.items[-1]
        extra = _clean_note(strip_inline_markup(line.strip()))
        if extra:
            note = f"{last.note} {extra}".strip()
            self.items[-1] = Item(**{**last.__dict__, "note": note})

    def _section_path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.headings)

    # -- assembly ---------------------------------------------------------------
    def finish(self, raw: bytes, encoding: str, lines: list[str]) -> Queue:
        title = None
        if self.h1_count == 1 and self.sections and self.sections[0].level == 1:
            title = self.sections[0].path[0]
        resources = self._merge_duplicates(title)
        sections = [Section(_drop_title(s.path, title), s.level, s.line_no) for s in self.sections]
        sections = [s for s in sections if s.path]
        return Queue(self.path, raw, encoding, lines, title, resources, sections, self.warnings)

    def _merge_duplicates(self, title: str | None) -> list[Resource]:
        by_key: dict[str, Resource] = {}
        for item in self.items:
            item = Item(**{**item.__dict__, "section_path": _drop_title(item.section_path, title)})
            key = normalize_url(item.url)
            existing = by_key.get(key)
            if existing is None:
                by_key[key] = Resource(
                    id=resource_id(item.url, key), url=item.url, title=item.title, note=item.note,
                    section_path=item.section_path, state=item.state, line_no=item.line_no,
                    extra_links=item.extra_links, places=[item],
                )
                continue
            existing.places.append(item)
            if item.state == "read" or existing.state is None:
                existing.state = item.state or existing.state
            self.warnings.append(ParseWarning(
                item.line_no, f"same link as line {existing.line_no} ({item.url}); kept as one resource"))
        return list(by_key.values())


def _drop_title(path: tuple[str, ...], title: str | None) -> tuple[str, ...]:
    if title is not None and path and path[0] == title:
        return path[1:]
    return path


def _indent_of(line: str) -> int:
    lead = len(line) - len(line.lstrip(" \t"))
    return len(line[:lead].expandtabs(4))


def _clean_note(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"^[-–—:|,;.]+\s*", "", text).strip()


def _text_before(line: str, match: re.Match | None, link) -> str:
    """For ``* Some title - https://...`` items, the words before a bare URL name it."""
    start = match.end() if match else 0
    return _clean_note(strip_inline_markup(line[start:link.start]).rstrip(" -–—:|"))


def _title_from_url(url: str) -> str:
    return re.sub(r"^https?://(www\.)?", "", url).rstrip("/")
