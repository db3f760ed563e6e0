"""`rq open`: what to open for a resource, its link or its archived text."""

from __future__ import annotations

from dataclasses import dataclass

from rq.archive.session import open_to_read
from rq.errors import NotFoundError, RqError
from rq.files import write_for_viewing
from rq.queue.resolve import resolve_resource
from rq.queue.urls import is_web_url
from rq.settings import Settings


@dataclass
class Target:
    id: str
    short_id: str
    title: str
    url: str
    opens: str  # what the browser is given: the link, or a file:// URL of the archived text
    archived: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def open_target(settings: Settings, ref: str, archived: bool = False) -> Target:
    """The resource ``ref`` names and what to open for it. With ``archived`` its archived text is
    written to a temporary .txt file (text, so nothing of the page runs) and that file is opened."""
    _, queue, archive = open_to_read(settings)
    try:
        resource = resolve_resource(queue, ref)
        doc = archive.document(resource.id) if archived else None
    finally:
        archive.close()
    if archived:
        if doc is None or not doc["text"].strip():
            raise NotFoundError(f"{resource.short_id} has no archived text (run `rq ingest`; "
                                "`rq show` says why a fetch failed)")
        header = f"{resource.title}\n{resource.url}\n(archived text, as rq extracted it)\n\n"
        try:
            path = write_for_viewing(header + doc["text"], resource.short_id)
        except OSError as exc:
            raise RqError(f"cannot write the archived text to a temporary file ({exc.strerror})") from None
        opens = path.as_uri()
    elif is_web_url(resource.url):
        opens = resource.url
    else:
        raise RqError(f"{resource.short_id}'s link is not a web link ({resource.url}); "
                      "try --archived, or open it yourself")
    return Target(resource.id, resource.short_id, resource.title, resource.url, opens, archived)
