"""What the archive records of a fetch, and the names of the reasons a fetch fails for."""

from __future__ import annotations

from dataclasses import dataclass

# A page answered 200 that is really the site's "not found" page (see rq.ingest.soft404),
# and the signals that can tell so, as the first word of such a fetch's detail.
SOFT_404 = "soft_404"
SOFT_404_SIGNALS = ("home_redirect", "title", "text", "sibling")

# Failures that will not heal by themselves within the freshness window (a change of the
# setting behind "blocked" or "too_large" does heal them: rq.ingest.policy).
PERMANENT_REASONS = frozenset({"not_found", "blocked", "bad_url", "too_large", SOFT_404})

# A link not checked because the machine looked offline when ingest ran (rq.ingest.offline):
# recorded as a failed fetch, but not a dead link, and tried again at the next ingest.
OFFLINE = "offline"


@dataclass(frozen=True)
class FetchRecord:
    resource_id: str
    url: str
    at: float
    outcome: str
    reason: str | None
    detail: str
    http_status: int | None
    final_url: str | None
    content_type: str | None
    etag: str | None
    last_modified: str | None
    body_sha: str | None
    bytes: int | None
    attempts: int | None
    elapsed: float | None
    policy: str | None = None  # the settings the fetch ran under that can decide a failure (rq.ingest.policy)


