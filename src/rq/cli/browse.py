"""`rq status`, `rq ls`, `rq show` and `rq health`: what is in the queue and the archive."""

from __future__ import annotations

from typing import Annotated

import typer

from rq.cli.options import (
    IndexOpt,
    JsonOpt,
    LimitOpt,
    QueueOpt,
    VerboseOpt,
    handles_errors,
    settings_from,
)
from rq.cli.output import emit_json, one_line, plain, say, state_mark, stdout, when
from rq.errors import RqError


@handles_errors
def status(queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Which queue and index are in use, and counts by read state and fetch status.

    Example: rq status --json
    """
    from rq.report.status import load_views, summarize

    location, parsed, items = load_views(settings_from(queue=queue, index=index))
    data = summarize(location, parsed, items)
    if json_out:
        emit_json(data)
        return
    out = stdout()
    out.print(f"queue: {plain(data['queue'])}" + (" (embedded default)" if data["embedded_default"] else ""))
    out.print(f"index: {plain(data['index'])}")
    out.print(f"resources: {data['resources']} in {data['sections']} sections ({data['empty_sections']} empty)")
    out.print("read state: " + ", ".join(f"{k} {v}" for k, v in sorted(data["by_state"].items()))
              + (f" ({data['without_checkbox']} without a checkbox)" if data["without_checkbox"] else ""))
    out.print("fetch: " + ", ".join(f"{k} {v}" for k, v in sorted(data["by_fetch"].items())))
    if data["failed_by_reason"]:
        out.print("failed: " + ", ".join(f"{one_line(k)} {v}" for k, v in sorted(data["failed_by_reason"].items())))
    if data.get("changed_since_read"):
        out.print(f"changed since read: {data['changed_since_read']} (see `rq health`)")
    for warning in data["warnings"]:
        say(f"warning: {warning}")


@handles_errors
def ls(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    section: Annotated[str | None, typer.Option(
        "--section", "-s", help="Only sections whose path contains this text.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only resources not marked read.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Only resources whose last fetch failed.")] = False,
    limit: LimitOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List resources: id, read state, section, title, fetch status.

    [x] read, [ ] unread, · listed without a checkbox (counted as unread). In a terminal each
    resource takes one line, cut to its width; piped, nothing is cut.

    Example: rq ls --unread --section "Blog Posts" -n 20
    """
    from rq.report.status import load_views, select

    _, parsed, items = load_views(settings_from(queue=queue, index=index))
    items = select(parsed, items, section=section, unread=unread, failed=failed)
    shown = items[:limit] if limit else items
    if json_out:
        emit_json([v.as_dict() for v in shown])
        return
    if not items:
        stdout().print(_nothing_listed(section, unread, failed))
        return
    print_items(shown)
    if len(shown) < len(items):
        say(f"{len(shown)} of {len(items)} shown; -n {len(items)} shows them all")


def _nothing_listed(section: str | None, unread: bool, failed: bool) -> str:
    what = "unread resources" if unread else "resources"
    if failed:
        what += " whose last fetch failed"
    where = f" in sections matching '{one_line(section)}'" if section else " in the queue"
    return f"no {what}{where}"


def print_items(items) -> None:
    from rich.table import Table

    out = stdout()
    rows = [[one_line(cell) for cell in (v.short_id, state_mark(v.state, v.checkbox), v.section, v.title,
                                         v.fetch + (f": {v.reason}" if v.reason else ""))] for v in items]
    # In a terminal a row is one line, its cells cut with "…"; piped, nothing is cut (width 400).
    widths = _fitted_widths(rows, out.width) if out.is_terminal else [None] * 5
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col, width in zip(("id", "", "section", "title", "fetch"), widths):
        table.add_column(col, width=width, no_wrap=width is not None, overflow="ellipsis" if width else "fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _fitted_widths(rows: list[list[str]], total: int) -> list[int]:
    """Column widths that fit ``total``: id and mark whole, fetch up to 16, and what is left
    shared by section (a third) and title (the rest), neither wider than its longest cell."""
    longest = [max(len(r[c]) for r in rows) for c in range(5)]
    longest[2] = max(longest[2], len("section"))
    fixed = [longest[0], 3, min(longest[4], 16)]
    left = max(total - sum(fixed) - 2 * 4, 16)  # four gaps of two spaces between five columns
    section = min(longest[2], max(left // 3, 6))
    title = max(min(longest[3], left - section), 8)
    section = min(longest[2], max(left - title, 6))
    return [fixed[0], fixed[1], section, title, fixed[2]]


@handles_errors
def show(
    resource: Annotated[str, typer.Argument(help="Resource id (or a unique prefix of one), or its URL.")],
    queue: QueueOpt = None,
    index: IndexOpt = None,
    chars: Annotated[int, typer.Option("--chars", min=0, help="How much of the extracted text to show.")] = 800,
    json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """One resource: where it sits in the queue, its extracted text's head and its fetch history.

    Example: rq show 6de98d1b
    """
    from rq.report.resource import resource_detail

    data = resource_detail(settings_from(queue=queue, index=index), resource, chars)
    if json_out:
        emit_json(data)
        return
    print_resource(data)


def print_resource(data: dict) -> None:
    import datetime as dt

    out = stdout()
    out.print(f"{one_line(data['title'])}  ({data['short_id']})", style="bold")
    out.print(one_line(data["url"]))
    also = f" (also lines {data['places'][1:]})" if len(data["places"]) > 1 else ""
    state = data["state"] + ("" if data["checkbox"] else " (no checkbox)")
    out.print(f"section: {one_line(data['section']) or '(none)'}   state: {state}   "
              f"line {data['line_no']}{also}")
    if data["note"]:
        out.print(f"note: {one_line(data['note'])}")
    for link in data["extra_links"]:
        out.print(f"also: {one_line(link)}")
    why = f" ({one_line(data['reason'])}: {one_line(data['detail'])})" if data["reason"] else ""
    out.print(f"fetch: {data['fetch']}{why}")
    if data["text_head"]:
        out.print(f"\n--- text ({data['text_chars']} chars) ---\n{plain(data['text_head'])}")
    elif data["fetch"] != "archived":
        out.print("\nno archived text: search uses its title, note and section")
    if data["history"]:
        out.print("\n--- fetch history ---")
        for h in data["history"]:
            at = dt.datetime.fromtimestamp(h["at"]).strftime("%Y-%m-%d %H:%M:%S")
            out.print(f"{at}  {h['outcome']:<12} {one_line(h['reason'] or ''):<12} {h['http_status'] or '':<4} "
                      f"{one_line(h['detail'])}")


@handles_errors
def health(
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Only links failing for this reason (e.g. not_found, soft_404).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when any link is dead (for CI); without it rq health exits 0.")] = False,
    limit: LimitOpt = None,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Link health: dead links by reason (not found, DNS, refused, TLS, timeout, too large, not
    text, soft 404...), whether an archived copy survives, and pages changed since you read them.

    -n N lists at most N links per reason. Links not checked because the machine was offline are
    not dead, and do not fail --check.

    Example: rq health --check --reason soft_404
    """
    from rq.report.health import health_report

    report = health_report(settings_from(queue=queue, index=index))
    if reason:
        report["by_reason"] = {k: v for k, v in report["by_reason"].items() if k == reason}
    dead = sum(len(entries) for entries in report["by_reason"].values())
    if limit:
        report["by_reason"] = {k: v[:limit] for k, v in report["by_reason"].items()}
    if json_out:
        emit_json(report)
    else:
        print_health(report, limit)
    if check and dead:
        say(f"{dead} dead link{'s' if dead != 1 else ''}" + (f" ({reason})" if reason else "") + "; exit 1 (--check)")
        raise typer.Exit(1)


def print_health(report: dict, limit: int | None = None) -> None:
    out = stdout()
    offline = report["not_checked"].get("offline", [])
    out.print(f"{report['web_links']} web links: {report['working']} working, {report['failing']} failing"
              + (f", {len(offline)} not checked (offline)" if offline else "")
              + f", {report['not_fetched']} never fetched")
    for reason, entries in report["by_reason"].items():
        total = report["counts"].get(reason, len(entries))
        out.print(f"\n{one_line(reason)} ({total})", style="bold")
        for e in entries:
            copy = f"archived copy from {when(e['archived_at'])}" if e["archived_copy"] else "no archived copy"
            out.print(f"  {e['short_id']}  {one_line(e['title'])}  | last worked {when(e['last_ok_at'])}; {copy}")
            out.print(f"      {one_line(e['url'])}  ({one_line(e['detail'])})", style="dim")
        if total > len(entries):
            out.print(f"  and {total - len(entries)} more (rq health --reason {one_line(reason)})", style="dim")
    if offline:
        out.print(f"\nnot checked: offline ({len(offline)}): the machine looked offline when ingest last tried "
                  "them; they are not counted as dead, and the next `rq ingest` tries them again", style="bold")
        for e in offline:
            out.print(f"  {e['short_id']}  {one_line(e['title'])}  | last worked {when(e['last_ok_at'])}")
    if report["changed_since_read"]:
        out.print(f"\nchanged since you read them ({len(report['changed_since_read'])})", style="bold")
        for c in report["changed_since_read"]:
            out.print(f"  {c['short_id']}  {one_line(c['title'])}  (text similarity {c.get('similarity', 0):.2f})")


@handles_errors
def open(
    resource: Annotated[str, typer.Argument(help="Resource id (or unique prefix), URL or part of its title.")],
    archived: Annotated[bool, typer.Option(
        "--archived", help="Open the archived text instead (a temporary .txt file): for dead links.")] = False,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Open a resource's link in your web browser (the BROWSER variable chooses which).

    Example: rq open 6de98d1b   or   rq open "real time recsys" --archived
    """
    import webbrowser

    from rq.report.opening import open_target

    target = open_target(settings_from(queue=queue, index=index), resource, archived=archived)
    try:
        opened = webbrowser.open(target.opens)
    except webbrowser.Error:
        opened = False
    if not opened:
        raise RqError(f"no web browser could be started (set BROWSER); the {'file' if archived else 'link'} "
                      f"is: {target.opens}")
    if json_out:
        emit_json(target.as_dict())
    else:
        say(f"opened {one_line(target.title)} ({target.short_id}): {one_line(target.opens)}")

