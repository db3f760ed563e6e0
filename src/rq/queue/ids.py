"""Resource ids: the SHA-1 of the normalised URL, shown as its shortest unambiguous prefix.

An id is all 40 hex digits of the hash, so two links never share one by chance and a
queue never becomes unusable. People see and type a short form: 8 hex digits, or as
many more as it takes to tell the resource apart from every other one in the queue, as
git does with commit hashes. Any unique prefix names a resource.
"""

from __future__ import annotations

import hashlib

from rq.queue.urls import normalize_url

SHORT = 8  # hex digits of the short form: a 1 % chance of any two sharing it at 10,000 items


def resource_id(url: str, normalized: str | None = None) -> str:
    """The SHA-1 of the normalised URL in hex: stable across edits elsewhere in the file.
    ``normalized``: normalize_url(url), when the caller has it already."""
    key = normalize_url(url) if normalized is None else normalized
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def short_ids(ids: list[str], minimum: int = SHORT) -> dict[str, str]:
    """Each id's shortest prefix of at least ``minimum`` digits that no other id starts with."""
    ordered = sorted(set(ids))
    shown = {}
    for i, rid in enumerate(ordered):
        shared = max(_common_prefix(rid, ordered[i - 1]) if i else 0,
                     _common_prefix(rid, ordered[i + 1]) if i + 1 < len(ordered) else 0)
        shown[rid] = rid[:max(minimum, shared + 1)]
    return shown


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
