"""Parse a Markdown reading queue into resources, keeping every byte of the file.

A resource is a list item (``-``, ``*``, ``+``, ``1.``), a checkbox line without a
bullet (``[x] [T](u)``) or an HTML ``<li>``, that carries an http(s) link. The
first link is the resource; the others are kept as its extra links. Images,
badges and links to ``#anchors`` or relative files (tables of contents) are not
resources. Headings of any depth give each item its section path. Lines Markdown shows
as indented code are not items, and titles, notes and links have a length limit: what is
skipped or cut gets a warning with its line number.
"""

from __future__ import annotations

import re
from pathlib import Path

from rq.errors import QueueError
from rq.queue.encoding import decode_queue
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
_HTML_LI = re.compile(r"^[ \t]*<li\b", re.IGNORECASE)
_HTML_BLOCK = re.compile(r"^[ \t]*</?[A-Za-z][A-Za-z0-9-]*(?=[\s/>]|$)")  # a tag, not an autolink
_COMMENT_OPEN, _COMMENT_CLOSE = "<!--", "-->"
# A title, a note or a link is a line of a list; a megabyte of one is a broken or hostile file,
# and would be carried into every table, search result and index entry.
MAX_TITLE_CHARS = 500
MAX_NOTE_CHARS = 2000
MAX_URL_CHARS = 4096
_NOTE_SCAN = 4 * MAX_NOTE_CHARS  # markup shrinks when read, so a few times the cap is read


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
    text, encoding, note = decode_queue(raw, path)
    lines = text.splitlines(keepends=True)
    parser = _Parser(path)
    if note:
        parser.warnings.append(ParseWarning(0, note))
    for line_no, line in enumerate(lines, start=1):
        parser.feed(line_no, line.rstrip("\r\n"))
    return parser.finish(raw, encoding, lines)


class _Blocks:
    """Which lines CommonMark reads as indented code (or as the continuation of a paragraph)
    rather than as list items: indented 4 or more columns past the content of the list item
    they belong to (past the margin outside a list), after a blank line or a paragraph. An item
    nested under another, even after a blank line of a loose list, stays an item; so does an
    indented item right under a heading, which rq has always read as one."""

    def __init__(self) -> None:
        self.open_items: list[int] = []  # content columns of the list items a line may continue
        self.prev = "start"  # the previous line: start, blank, text, html, item, block or code
        self.in_code = False  # inside an indented code block (blank lines do not end one)
        self.new_code = False  # the last line judged code began its block

    def is_code(self, indent: int) -> bool:
        """Whether a non-blank line outside fences and comments is code, not Markdown."""
        if self.prev == "blank":  # after a blank line a line belongs only to items it is not left of
            while self.open_items and self.open_items[-1] > indent:
                self.open_items.pop()
        column = indent - (self.open_items[-1] if self.open_items else 0)
        code = column >= 4 and (self.prev in ("start", "blank", "code")
                                or (self.prev == "text" and not self.open_items))
        self.new_code = code and not self.in_code
        self.in_code = code
        if code:
            self.prev = "code"
        return code

    def blank(self) -> None:
        self.prev = "blank"

    def item(self, indent: int, content: int) -> None:
        while self.open_items and self.open_items[-1] > indent:
            self.open_items.pop()
        self.open_items.append(content)
        self.prev = "item"

    def text(self, line: str) -> None:
        self.prev = "html" if _HTML_BLOCK.match(line) else "text"

    def heading(self) -> None:
        self.open_items.clear()
        self.prev = "block"

    def other(self) -> None:
        """A fence or comment line: not a paragraph, so an indented line after it is no continuation."""
        self.in_code = False
        self.prev = "block"


