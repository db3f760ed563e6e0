"""New items in the queue file: each at the end of its section's list, written as the file
writes its items, every other byte unchanged.

An item copies the list it joins: the bullet (``-``, ``*``, ``+`` or the next number), the
space after it, the indent and whether items there carry a checkbox; the box is spelled as the
file spells it (``[ ]`` or ``[]``), and the line ends as the line before it does. A section that
does not exist yet is a new heading, created at the end of its parent's part of the file (of
the file, for a top-level one) at the level of the headings beside it. The new bytes are parsed
again before they are handed back: each old resource as it was, each new one where it was put.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from rq.errors import RqError
from rq.queue.edit import box_style
from rq.queue.model import Item, Queue
from rq.queue.parse import parse_queue
from rq.queue.urls import normalize_url

_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>[-*+]|(?P<number>\d{1,9})(?P<delim>[.)]))(?P<gap>[ \t]+)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class NewItem:
    url: str
    title: str
    section: tuple[str, ...]  # an existing section path, or one whose missing headings are made
    note: str = ""
    read: bool = False


@dataclass
class _Style:
    indent: str = ""
    marker: str = "-"
    gap: str = " "
    number: int | None = None  # the last number of an ordered list
    delim: str = "."
    step: int = 1  # 0 when every item of the list is numbered alike ("1." "1." "1.")
    boxed: bool = False

    def bullet(self) -> str:
        if self.number is None:
            return self.marker
        self.number += self.step
        return f"{self.number}{self.delim}"


def insert_items(queue: Queue, items: list[NewItem]) -> bytes:
    """The file's bytes with ``items`` added, each at the end of its section's list (new headings
    made as needed, in the order first asked for). Raises RqError when the result would not read
    back as the same queue plus these items: nothing is then written."""
    if not items:
        return queue.raw
    eol = _line_ending(queue)
    lines = list(queue.lines)
    after: dict[int, list[str]] = {}  # index of a line -> new lines to go after it (-1: before the first)
    ticked, empty = box_style(queue)
    existing = _existing_sections(queue)
    fresh: dict[tuple, list[NewItem]] = {}
    for item in items:
        if item.section in existing:
            continue
        fresh.setdefault(item.section, []).append(item)
    styles: dict[tuple, tuple[int, _Style]] = {}
    for item in items:
        if item.section not in existing:
            continue
        if item.section not in styles:
            styles[item.section] = _end_of_list(queue, item.section)
        at, style = styles[item.section]
        after.setdefault(at, []).append(_item_line(item, style, ticked, empty))
    for anchor, block in _new_heading_blocks(queue, fresh, existing, ticked, empty):
        after.setdefault(anchor, []).extend(block)
    if lines and not lines[-1].endswith(("\n", "\r")) and len(lines) - 1 in after:
        lines[-1] += eol  # the new lines go after the last one, which had no line ending
    out: list[str] = list(after.get(-1, []))
    for i, line in enumerate(lines):
        out.append(line)
        out.extend(after.get(i, []))
    text = _end_lines(out, eol, ends_without_eol=bool(queue.lines) and not queue.lines[-1].endswith(("\n", "\r")))
    edited = Queue(queue.path, queue.raw, queue.encoding, text, queue.title, queue.resources, queue.sections,
                   queue.warnings)
    new_raw = edited.to_bytes()
    _check(queue, new_raw, items)
    return new_raw


def _existing_sections(queue: Queue) -> set[tuple]:
    paths = {s.path for s in queue.sections} | {r.section_path for r in queue.resources}
    return paths | {()}


def _line_ending(queue: Queue) -> str:
    counts = Counter(line[len(line.rstrip("\r\n")):] for line in queue.lines)
    counts.pop("", None)
    return counts.most_common(1)[0][0] if counts else "\n"


def _end_lines(out: list[str], eol: str, ends_without_eol: bool) -> list[str]:
    """Every line but the last ends with a line ending; the last keeps the file's own habit."""
    fixed = [line if line.endswith(("\n", "\r")) else line + eol for line in out[:-1]]
    last = out[-1] if out else ""
    if not ends_without_eol and last and not last.endswith(("\n", "\r")):
        last += eol
    return fixed + ([last] if out else [])


# -- an existing section ----------------------------------------------------------------------


def _places(queue: Queue, section: tuple) -> list[Item]:
    places = [p for r in queue.resources for p in r.places if p.section_path == section]
    return sorted(places, key=lambda p: p.line_no)


def _heading_index(queue: Queue, section: tuple) -> int:
    """The index of the section's heading line; -1 for the part above every heading."""
    for s in queue.sections:
        if s.path == section:
            return s.line_no - 1
    if section == () and queue.title is not None:
        return next(s.line_no - 1 for s in _all_headings(queue) if s[1] == 1)
    return -1


