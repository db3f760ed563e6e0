"""Links from where readers already keep them: bookmark and read-later exports, read into
queue items. Pure parsing (stdlib, defusedxml for XML); nothing here reads a file by name,
fetches or writes. `plan_import` decides what each link becomes: an item under its heading,
a duplicate, or refused (with the reason)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rq.queue.importers.model import Entry, ImportError_
from rq.queue.insert import NewItem
from rq.queue.model import Queue
from rq.queue.parse import MAX_URL_CHARS
from rq.queue.urls import normalize_url

FORMATS = ("auto", "netscape", "pocket", "instapaper", "raindrop", "opml", "omnivore", "karakeep", "urls")
# Where links the export files under no folder go, unless a tag names one of the queue's sections.
HEADINGS = {"netscape": "Bookmarks", "pocket": "From Pocket", "instapaper": "From Instapaper",
            "raindrop": "From Raindrop", "opml": "From OPML", "omnivore": "From Omnivore",
            "karakeep": "From Karakeep", "urls": "Imported links"}

__all__ = ["FORMATS", "Entry", "ImportError_", "ImportPlan", "Outcome", "plan_import", "read_export"]


def decode(raw: bytes) -> str:
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            return raw.decode(codec, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def detect(raw: bytes, text: str) -> str:
    """The export's format, from its first bytes (markup, JSON) or its CSV header."""
    from rq.queue.importers.tables import csv_header

    head = text.lstrip()[:400].lower()
    if "netscape-bookmark-file" in head or (head.startswith("<!doctype") or "<dl" in head) and "<a " in text.lower():
        return "netscape"
    if head.startswith("<?xml") or head.startswith("<opml"):
        return "opml"
    if head.startswith(("[", "{")):
        return "json"
    header = csv_header(text)
    if {"url", "time_added"} <= header:
        return "pocket"
    if {"url", "selection", "folder"} <= header:
        return "instapaper"
    if {"url", "folder", "created"} <= header or {"url", "excerpt"} <= header:
        return "raindrop"
    return "urls"


def read_export(raw: bytes, fmt: str = "auto") -> tuple[str, list[Entry]]:
    """(the format, its entries in file order)."""
    from rq.queue.importers import markup, tables

    if fmt not in FORMATS:
        raise ImportError_(f"--format takes one of {', '.join(FORMATS)}, not {fmt!r}")
    text = decode(raw)
    found = detect(raw, text) if fmt == "auto" else fmt
    if found in ("json", "omnivore", "karakeep"):
        kind, entries = tables.read_json(text)
        if found != "json" and kind != found:
            raise ImportError_(f"this is not a {found} export (it reads as {kind})")
        return kind, entries
    readers = {"netscape": markup.read_netscape, "pocket": tables.read_pocket,
               "instapaper": tables.read_instapaper, "raindrop": tables.read_raindrop, "urls": tables.read_plain}
    if found == "opml":
        return found, markup.read_opml(raw)
    return found, readers[found](text)


@dataclass
class Outcome:
    url: str
    title: str
    status: str  # "added", "duplicate" or "refused"
    reason: str = ""
    section: tuple[str, ...] = ()


@dataclass
class ImportPlan:
    format: str
    items: list[NewItem] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def plan_import(queue: Queue, fmt: str, entries: list[Entry], allow_private: bool = False) -> ImportPlan:
    """What each entry becomes in ``queue``: a new item under its folder's heading (a tag that names
    one of the queue's sections otherwise, else the format's own heading), a duplicate of a link
    already there or earlier in the export (by normalised URL), or refused, with the reason."""
    plan = ImportPlan(fmt)
    seen = {normalize_url(r.url): f"already in the queue (line {r.line_no})" for r in queue.resources}
    sections = _sections(queue)
    for entry in entries:
        url = entry.url.strip()
        refused = refusal(url, allow_private)
        if refused:
            plan.outcomes.append(Outcome(url, entry.title, "refused", refused))
            continue
        key = normalize_url(url)
        if key in seen:
            plan.outcomes.append(Outcome(url, entry.title, "duplicate", seen[key]))
            continue
        seen[key] = "listed earlier in the import"
        section, tags = _section_of(entry, sections, HEADINGS[fmt])
        title = " ".join(entry.title.split()) or _short(url)
        item = NewItem(url, title, section, _note(entry, tags), entry.read)
        plan.items.append(item)
        plan.outcomes.append(Outcome(url, title, "added", section=section))
    return plan


def refusal(url: str, allow_private: bool = False) -> str:
    """Why a link cannot be a queue item ("" when it can): not http(s), malformed, or a private address."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        return f"not an http(s) link ({scheme or 'no scheme'})"
    if len(url) > MAX_URL_CHARS or any(c.isspace() for c in url):
        return "malformed (too long, or spaces in it)"
    try:
        host = urlsplit(url).hostname
        urlsplit(url).port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "malformed"
    if not host:
        return "malformed (no host)"
    if not allow_private and _private(host):
        return "a private or local address (--allow-private lets it in)"
    return ""


def _private(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _sections(queue: Queue) -> dict[str, tuple[str, ...]]:
    """The queue's sections by their path and by their own heading, case-folded."""
    out: dict[str, tuple[str, ...]] = {}
    for path in [s.path for s in queue.sections]:
        out.setdefault(_fold(" / ".join(path)), path)
        out.setdefault(_fold(path[-1]), path)
    return out


def _section_of(entry: Entry, sections: dict[str, tuple[str, ...]], default: str) -> tuple[tuple[str, ...], list[str]]:
    """The entry's section and the tags left for its note."""
    if entry.folder:
        return sections.get(_fold(" / ".join(entry.folder)), entry.folder), entry.tags
    for tag in entry.tags:
        if _fold(tag) in sections:
            return sections[_fold(tag)], [t for t in entry.tags if t != tag]
    return sections.get(_fold(default), (default,)), entry.tags


def _note(entry: Entry, tags: list[str]) -> str:
    parts = [" ".join(entry.note.split())] if entry.note.strip() else []
    if tags:
        parts.append("tags: " + ", ".join(tags))
    if entry.added:
        parts.append(f"saved {entry.added}")
    return " · ".join(parts)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _short(url: str) -> str:
    parts = urlsplit(url)
    return (parts.netloc + parts.path).rstrip("/") or url
