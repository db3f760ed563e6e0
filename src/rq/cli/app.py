"""The `rq` command line: the only module that prints or exits.

Data goes to stdout (tables, or JSON with --json); progress, warnings and
errors go to stderr. Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from rq.errors import RqError, UsageError

app = typer.Typer(
    help="Search and mine a Markdown reading queue.\n\nExample: rq search \"real-time recsys\"",
    no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

QueueOpt = Annotated[Optional[Path], typer.Option(
    "--queue", "-q", help="Markdown queue file (default: RQ_QUEUE, configs/rq.toml, else the embedded sample).",
    show_default=False)]
IndexOpt = Annotated[Optional[Path], typer.Option(
    "--index", help="Index folder (default: one per queue; see `rq status`).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _stdout():
    from rich.console import Console
    # Piped output keeps one resource per line instead of wrapping at 80 columns.
    width = None if sys.stdout.isatty() else 400
    return Console(soft_wrap=True, highlight=False, markup=False, width=width)


def _stderr():
    from rich.console import Console
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    _stderr().print(f"rq: {message}", markup=False)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def handles_errors(func: Callable) -> Callable:
    """Turn rq's own exceptions into one line on stderr and the right exit code."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RqError as exc:
            _stderr().print(f"[bold red]rq:[/] {exc}", markup=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _stderr().print("rq: interrupted; what was done so far is kept")
            raise typer.Exit(130) from None
    return wrapper


def settings_from(**flags: Any):
    from rq.settings import load_settings
    return load_settings(flags)


class _Bar:
    """A rich progress bar on stderr, driven by the core's progress(done, total, what) callback."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("[dim]{task.fields[what]}"), console=_stderr(), transient=False)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int, what: str = "") -> None:
        if self.task is None:
            self.task = self.progress.add_task("", total=total, what="")
        self.progress.update(self.task, completed=done, total=total, what=what[-60:])


@app.command()
@handles_errors
def ingest(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch every link again, fresh or not.")] = False,
    allow_private: Annotated[bool, typer.Option(
        "--allow-private", help="Let links reach loopback/private addresses (off: a shared list must not probe your network).")] = False,
    no_index: Annotated[bool, typer.Option("--no-index", help="Skip updating the search index afterwards.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Fetch every link of the queue, extract its text and archive both, then update the index.

    A re-run fetches only what is stale, extracts only what changed and embeds nothing twice.

    Example: rq ingest --queue ~/notes/reading.md
    """
    from rq.ingest.pipeline import ingest as run_ingest

    settings = settings_from(queue=queue, index=index, refresh=refresh or None, allow_private=allow_private or None)
    with _Bar("fetching") as bar:
        summary = run_ingest(settings, progress=bar)
    _print_ingest_summary(summary)  # stderr: a report on the run, also when stdout carries JSON
    report = None
    if not no_index:
        from rq.index.build import build_index
        with _Bar("embedding") as bar:
            report = build_index(settings, progress=bar, notice=_warn)
        _print_index_report(report)
    if json_out:
        emit_json({**summary.as_dict(), "index": report.__dict__ if report else None})
    if not summary.did_something:
        raise typer.Exit(1)


def _print_ingest_summary(summary) -> None:
    err = _stderr()
    failed = sum(summary.failed.values())
    err.print(f"{summary.resources} resources: {summary.fetched} fetched, {summary.unchanged} unchanged, "
              f"{summary.fresh} fresh (skipped), {failed} failed"
              + (f", {summary.not_web} not web links" if summary.not_web else "")
              + (f", {summary.no_text} without text" if summary.no_text else "")
              + f" in {summary.seconds:.1f}s")
    for reason, count in summary.failed.most_common():
        err.print(f"  failed ({reason}): {count}")
    if failed:
        err.print("  links that could not be fetched are indexed from their title, note and section")
    changed = getattr(summary, "changed_since_read", 0)
    if changed:
        err.print(f"  {changed} page(s) you read have changed since (see `rq health`)")
    for failure in summary.failures[:10]:
        err.print(f"  [dim]{failure['id']} {failure['reason']}: {failure['url']} ({failure['detail']})[/]")


@app.command()
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
    out = _stdout()
    out.print(f"queue: {data['queue']}" + (" (embedded default)" if data["embedded_default"] else ""))
    out.print(f"index: {data['index']}")
    out.print(f"resources: {data['resources']} in {data['sections']} sections ({data['empty_sections']} empty)")
    out.print("read state: " + ", ".join(f"{k} {v}" for k, v in sorted(data["by_state"].items())))
    out.print("fetch: " + ", ".join(f"{k} {v}" for k, v in sorted(data["by_fetch"].items())))
    if data["failed_by_reason"]:
        out.print("failed: " + ", ".join(f"{k} {v}" for k, v in sorted(data["failed_by_reason"].items())))
    if data.get("changed_since_read"):
        out.print(f"changed since read: {data['changed_since_read']} (see `rq health`)")
    for warning in data["warnings"]:
        _stderr().print(f"warning: {warning}")


def _state_mark(state: str | None) -> str:
    return {"read": "[x]", "unread": "[ ]"}.get(state or "", " · ")


@app.command("ls")
@handles_errors
def list_resources(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    section: Annotated[Optional[str], typer.Option("--section", "-s", help="Only sections whose path contains this text.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only resources not marked read.")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Only resources whose last fetch failed.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List resources: id, read state, section, title, fetch status.

    Example: rq ls --unread --section "Blog Posts"
    """
    from rq.report.status import load_views

    _, _, items = load_views(settings_from(queue=queue, index=index))
    if section:
        items = [v for v in items if section.lower() in v.section.lower()]
    if unread:
        items = [v for v in items if not v.is_read]
    if failed:
        items = [v for v in items if v.fetch == "failed"]
    if json_out:
        emit_json([v.as_dict() for v in items])
        return
    from rich.table import Table
    from rich.text import Text
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("id", "", "section", "title", "fetch"):
        table.add_column(col, overflow="fold")
    for v in items:
        fetch = v.fetch + (f": {v.reason}" if v.reason else "")
        table.add_row(*(Text(cell) for cell in (v.id, _state_mark(v.state), v.section, v.title, fetch)))
    _stdout().print(table)


@app.command()
@handles_errors
def show(
    resource: Annotated[str, typer.Argument(help="Resource id (or a unique prefix of one), or its URL.")],
    queue: QueueOpt = None,
    index: IndexOpt = None,
    chars: Annotated[int, typer.Option("--chars", help="How much of the extracted text to show.")] = 800,
    json_out: JsonOpt = False,
) -> None:
    """One resource: where it sits in the queue, its extracted text's head and its fetch history.

    Example: rq show 6de98d1b
    """
    from rq.queue.resolve import resolve_resource
    from rq.archive.session import open_for, sync_queue
    from rq.archive.views import describe

    location, parsed, archive = open_for(settings_from(queue=queue, index=index))
    try:
        sync_queue(archive, parsed)
        res = resolve_resource(parsed, resource)
        doc = archive.document(res.id)
        history = archive.fetch_history(res.id)
        view = describe(res, history[0] if history else None, doc)
    finally:
        archive.close()
    text = doc["text"] if doc is not None else ""
    data = {**view.as_dict(), "text_head": text[:chars], "text_chars": len(text),
            "document": {k: doc[k] for k in ("kind", "title", "author", "date", "pages", "problem")} if doc else None,
            "history": [h.__dict__ for h in history]}
    if json_out:
        emit_json(data)
        return
    _print_show(data)


def _print_show(data: dict) -> None:
    import datetime as dt
    out = _stdout()
    from rich.markup import escape
    out.print(f"[bold]{escape(data['title'])}[/]  ({data['id']})", markup=True)
    out.print(f"{data['url']}")
    out.print(f"section: {data['section'] or '(none)'}   state: {data['state'] or 'no checkbox'}   "
              f"line {data['line_no']}" + (f" (also lines {data['places'][1:]})" if len(data['places']) > 1 else ""))
    if data["note"]:
        out.print(f"note: {data['note']}")
    for link in data["extra_links"]:
        out.print(f"also: {link}")
    out.print(f"fetch: {data['fetch']}" + (f" ({data['reason']}: {data['detail']})" if data["reason"] else ""))
    if data["text_head"]:
        out.print(f"\n--- text ({data['text_chars']} chars) ---\n{data['text_head']}")
    elif data["fetch"] != "archived":
        out.print("\nno archived text: search uses its title, note and section")
    if data["history"]:
        out.print("\n--- fetch history ---")
        for h in data["history"]:
            when = dt.datetime.fromtimestamp(h["at"]).strftime("%Y-%m-%d %H:%M:%S")
            out.print(f"{when}  {h['outcome']:<12} {h['reason'] or '':<12} {h['http_status'] or '':<4} {h['detail']}")


@app.command("index")
@handles_errors
def index_cmd(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild even if up to date (vectors still come from the cache).")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Embedding model name or local folder.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Cut archived text into passages, embed them and build the vector and keyword indexes.

    Unchanged passages are never embedded twice. `rq search` runs this by itself when needed.

    Example: rq index --rebuild
    """
    from rq.index.build import build_index

    settings = settings_from(queue=queue, index=index, model=model)
    with _Bar("embedding") as bar:
        report = build_index(settings, progress=bar, force=rebuild, notice=_warn)
    if json_out:
        emit_json(report.__dict__)
        return
    _print_index_report(report)


def _print_index_report(report) -> None:
    if report.built:
        _stderr().print(f"index built ({report.reason}): {report.passages} passages of {report.resources} "
                        f"resources, {report.embedded} embedded, {report.cached} from cache, "
                        f"{report.vector_index} vectors, {report.seconds:.1f}s", markup=False)
    else:
        _stderr().print(f"index up to date: {report.passages} passages of {report.resources} resources")


@app.command()
@handles_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.")],
    k: Annotated[int, typer.Option("-k", help="How many resources to show.")] = 10,
    section: Annotated[Optional[str], typer.Option("--section", "-s", help="Only sections whose path contains this text.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only resources not marked read.")] = False,
    read: Annotated[bool, typer.Option("--read", help="Only resources marked read.")] = False,
    kind: Annotated[Optional[str], typer.Option("--type", help="Only html or pdf documents.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid (default), dense or keyword.")] = "hybrid",
    queue: QueueOpt = None,
    index: IndexOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Embedding model the index was built with.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Find resources by what their pages say, with the passage that matched.

    Example: rq search "real-time recsys" -k 5 --unread
    """
    from rq.rank.search import Filters, search as run_search

    if unread and read:
        raise UsageError("--read and --unread exclude each other")
    if kind is not None and kind not in ("html", "pdf"):
        raise UsageError("--type takes html or pdf")
    settings = settings_from(queue=queue, index=index, model=model)
    filters = Filters(section=section, read=True if read else (False if unread else None), kind=kind)
    with _Bar("indexing") as bar:
        response = run_search(settings, query, k=k, mode=mode, filters=filters, notice=_warn, progress=bar)
    if json_out:
        emit_json({"query": response.query, "mode": response.mode, "notices": response.notices,
                   "results": [h.as_dict() for h in response.hits]})
        return
    _print_hits(response)


def _print_hits(response) -> None:
    from rich.text import Text
    out = _stdout()
    if not response.hits:
        out.print("no results")
        return
    for hit in response.hits:
        head = Text(f"{hit.rank:>2}. ", style="bold")
        head.append(hit.title, style="bold")
        head.append(f"  {_state_mark(hit.state)} {hit.id}  {hit.score:.3f}", style="dim")
        out.print(head)
        fetch = hit.fetch + (f": {hit.reason}" if hit.reason else "")
        if not hit.has_text:
            fetch += "; matched on title/note/section only"
        out.print(Text(f"    {hit.section or '(no section)'} | {fetch} | {hit.url}", style="dim"))
        if hit.passage:
            passage = Text("    " + hit.passage)
            for start, end in hit.highlights:
                passage.stylize("bold yellow", start + 4, end + 4)
            out.print(passage)


def _mark(resource: str, state: str, queue, index, json_out: bool) -> None:
    from rq.archive.marks import mark

    result = mark(settings_from(queue=queue, index=index), resource, state)
    for warning in result.warnings:
        _stderr().print(f"rq: warning: {warning}", markup=False)
    if json_out:
        emit_json({"id": result.resource.id, "title": result.resource.title, "state": state,
                   "changed": result.changed, "lines": result.lines})
        return
    verb = "marked read" if state == "read" else "marked unread"
    if result.changed:
        _stdout().print(f"{verb}: {result.resource.title} ({result.resource.id}), line {', '.join(map(str, result.lines))}")
    else:
        _stdout().print(f"already {state}: {result.resource.title} ({result.resource.id}); file not touched")


@app.command()
@handles_errors
def done(
    resource: Annotated[str, typer.Argument(help="Resource id (or unique prefix), or its URL.")],
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Mark a resource read: ticks its checkbox in the Markdown file and nothing else.

    Example: rq done 6de98d1b --queue ~/reading.md
    """
    _mark(resource, "read", queue, index, json_out)


@app.command()
@handles_errors
def todo(
    resource: Annotated[str, typer.Argument(help="Resource id (or unique prefix), or its URL.")],
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Mark a resource unread again: unticks its checkbox.

    Example: rq todo 6de98d1b --queue ~/reading.md
    """
    _mark(resource, "unread", queue, index, json_out)


@app.command("next")
@handles_errors
def next_cmd(
    n: Annotated[int, typer.Option("-n", help="How many suggestions.")] = 5,
    section: Annotated[Optional[str], typer.Option("--section", "-s", help="Only sections whose path contains this text.")] = None,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Which unread resource to read next, and why: learned from what you marked read.

    Example: rq next -n 3 --section MLOps
    """
    from rq.rank.nextread import next_reads

    answer = next_reads(settings_from(queue=queue, index=index), n=n, section=section)
    _print_answer(answer, json_out, "read next")


@app.command()
@handles_errors
def related(
    ref: Annotated[str, typer.Argument(help="A resource id (or prefix), a URL from the queue, or free text.")],
    n: Annotated[int, typer.Option("-n", help="How many resources.")] = 5,
    text: Annotated[bool, typer.Option("--text", help="Treat REF as text even if it looks like an id.")] = False,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Resources nearest to one of yours, or to a piece of text, with the passages that link them.

    Example: rq related 6de98d1b   or   rq related "feature stores for online inference"
    """
    from rq.rank.nextread import related_to

    answer = related_to(settings_from(queue=queue, index=index), ref, n=n, as_text=text)
    _print_answer(answer, json_out, answer.method)


def _print_answer(answer, json_out: bool, heading: str) -> None:
    from rich.text import Text
    for notice in answer.notices:
        _warn(notice)
    if json_out:
        emit_json(answer.as_dict())
        return
    out = _stdout()
    if answer.fallback:
        _warn(f"{answer.fallback} (a fallback: mark items read with `rq done ID` to teach it)")
    for s in answer.suggestions:
        head = Text(f"{s.rank:>2}. ", style="bold")
        head.append(s.title, style="bold")
        head.append(f"  {_state_mark(s.state)} {s.id}  {s.score:.3f}", style="dim")
        out.print(head)
        out.print(Text(f"    {s.section or '(no section)'} | {s.url}", style="dim"))
        if s.because:
            out.print(Text("    because you read: " + "; ".join(f"{b.title} ({b.similarity:.2f})" for b in s.because)))
        if s.pair:
            out.print(Text(f"    this: \"{_clip(s.pair.mine)}\"", style="italic"))
            out.print(Text(f"    that: \"{_clip(s.pair.theirs)}\"", style="italic"))


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


@app.command()
@handles_errors
def clusters(
    k: Annotated[str, typer.Option("--k", help="Number of clusters, or auto.")] = "auto",
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Group resources by content, name the groups, and audit the queue's own sections.

    Suggestions only: the queue file is not touched.

    Example: rq clusters --k auto
    """
    from rq.rank.collection import cluster_report, parse_k

    report = cluster_report(settings_from(queue=queue, index=index), parse_k(k))
    for notice in report.notices:
        _warn(notice)
    if json_out:
        emit_json(report.as_dict())
        return
    _print_clusters(report)


def _section(path) -> str:
    return " / ".join(path) if path else "(before the first heading)"


def _print_clusters(report) -> None:
    from rich.table import Table
    from rich.text import Text
    out, audit = _stdout(), report.audit
    out.print(Text(f"{report.clustering.k} clusters of {report.resources} resources "
                   f"({report.clustering.method}; {report.clustering.how})", style="bold"))
    for c in audit.clusters:
        home = f"mostly {_section(c.section)} ({c.share:.0%})" if c.section is not None else "no dominant section"
        out.print(f"  [{c.cluster}] {', '.join(c.words) or '(unnamed)'}: {c.size} items, {home}")
    table = Table(title="sections x clusters", box=None, title_justify="left")
    table.add_column("section")
    for c in audit.clusters:
        table.add_column(str(c.cluster), justify="right")
    for row in audit.table:
        table.add_row(Text(_section(row.section)), *(str(v or "·") for v in row.counts))
    out.print(table)
    _print_audit(out, audit)


def _print_audit(out, audit) -> None:
    from rich.text import Text
    if audit.overlaps:
        out.print(Text("\nsections that overlap", style="bold"))
        for o in audit.overlaps:
            causes = "; ".join(c.title for c in o.causes)
            out.print(f"  {_section(o.a)} ~ {_section(o.b)} (centroids {o.similarity:.2f}): {causes}")
    if audit.misfiled:
        out.print(Text("\nitems that look misfiled", style="bold"))
        for m in audit.misfiled:
            near = ", ".join(n.title for n in m.best_section_neighbours)
            out.print(f"  {m.title}: in {_section(m.section)}, closer to {_section(m.best_section)} "
                      f"({m.best_similarity:.2f} vs {m.own_similarity:.2f}; near {near})")
    if audit.thin:
        out.print(Text("\nempty or thin sections", style="bold"))
        for t in audit.thin:
            items = t.by_heading or t.by_centroid
            hint = "; ".join(f"{i.title} (now in {_section(i.section)})" for i in items) or "nothing matches yet"
            out.print(f"  {_section(t.section)} ({t.kind}): {hint}")
    if audit.formats:
        out.print(Text("\nsections grouped by format, not topic", style="bold"))
        for f in audit.formats:
            out.print(f"  {_section(f.section)} ({f.size} items; {f.reason})")
            for d in f.destinations:
                where = _section(d.section) if d.section is not None else f"topic [{d.cluster}] {', '.join(d.cluster_words)}"
                out.print(f"    {d.title} -> {where}")


@app.command("map")
@handles_errors
def map_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.html (interactive, self-contained) or FILE.png.")],
    color: Annotated[str, typer.Option("--color", help="Colour points by section or cluster.")] = "section",
    k: Annotated[str, typer.Option("--k", help="Number of clusters to name on the map, or auto.")] = "auto",
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Draw the collection in 2-D: one point per resource, read ones filled, clusters named.

    Example: rq map --out queue-map.html --color cluster
    """
    from rq.rank.collection import parse_k, write_collection_map

    info = write_collection_map(settings_from(queue=queue, index=index), out, color_by=color, k=parse_k(k))
    for notice in info["notices"]:
        _warn(notice)
    if json_out:
        emit_json(info)
    else:
        _stderr().print(f"map of {info['resources']} resources ({info['projection']}, {info['clusters']} clusters) "
                        f"written to {info['out']}", markup=False)


@app.command()
@handles_errors
def health(
    reason: Annotated[Optional[str], typer.Option("--reason", help="Only links failing for this reason (e.g. not_found, soft_404).")] = None,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Link health: dead links by reason (not found, DNS, refused, TLS, timeout, too large, not
    text, soft 404...), whether an archived copy survives, and pages changed since you read them.

    Example: rq health --reason soft_404
    """
    from rq.report.health import health_report

    report = health_report(settings_from(queue=queue, index=index))
    if reason:
        report["by_reason"] = {k: v for k, v in report["by_reason"].items() if k == reason}
    if json_out:
        emit_json(report)
        return
    _print_health(report)


def _when(ts) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else "never"


def _print_health(report: dict) -> None:
    from rich.text import Text
    out = _stdout()
    out.print(f"{report['web_links']} web links: {report['fetched']} fetched, {report['not_fetched']} never fetched, "
              f"{report['failing']} failing")
    for reason, entries in report["by_reason"].items():
        out.print(Text(f"\n{reason} ({len(entries)})", style="bold"))
        for e in entries:
            copy = f"archived copy from {_when(e['archived_at'])}" if e["archived_copy"] else "no archived copy"
            out.print(Text(f"  {e['id']}  {e['title']}  | last worked {_when(e['last_ok_at'])}; {copy}"))
            out.print(Text(f"      {e['url']}  ({e['detail']})", style="dim"))
    if report["changed_since_read"]:
        out.print(Text(f"\nchanged since you read them ({len(report['changed_since_read'])})", style="bold"))
        for c in report["changed_since_read"]:
            out.print(Text(f"  {c.get('id')}  {c.get('title')}  (text similarity {c.get('similarity', 0):.2f})"))


def main() -> None:
    try:
        app()
    except UsageError as exc:  # raised before a command started
        _stderr().print(f"rq: {exc}")
        sys.exit(2)

