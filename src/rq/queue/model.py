"""The queue as rq sees it: resources (one per distinct link), the places they are listed,
the sections, and the file's bytes kept whole so an edit changes only what it means to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rq.queue.encoding import encode_queue
from rq.queue.ids import short_ids


@dataclass(frozen=True)
class Item:
    """One place in the file where a resource is listed."""

    line_no: int  # 1-based
    section_path: tuple[str, ...]
    state: str | None  # "read", "unread" or None (no checkbox)
    box_span: tuple[int, int] | None  # character offsets of "[x]" within the line
    box_insert_at: int  # where a new checkbox goes for an item without one
    title: str
    url: str
    note: str
    extra_links: tuple[str, ...]
    indent: int


@dataclass
class Resource:
    id: str  # the SHA-1 of the normalised URL, 40 hex digits (rq.queue.ids)
    url: str
    title: str
    note: str
    section_path: tuple[str, ...]
    state: str  # "read" when any place is ticked, else "unread" (an item with no checkbox is unread)
    line_no: int
    extra_links: tuple[str, ...]
    places: list[Item] = field(default_factory=list)
    short_id: str = ""  # the id as people see and type it: unambiguous in its queue (set by Queue)

    @property
    def section(self) -> str:
        return " / ".join(self.section_path)

    @property
    def has_checkbox(self) -> bool:
        return any(place.box_span for place in self.places)


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]
    level: int
    line_no: int


@dataclass(frozen=True)
class ParseWarning:
    line_no: int  # 0: about the whole file (how it was decoded)
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.message}" if self.line_no else self.message


@dataclass
class Queue:
    path: Path | None
    raw: bytes
    encoding: str  # a Python codec name (rq.queue.encoding); the byte-order mark is the one raw has
    lines: list[str]  # decoded, each with its own line ending
    title: str | None  # the lone top-level heading, if the file has one
    resources: list[Resource]
    sections: list[Section]
    warnings: list[ParseWarning]

    def __post_init__(self) -> None:
        shown = short_ids([r.id for r in self.resources])
        for resource in self.resources:
            resource.short_id = shown[resource.id]

    def to_bytes(self) -> bytes:
        """The file in its own encoding and byte-order mark; a parse followed by a write changes nothing."""
        return encode_queue("".join(self.lines), self.raw, self.encoding)

    def by_id(self) -> dict[str, Resource]:
        return {r.id: r for r in self.resources}
