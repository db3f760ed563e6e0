"""What an export holds, read into one shape: a link, its title, the folder it sat in, and what
the service kept about it (tags, when it was saved, whether it was read)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rq.errors import UsageError


class ImportError_(UsageError):  # noqa: N801 - ImportError is Python's own
    """The file is not an export of the format asked for (or of any format rq reads)."""


@dataclass
class Entry:
    url: str
    title: str
    folder: tuple[str, ...] = ()  # the folders it sat in, outermost first; () for none
    note: str = ""
    tags: list[str] = field(default_factory=list)
    added: str | None = None  # the day it was saved, YYYY-MM-DD
    read: bool = False


def from_epoch(value) -> str | None:
    """A saved-at time in seconds (or milliseconds, or microseconds: Chrome) since 1970 as a day."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    while seconds > 1e11:  # ms or µs
        seconds /= 1000
    if seconds <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        return None


def from_iso(value) -> str | None:
    """An ISO 8601 time ("2023-05-01T10:00:00.000Z", "2023-05-01 10:00:00") as a day."""
    if not isinstance(value, str) or len(value) < 10:
        return from_epoch(value)
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None