def _all_headings(queue: Queue) -> list[tuple[int, int]]:
    """(line number, level) of every heading rq read, the title included."""
    heads = [(s.line_no, s.level) for s in queue.sections]
    if queue.title is not None:
        for i, line in enumerate(queue.lines):
            if re.match(r"^ {0,3}#[ \t]", line):
                heads.append((i + 1, 1))
                break
    return sorted(heads)


def _section_end(queue: Queue, start: int) -> int:
    """The index of the last line of the section whose heading is at ``start`` (its own text,
    not its sub-headings): the line before the next heading, blank lines at the end left out."""
    nxt = min((line_no - 1 for line_no, _ in _all_headings(queue) if line_no - 1 > start), default=len(queue.lines))
    end = nxt - 1
    while end > start and not queue.lines[end].strip():
        end -= 1
    return end


def _end_of_list(queue: Queue, section: tuple) -> tuple[int, _Style]:
    """Where an item joining ``section`` goes (the index of the line it follows) and how it is written."""
    places = _places(queue, section)
    if not places:
        start = _heading_index(queue, section)
        return _section_end(queue, start) if start >= 0 else _top_end(queue), _file_style(queue)
    base = min(p.indent for p in places)
    last = [p for p in places if p.indent == base][-1]
    line = queue.lines[last.line_no - 1]
    if _MARKER.match(line) is None:
        if line.lstrip().lower().startswith("<"):
            raise RqError(f"the section {' / '.join(section) or '(top)'} lists its items in HTML "
                          f"(line {last.line_no}); add this one by hand")
        style = _Style(indent=line[:len(line) - len(line.lstrip(" \t"))], marker="", gap="",
                       boxed=last.box_span is not None)
    else:
        style = _style_of(queue, [p for p in places if p.indent == base])
    return _block_end(queue, places[-1].line_no - 1, base), style


def _top_end(queue: Queue) -> int:
    first = min((line_no - 1 for line_no, _ in _all_headings(queue)), default=len(queue.lines))
    end = first - 1
    while end >= 0 and not queue.lines[end].strip():
        end -= 1
    return end


def _block_end(queue: Queue, start: int, base: int) -> int:
    """The last line of the list item starting at ``start``: its nested items and the lines that
    continue it, up to a blank line, a heading, a fence or the next item as far left as ``base``."""
    end = start
    for i in range(start + 1, len(queue.lines)):
        line = queue.lines[i].rstrip("\r\n")
        if not line.strip() or _HEADING.match(line) or _FENCE.match(line):
            break
        marker = _MARKER.match(line)
        if marker and len(marker.group("indent").expandtabs(4)) <= base:
            break
        end = i
    return end


def _style_of(queue: Queue, places: list[Item]) -> _Style:
    last = queue.lines[places[-1].line_no - 1]
    m = _MARKER.match(last)
    style = _Style(indent=m.group("indent"), marker=m.group("marker"), gap=m.group("gap"),
                   boxed=places[-1].box_span is not None)
    if m.group("number"):
        numbers = [int(n.group("number")) for p in places
                   if (n := _MARKER.match(queue.lines[p.line_no - 1])) and n.group("number")]
        style.number, style.delim = int(m.group("number")), m.group("delim")
        style.step = 0 if len(set(numbers)) == 1 and len(numbers) > 1 else 1
    return style


def _file_style(queue: Queue) -> _Style:
    """How the file writes an item, by majority over its outermost items: for a list that has none yet."""
    styles = Counter()
    boxed = Counter()
    for resource in queue.resources:
        for place in resource.places:
            m = _MARKER.match(queue.lines[place.line_no - 1])
            if m and not m.group("indent"):
                key = ("1" + m.group("delim")) if m.group("number") else m.group("marker")
                styles[key, m.group("gap")] += 1
            boxed[place.box_span is not None] += 1
    (marker, gap) = styles.most_common(1)[0][0] if styles else ("-", " ")
    if marker[0].isdigit():
        return _Style(marker="", gap=gap, number=0, delim=marker[1], boxed=bool(boxed.most_common(1)[0][0]))
    return _Style(marker=marker, gap=gap, boxed=bool(boxed and boxed.most_common(1)[0][0]))


# -- the line ----------------------------------------------------------------------------------


def _item_line(item: NewItem, style: _Style, ticked: str, empty: str) -> str:
    parts = [style.indent + style.bullet() + style.gap]
    if style.boxed or item.read:
        parts.append((ticked if item.read else empty) + " ")
    parts.append(f"[{link_text(item.title)}]({link_target(item.url)})")
    note = " ".join(item.note.split())
    if note:
        parts.append(f" - {note}")
    return "".join(parts)


