"""`rq add` (and `rq import`): new links into the queue file, each where it belongs, one line each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from rq.cli.options import AllowPrivateOpt, IndexOpt, JsonOpt, QueueOpt, handles_errors, settings_from
from rq.cli.output import Bar, emit_json, one_line, plain, say, stderr, stdout
from rq.errors import RqError, UsageError

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the change as a diff and write nothing.")]


@handles_errors
def add(
    url: Annotated[str, typer.Argument(help="The link to add (http or https).", show_default=False)],
    section: Annotated[Optional[str], typer.Option(
        "--section", "-s", help="Put it here: a section's path, heading or a unique piece of one; "
        "a name no section has makes a new heading at the end.", show_default=False)] = None,
    note: Annotated[str, typer.Option("--note", help="Text to write after the link.")] = "",
    title: Annotated[Optional[str], typer.Option(
        "--title", help="The link's text (default: the page's own title).", show_default=False)] = None,
    read: Annotated[bool, typer.Option("--read", help="Add it ticked, as read.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Take the best section without asking.")] = False,
    dry_run: DryRunOpt = False,
    allow_private: AllowPrivateOpt = False,
    queue: QueueOpt = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch a page and file it in the section it belongs in: one new line in the queue file.

    Without --section, rq ranks the queue's sections by what they already hold (the page's text,
    else its title and note) and shows the best three with their evidence: the section's closest
    items and the heading's words in the title. It files the link in the best one when the evidence
    is strong, otherwise asks (on a terminal) or takes the best with --yes. The line copies the
    list it joins (bullet, indent, checkbox, line endings); nothing else in the file changes.
    The new link is indexed at once (only its own passages are embedded), so `rq search` finds it.
    A link already in the queue changes nothing: rq says where it is.

    Example: rq add https://example.com/post --note "from the newsletter"
    """
    from rq.ingest.capture import capture
    from rq.queue.parse import read_queue
    from rq.queue.resolve import target_section
    from rq.queue.urls import is_web_url

    settings = settings_from(queue=queue, index=index, allow_private=allow_private or None)
    path = _own_queue(settings)
    url = url.strip()
    if not is_web_url(url):
        raise UsageError(f"{url!r} is not an http(s) link")
    current = read_queue(path)
    there = _already(current, url)
    if there is not None:
        _report_already(there, json_out)
        return
    wanted = target_section(current, section) if section else None
    page = capture(settings, url, notice=say)
    if page.failure:
        say(f"could not fetch the page ({page.failure}); going by its title and note")
    title = title or page.title or _title_from_url(url)
    answer = {"url": url, "id": page.id, "title": title, "fetched": not page.failure, "failure": page.failure}
    if wanted is None:
        target, how = _predict(settings, title, note, page.text, yes, answer, json_out)
    else:
        target, how = wanted[0], "new heading" if wanted[1] else "--section"
    _file(settings, path, url, title, note, read, target, dry_run, {**answer, "section": list(target),
                                                                       "chosen_by": how}, json_out)


def _own_queue(settings):
    from rq.paths import locate

    location = locate(settings)
    if location.embedded:
        raise UsageError("rq writes only to your own queue file: pass --queue FILE or set RQ_QUEUE")
    return location.queue_path


def _already(queue, url: str):
    from rq.queue.urls import normalize_url

    wanted = normalize_url(url)
    return next((r for r in queue.resources if normalize_url(r.url) == wanted), None)


def _report_already(resource, json_out: bool) -> None:
    where = resource.section or "the top of the file"
    if json_out:
        emit_json({"added": False, "already": {"id": resource.id, "short_id": resource.short_id,
                                               "title": resource.title, "section": list(resource.section_path),
                                               "line": resource.line_no}})
        return
    stdout().print(f"already in the queue: {one_line(resource.title)} ({resource.short_id}) in "
                   f"{one_line(where)}, line {resource.line_no}; nothing changed")


def _title_from_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (parts.netloc + parts.path).rstrip("/") or url


# -- the section ------------------------------------------------------------------------------


def _predict(settings, title: str, note: str, text: str, yes: bool, answer: dict, json_out: bool):
    from rq.rank.topics.filing import file_link
    from rq.rank.topics.placement import SHOWN

    with Bar("indexing the queue") as bar:
        filing = file_link(settings, title, note, text, progress=bar)
    for notice in filing.notices:
        say(notice)
    shown = filing.candidates[:SHOWN]
    if not shown:
        raise UsageError("the queue has no sections to choose from: pass --section \"Heading\"")
    answer["candidates"] = [c.as_dict(filing.titles) for c in shown]
    if not json_out:
        out = stdout()
        basis = "its page" if filing.with_page else "its title and note"
        out.print(f"where {one_line(title)} fits, by {basis}:")
        for n, c in enumerate(shown, start=1):
            out.print(f"  {n}. {one_line(' / '.join(c.section) or '(top of the file)')}  score {c.score:.2f}")
            for i, sim in c.nearest[:2]:
                out.print(f"       close to: {one_line(filing.titles[i])[:70]} ({sim:.2f})")
            if c.words:
                out.print(f"       heading words in the title: {one_line(c.words)}")
            if not c.items:
                out.print("       (an empty heading: judged by its name alone)")
    best = shown[0].section
    if filing.strong:
        return best, "strong evidence"
    if yes:
        return best, "--yes"
    if sys.stdin.isatty() and not json_out:
        return _ask(shown), "asked"
    raise UsageError("the evidence for a section is weak: pass --section with one of them, or --yes to take "
                     f"the best ({' / '.join(best)})")


