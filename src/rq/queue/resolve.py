"""Turn what a user typed (an id, any unique prefix of one, or a URL) into one resource."""

from __future__ import annotations

from rq.errors import NotFoundError, UsageError
from rq.queue.model import Queue, Resource
from rq.queue.urls import is_web_url, normalize_url


def resolve_resource(queue: Queue, ref: str) -> Resource:
    ref = ref.strip()
    if not ref:
        raise UsageError("give a resource id or URL (see `rq ls`)")
    if is_web_url(ref):
        wanted = normalize_url(ref)
        for resource in queue.resources:
            if normalize_url(resource.url) == wanted:
                return resource
        raise NotFoundError(f"{ref} is not in the queue")
    matches = [r for r in queue.resources if r.id.startswith(ref.lower())]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(f"no resource with id {ref!r} (see `rq ls`)")
    shown = ", ".join(f"{r.short_id} ({r.title[:40]})" for r in matches[:5])
    more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
    raise UsageError(f"id prefix {ref!r} is ambiguous: {shown}{more}; type more of the id")