def link_text(title: str) -> str:
    """A title as a link's text on one line: brackets that would end the text early become parentheses."""
    text = " ".join(title.split()) or "untitled"
    return text.replace("\\", "/").replace("[", "(").replace("]", ")")


def link_target(url: str) -> str:
    """A URL as a link's destination: spaces and unbalanced parentheses escaped."""
    url = url.strip().replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
    if url.count("(") != url.count(")"):
        url = url.replace("(", "%28").replace(")", "%29")
    return url


# -- new headings -----------------------------------------------------------------------------


def _new_heading_blocks(queue: Queue, fresh: dict[tuple, list[NewItem]], existing: set[tuple],
                        ticked: str, empty: str) -> list[tuple[int, list[str]]]:
    """For each section to make: (the index of the line its block follows, the block's lines:
    a blank line, each missing heading, the items)."""
    blocks: dict[int, list[str]] = {}
    made: set[tuple] = set()
    gap = [""] if _blank_after_headings(queue) else []
    for path in _parents_first(list(fresh)):
        parent = path[:-1]
        while parent not in existing:
            parent = parent[:-1]
        anchor = _subtree_end(queue, parent)
        level = _child_level(queue, parent)
        block = blocks.setdefault(anchor, [])
        for depth in range(len(parent), len(path)):
            head = path[:depth + 1]
            if head in made:
                continue
            made.add(head)
            block.extend(["", "#" * min(6, level + depth - len(parent)) + " " + " ".join(path[depth].split()), *gap])
        style = _file_style(queue)
        block.extend(_item_line(item, style, ticked, empty) for item in fresh[path])
    return list(blocks.items())


def _parents_first(paths: list[tuple]) -> list[tuple]:
    """The paths in the order first asked for, each parent right before its children, so the
    items of a new heading never end up under a new sub-heading of it."""
    seen: dict[tuple, int] = {}
    for i, path in enumerate(paths):
        for depth in range(1, len(path) + 1):
            seen.setdefault(path[:depth], i)
    return sorted(paths, key=lambda p: tuple(seen[p[:d]] for d in range(1, len(p) + 1)))


def _blank_after_headings(queue: Queue) -> bool:
    """Whether the file leaves a blank line after a heading, as most of its headings do."""
    after = [not queue.lines[s.line_no].strip() for s in queue.sections if s.line_no < len(queue.lines)]
    return sum(after) * 2 > len(after) if after else True


def _subtree_end(queue: Queue, parent: tuple) -> int:
    """The last line of ``parent``'s part of the file, its sub-headings included (the whole file
    for the top level), blank lines at the end left out."""
    end = len(queue.lines) - 1
    if parent:
        start = _heading_index(queue, parent)
        level = next(s.level for s in queue.sections if s.path == parent)
        end = min((n - 1 for n, lv in _all_headings(queue) if n - 1 > start and lv <= level),
                  default=len(queue.lines)) - 1
    while end >= 0 and not queue.lines[end].strip():
        end -= 1
    return end


def _child_level(queue: Queue, parent: tuple) -> int:
    """The level of the headings right under ``parent`` (the top level: under the title)."""
    children = [s.level for s in queue.sections if len(s.path) == len(parent) + 1 and s.path[:-1] == parent]
    if children:
        return Counter(children).most_common(1)[0][0]
    if parent:
        return next(s.level for s in queue.sections if s.path == parent) + 1
    return 2 if queue.title is not None else 1


# -- the check ---------------------------------------------------------------------------------


def _check(queue: Queue, new_raw: bytes, items: list[NewItem]) -> None:
    """The new bytes hold every old resource as it was and each new one, in its section."""
    after = parse_queue(new_raw, queue.path)
    old = {r.id: (r.url, r.title, r.note, r.section_path, r.state) for r in queue.resources}
    now = {r.id: r for r in after.resources}
    for rid, facts in old.items():
        r = now.get(rid)
        if r is None or (r.url, r.title, r.note, r.section_path, r.state) != facts:
            line = queue.by_id()[rid].line_no
            raise RqError(f"adding to the file would change how line {line} reads; nothing was written "
                          "(add the item by hand)")
    for item in items:
        key = normalize_url(link_target(item.url))  # the URL as written
        found = next((r for r in after.resources if normalize_url(r.url) == key), None)
        if found is None or found.section_path != item.section:
            raise RqError(f"{item.url} would not read back as an item of "
                          f"{' / '.join(item.section) or 'the top of the file'}; nothing was written")