def _ask(shown) -> tuple:
    while True:
        reply = typer.prompt(f"file it in [1-{len(shown)}], or q to stop", default="1", err=True).strip()
        if reply.lower() in ("q", "quit"):
            raise RqError("nothing was added")
        if reply.isdigit() and 1 <= int(reply) <= len(shown):
            return shown[int(reply) - 1].section
        stderr().print(f"type a number from 1 to {len(shown)}, or q")


# -- the file and the index -------------------------------------------------------------------


def _file(settings, path, url: str, title: str, note: str, read: bool, target: tuple, dry_run: bool,
          answer: dict, json_out: bool) -> None:
    from rq.queue.edit import edit_file
    from rq.queue.insert import NewItem, insert_items
    from rq.queue.parse import parse_queue

    def change(queue):
        there = _already(queue, url)  # saved by another program since rq looked
        if there is not None:
            raise RqError(f"{url} is already in the queue (line {there.line_no}); nothing was written")
        return insert_items(queue, [NewItem(url, title, target, note, read)])

    result = edit_file(path, change, dry_run=dry_run)
    for warning in result.warnings:
        say(f"warning: {warning}")
    added = _already(parse_queue(result.after, path), url)
    diff = unified_diff(result.before, result.after, path)
    answer.update(added=not dry_run, dry_run=dry_run, line=added.line_no, diff=diff)
    if not dry_run:
        answer["index"] = _index(settings).__dict__
    if json_out:
        emit_json(answer)
        return
    out = stdout()
    for line in diff.splitlines():
        out.print(plain(line))
    where = " / ".join(target) or "the top of the file"
    verb = "would add" if dry_run else "added"
    out.print(f"{verb}: {one_line(title)} in {one_line(where)} ({answer['chosen_by']}), line {added.line_no}"
              + ("; nothing was written" if dry_run else ""))


def unified_diff(before: bytes, after: bytes, path) -> str:
    """The change as `diff -u` shows it, in the file's own decoding."""
    import difflib

    from rq.queue.parse import parse_queue

    old, new = parse_queue(before, path).lines, parse_queue(after, path).lines
    return "".join(line if line.endswith("\n") else line + "\n"
                   for line in difflib.unified_diff([x.rstrip("\r\n") + "\n" for x in old],
                                                    [x.rstrip("\r\n") + "\n" for x in new],
                                                    f"a/{path.name}", f"b/{path.name}", n=1))


def _index(settings):
    from rq.cli.collect import print_index_report
    from rq.index.build import build_index

    with Bar("embedding") as bar:
        report = build_index(settings, progress=bar, notice=say)
    print_index_report(report)
    return report


# -- rq import --------------------------------------------------------------------------------


@handles_errors
def import_(
    file: Annotated[Path, typer.Argument(help="The export: bookmarks HTML, a CSV, OPML, JSON or a list of URLs.",
                                         show_default=False)],
    into: Annotated[Optional[Path], typer.Option(
        "--into", "--queue", "-q", help="The queue file to add to (default: RQ_QUEUE or configs/rq.toml).",
        show_default=False)] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="auto, netscape, pocket, instapaper, raindrop, opml, omnivore, karakeep or urls.")] = "auto",
    dry_run: DryRunOpt = False,
    allow_private: AllowPrivateOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Bring in bookmarks and read-later exports: each new link at the end of its heading's list.

    Reads Netscape bookmark HTML (Chrome, Firefox, Safari, Edge: folders become headings), Pocket,
    Instapaper and Raindrop CSV, OPML, Omnivore and Karakeep JSON, and a plain list of URLs. Read
    ("archive") items come in ticked; tags and the day saved go in the note (a tag that names one of
    your sections puts the link there). A link already in the queue, or twice in the export, is
    skipped; a link that is not http(s), is malformed or points at a private address is refused.
    Existing lines never change. Run `rq ingest` afterwards to fetch and index the new links.

    Example: rq import bookmarks.html --into ~/notes/reading.md --dry-run
    """
    from rq.queue.edit import edit_file
    from rq.queue.importers import plan_import, read_export
    from rq.queue.insert import insert_items

    settings = settings_from(queue=into)
    path = _own_queue(settings)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file} ({exc.strerror or exc})") from None
    kind, entries = read_export(raw, fmt)
    plans = []

    def change(queue):
        plans.append(plan_import(queue, kind, entries, allow_private=allow_private))
        return insert_items(queue, plans[-1].items)

    result = edit_file(path, change, dry_run=dry_run)
    for warning in result.warnings:
        say(f"warning: {warning}")
    plan = plans[-1]
    diff = unified_diff(result.before, result.after, path)
    counts = {s: plan.count(s) for s in ("added", "duplicate", "refused")}
    if json_out:
        emit_json({"format": kind, "dry_run": dry_run, **counts, "diff": diff,
                   "links": [{"url": o.url, "title": o.title, "status": o.status, "reason": o.reason,
                              "section": list(o.section)} for o in plan.outcomes]})
        return
    out = stdout()
    if dry_run:
        for line in diff.splitlines():
            out.print(plain(line))
    for o in plan.outcomes:
        if o.status != "added":
            out.print(f"{o.status}: {one_line(o.url)[:100]} ({one_line(o.reason)})")
    verb = "would add" if dry_run else "added"
    out.print(f"{kind}: {verb} {counts['added']}, skipped {counts['duplicate']} duplicate(s), refused "
              f"{counts['refused']}" + ("; nothing was written" if dry_run else ""))
    if counts["added"] and not dry_run:
        say("run `rq ingest` to fetch and index the new links")
