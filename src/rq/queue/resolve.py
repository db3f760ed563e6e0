"""Turn what a user typed into what it names: an id, any unique prefix of one, a URL or a unique
fragment of a title into one resource; a piece of a section path into the sections it matches."""

from __future__ import annotations

import difflib

from rq.errors import NotFoundError, UsageError
from rq.queue.model import Queue, Resource
from rq.queue.urls import is_web_url, normalize_url

CANDIDATES_SHOWN = 5  # an ambiguous reference lists this many, then "and N more"
SECTIONS_SHOWN = 20  # an unknown --section lists every section up to this many, else the closest


def resolve_resource(queue: Queue, ref: str) -> Resource:
    """The one resource ``ref`` names: a URL, an id or unique id prefix, else a unique piece of a
    title (an exact title wins over titles that merely contain it)."""
    ref = ref.strip()
    if not ref:
        raise UsageError("give a resource id, URL or part of a title (see `rq ls`)")
    if is_web_url(ref):
        wanted = normalize_url(ref)
        for resource in queue.resources:
            if normalize_url(resource.url) == wanted:
                return resource
        raise NotFoundError(f"{ref} is not in the queue")
    by_id = [r for r in queue.resources if r.id.startswith(ref.lower())]
    if len(by_id) == 1:
        return by_id[0]
    if by_id:
        raise UsageError(f"id prefix {ref!r} is ambiguous: {_listed(by_id)}; type more of the id")
    by_title = _title_matches(queue, ref)
    if len(by_title) == 1:
        return by_title[0]
    if by_title:
        raise UsageError(f"{ref!r} is in {len(by_title)} titles: {_listed(by_title)}; "
                         "give more of the title, or an id")
    raise NotFoundError(f"no resource with id or title matching {ref!r} (see `rq ls`)")


def _title_matches(queue: Queue, fragment: str) -> list[Resource]:
    wanted = _folded(fragment)
    exact = [r for r in queue.resources if _folded(r.title) == wanted]
    return exact or [r for r in queue.resources if wanted in _folded(r.title)]


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def _listed(resources: list[Resource]) -> str:
    shown = ", ".join(f"{r.short_id} ({r.title[:40]})" for r in resources[:CANDIDATES_SHOWN])
    more = len(resources) - CANDIDATES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def section_names(queue: Queue) -> list[str]:
    """Every section path of the queue as people see it ("Papers / Search"), in file order."""
    names = [" / ".join(s.path) for s in queue.sections]
    for resource in queue.resources:
        if resource.section and resource.section not in names:
            names.append(resource.section)
    return names


def check_section(queue: Queue, text: str | None) -> None:
    """Raise a usage error listing the sections when ``text`` (a --section filter, matched as a
    piece of the section path) matches none of them: an empty answer would say "nothing here"
    when the filter itself is wrong."""
    if not text:
        return
    names = section_names(queue)
    if any(text.casefold() in name.casefold() for name in names):
        return
    if not names:
        raise UsageError(f"no section matches {text!r}: the queue has no sections")
    if len(names) <= SECTIONS_SHOWN:
        listed = "; ".join(names)
    else:
        by_name = {name.casefold(): name for name in names}
        close = difflib.get_close_matches(text.casefold(), list(by_name), n=SECTIONS_SHOWN, cutoff=0.0)
        listed = "; ".join(by_name[c] for c in close) + f"; and {len(names) - len(close)} more"
    raise UsageError(f"no section matches {text!r}; sections: {listed}")


def target_section(queue: Queue, text: str) -> tuple[tuple[str, ...], bool]:
    """The section ``text`` names for a new item, and whether it is new: an existing section by
    its full path ("Papers / Search"), its own heading or a unique piece of its path; else a new
    heading (under the existing section its leading " / " parts name, if any). A piece that
    matches several sections is a usage error listing them."""
    wanted = [" ".join(part.split()) for part in text.split(" / ") if part.strip()]
    if not wanted:
        raise UsageError("--section needs a heading")
    paths = list(dict.fromkeys([s.path for s in queue.sections] + [r.section_path for r in queue.resources if r.section_path]))
    folded = _folded(" / ".join(wanted))
    for test in (lambda p: _folded(" / ".join(p)) == folded, lambda p: _folded(p[-1]) == folded,
                 lambda p: folded in _folded(" / ".join(p))):
        found = [p for p in paths if test(p)]
        if len(found) == 1:
            return found[0], False
        if len(found) > 1:
            shown = "; ".join(" / ".join(p) for p in found[:SECTIONS_SHOWN])
            raise UsageError(f"--section {text!r} matches {len(found)} sections: {shown}; give more of its path")
    parent: tuple[str, ...] = ()
    for depth in range(len(wanted) - 1, 0, -1):
        head = _folded(" / ".join(wanted[:depth]))
        match = [p for p in paths if _folded(" / ".join(p)) == head]
        if len(match) == 1:
            parent = match[0]
            wanted = wanted[depth:]
            break
    return parent + tuple(wanted), True