class _Parser:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.blocks = _Blocks()
        self.fence: str | None = None
        self.in_comment = False
        self.headings: list[tuple[int, str]] = []  # (level, text) stack
        self.sections: list[Section] = []
        self.items: list[Item] = []
        self.warnings: list[ParseWarning] = []
        self.last_item_indent: int | None = None
        self.code_warned = False  # the current indented code block has had its warning
        self.full_notes: set[int] = set()  # items (by count) whose note reached MAX_NOTE_CHARS
        self.h1_count = 0

    # -- line classification -------------------------------------------------
    def feed(self, line_no: int, line: str) -> None:
        if self._inside_fence_or_comment(line):
            self.blocks.other()
            return
        if not line.strip():
            self.blocks.blank()
            self.last_item_indent = None
            return
        indent = _indent_of(line)
        if self.blocks.is_code(indent):
            self._code(line_no, line)
            return
        if self._opens_fence_or_comment(line):
            self.blocks.other()
            return
        heading = _HEADING.match(line)
        if heading:
            self.blocks.heading()
            self._heading(line_no, len(heading.group(1)), heading.group(2) or "")
            return
        match = _ITEM.match(line) or _BARE_BOX.match(line)
        if match or _HTML_LI.match(line):
            if match:
                self.blocks.item(indent, _content_column(line, match))
            else:
                self.blocks.text(line)
            self._item(line_no, line, match)
            return
        self.blocks.text(line)
        if self.last_item_indent is not None and indent > self.last_item_indent:
            self._continue_note(line_no, line)
        else:
            self.last_item_indent = None

    def _inside_fence_or_comment(self, line: str) -> bool:
        if self.fence is not None:
            fence = _FENCE.match(line)
            if fence and fence.group(1)[0] == self.fence[0] and len(fence.group(1)) >= len(self.fence):
                self.fence = None
            return True
        if self.in_comment:
            if _COMMENT_CLOSE in line:
                self.in_comment = False
            return True
        return False

    def _opens_fence_or_comment(self, line: str) -> bool:
        fence = _FENCE.match(line)
        if fence:
            self.fence = fence.group(1)
            return True
        stripped = line.lstrip()
        if stripped.startswith(_COMMENT_OPEN) and _COMMENT_CLOSE not in stripped[4:]:
            self.in_comment = True
            return True
        return False

    def _code(self, line_no: int, line: str) -> None:
        """Skip a line of indented code; say so once per block when it holds what looks like an item,
        so a list indented by mistake is not silently missing."""
        self.last_item_indent = None
        stripped = line.lstrip(" \t")
        if self.blocks.new_code:
            self.code_warned = False
        if not self.code_warned and "://" in stripped and (_ITEM.match(stripped) or _BARE_BOX.match(stripped)):
            self.code_warned = True
            self.warnings.append(ParseWarning(line_no, "indented 4 or more spaces after a blank line or a "
                                                       "paragraph: Markdown shows it as code, so it is not read "
                                                       "as an item (indent it less to make it one)"))

    def _heading(self, line_no: int, level: int, text: str) -> None:
        text = re.sub(r"[ \t]+#+$", "", text)  # closing hashes
        title = self._capped(line_no, "heading", strip_inline_markup(text)) or f"(untitled level-{level} heading)"
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
        web = self._short_enough(line_no, [lk for lk in links if lk.is_web and not lk.badge])
        if not web:
            if box_span and not any(lk.is_web for lk in links):
                self.warnings.append(ParseWarning(line_no, "checkbox item without a link; skipped"))
            return
        first = web[0]
        note = self._note(line_no, line[first.end:], len(self.items) + 1)
        insert_at = match.end("gap") if match and "marker" in match.groupdict() else indent
        title = first.text or _text_before(line, match, first) or _title_from_url(first.url)
        title = self._capped(line_no, "title", title)
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

    def _short_enough(self, line_no: int, links: list) -> list:
        """The links no longer than MAX_URL_CHARS; a longer one is no page anyone can open."""
        for link in links:
            if len(link.url) > MAX_URL_CHARS:
                self.warnings.append(ParseWarning(
                    line_no, f"a link of {len(link.url):,} characters (over {MAX_URL_CHARS:,}) is not read as a resource"))
        return [link for link in links if len(link.url) <= MAX_URL_CHARS]

    def _note(self, line_no: int, rest: str, item: int) -> str:
        """The note after the link of the ``item``-th item, at most MAX_NOTE_CHARS; a longer line is
        not read to its end."""
        note = _clean_note(strip_inline_markup(rest[:_NOTE_SCAN]))
        if len(note) > MAX_NOTE_CHARS or len(rest) > _NOTE_SCAN:
            self.full_notes.add(item)
            note = self._capped(line_no, "note", note, MAX_NOTE_CHARS, unread=True)
        return note

    def _capped(self, line_no: int, what: str, text: str, limit: int = MAX_TITLE_CHARS,
                unread: bool = False) -> str:
        """``text`` at most ``limit`` characters; when some was cut (or, ``unread``, never read) it
        ends in "…" and a warning says so."""
        if len(text) <= limit and not unread:
            return text
        self.warnings.append(ParseWarning(line_no, f"{what} longer than {limit:,} characters; cut to {limit:,}"))
        return text[:limit - 1].rstrip() + "…"

    def _continue_note(self, line_no: int, line: str) -> None:
        if not self.items:
            return
        last = self.items[-1]
        extra = _clean_note(strip_inline_markup(line.strip()[:_NOTE_SCAN]))
        if not extra or len(self.items) in self.full_notes:
            return
        note = f"{last.note} {extra}".strip()
        if len(last.note) >= MAX_NOTE_CHARS or len(note) > MAX_NOTE_CHARS:
            self.full_notes.add(len(self.items))  # one warning per note; later lines are dropped
            note = self._capped(line_no, "note", note, MAX_NOTE_CHARS, unread=True)
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
                    section_path=item.section_path, state=item.state or "unread", line_no=item.line_no,
                    extra_links=item.extra_links, places=[item],
                )
                continue
            existing.places.append(item)
            if item.state == "read":
                existing.state = "read"
            self.warnings.append(ParseWarning(
                item.line_no, f"same link as line {existing.line_no} ({item.url}); kept as one resource"))
        return list(by_key.values())


def _drop_title(path: tuple[str, ...], title: str | None) -> tuple[str, ...]:
    if title is not None and path and path[0] == title:
        return path[1:]
    return path


def _content_column(line: str, match: re.Match) -> int:
    """The column where a list item's text starts: after its marker and 1 to 4 spaces
    (with more, the text is code inside the item and starts one space after the marker)."""
    if "marker" not in match.groupdict():  # a bare "[ ]" line: read as if it were "- [ ]"
        return _indent_of(line) + 2
    marker_end = len(line[:match.end("marker")].expandtabs(4))
    gap = len(line[:match.end("gap")].expandtabs(4)) - marker_end
    return marker_end + (gap if 1 <= gap <= 4 else 1)


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
