"""Failures a setting caused, and whether that setting has changed since.

A link refused for its address (``blocked``: allow_private, allow_hosts) or for its size
(``too_large``: max_bytes) fails the same way every time under the same settings, so it is
not fetched again within the freshness window. When the person changes the setting (as the
failure's hint tells them to), that reason no longer holds: the link is fetched again on the
next ingest. Each fetch records the settings it ran under (``fetches.policy``, JSON).
"""

from __future__ import annotations

import json

from rq.archive.records import FetchRecord
from rq.settings import Settings

# The settings each reason depends on.
SETTING_REASONS: dict[str, tuple[str, ...]] = {
    "blocked": ("allow_private", "allow_hosts"),
    "too_large": ("max_bytes",),
}


def policy_of(settings: Settings) -> str:
    """The settings that can decide a failure, as the JSON a fetch record keeps."""
    return json.dumps({
        "allow_private": settings.allow_private,
        "allow_hosts": sorted(h.lower() for h in settings.allow_hosts),
        "max_bytes": settings.max_bytes,
    }, sort_keys=True)


def setting_changed(last: FetchRecord, settings: Settings) -> bool:
    """Whether ``last`` failed for a reason a setting decides, and that setting is not what it was.
    A fetch recorded before rq kept its policy (NULL) counts as changed: it is tried once more."""
    names = SETTING_REASONS.get(last.reason or "")
    if not names or last.outcome != "failed":
        return False
    try:
        then = json.loads(last.policy) if last.policy else None
    except ValueError:
        then = None
    if not isinstance(then, dict):
        return True
    now = json.loads(policy_of(settings))
    return any(then.get(name) != now[name] for name in names)
