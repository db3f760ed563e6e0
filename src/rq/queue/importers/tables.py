"""Read-later exports written as tables or JSON: Pocket, Instapaper and Raindrop CSV, Omnivore
and Karakeep JSON, and a plain list of URLs. Read with the stdlib's csv and json."""

from __future__ import annotations

import csv
import io
import json

from rq.queue.importers.model import Entry, ImportError_, from_epoch, from_iso


def csv_rows(text: str) -> list[dict[str, str]]:
    """The rows of a CSV with a header, keyed by the header's names lower-cased."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
            for row in reader]


def csv_header(text: str) -> set[str]:
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    return {name.strip().lower() for name in first}


def read_pocket(text: str) -> list[Entry]:
    """title,url,time_added,tags,status — tags joined by "|", status "unread" or "archive"."""
    return [Entry(row.get("url", ""), row.get("title", ""), tags=_split(row.get("tags", ""), "|"),
                  added=from_epoch(row.get("time_added")), read=row.get("status", "").lower() == "archive")
            for row in csv_rows(text)]


def read_instapaper(text: str) -> list[Entry]:
    """URL,Title,Selection,Folder,Timestamp — Folder "Unread", "Archive", "Starred" or the reader's own."""
    entries = []
    for row in csv_rows(text):
        folder = row.get("folder", "")
        own = folder.lower() not in ("unread", "archive", "starred", "")
        entries.append(Entry(row.get("url", ""), row.get("title", ""), (folder,) if own else (),
                             note=row.get("selection", ""), added=from_epoch(row.get("timestamp")),
                             read=folder.lower() == "archive"))
    return entries


def read_raindrop(text: str) -> list[Entry]:
    """id,title,note,excerpt,url,folder,tags,created,cover,highlights,favorite — folder "A/B", tags ", "."""
    entries = []
    for row in csv_rows(text):
        folder = tuple(part.strip() for part in row.get("folder", "").split("/") if part.strip())
        if folder in (("Unsorted",), ("unsorted",)):
            folder = ()
        entries.append(Entry(row.get("url", ""), row.get("title", ""), folder,
                             note=row.get("note", "") or row.get("excerpt", ""), tags=_split(row.get("tags", ""), ","),
                             added=from_iso(row.get("created"))))
    return entries


def read_json(text: str) -> tuple[str, list[Entry]]:
    """Omnivore (a list of saved items with "savedAt" and "state") or Karakeep ({"bookmarks": [...]})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportError_(f"not readable JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("bookmarks"), list):
        return "karakeep", [_karakeep(b) for b in data["bookmarks"] if isinstance(b, dict)]
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return "omnivore", [_omnivore(item) for item in data]
    raise ImportError_("JSON that is neither an Omnivore export (a list of items) nor a Karakeep one "
                       "({\"bookmarks\": [...]})")


def _omnivore(item: dict) -> Entry:
    labels = [lb.get("name", "") if isinstance(lb, dict) else str(lb) for lb in item.get("labels") or []]
    return Entry(str(item.get("url") or ""), str(item.get("title") or ""), note=str(item.get("description") or ""),
                 tags=[lb for lb in labels if lb], added=from_iso(item.get("savedAt")),
                 read=str(item.get("state", "")).lower() == "archived")


def _karakeep(bookmark: dict) -> Entry:
    content = bookmark.get("content") if isinstance(bookmark.get("content"), dict) else {}
    tags = [t.get("name", "") if isinstance(t, dict) else str(t) for t in bookmark.get("tags") or []]
    return Entry(str(content.get("url") or ""), str(bookmark.get("title") or content.get("title") or ""),
                 note=str(bookmark.get("note") or ""), tags=[t for t in tags if t],
                 added=from_epoch(bookmark.get("createdAt")) or from_iso(bookmark.get("createdAt")),
                 read=bool(bookmark.get("archived")))


def read_plain(text: str) -> list[Entry]:
    """One link a line; blank lines and lines starting with "#" are skipped."""
    return [Entry(line.strip(), "") for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _split(value: str, sep: str) -> list[str]:
    return [t.strip() for t in value.split(sep) if t.strip()]
