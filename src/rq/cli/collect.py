"""`rq ingest` and `rq index`: fetch and archive the queue's pages, and build the search index."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rq.cli.options import (
    AddressOpt,
    AllowPrivateOpt,
    EngineOpt,
    IndexOpt,
    JsonOpt,
    QueueOpt,
    WorkersOpt,
    handles_errors,
    settings_from,
)
from rq.cli.output import Bar, emit_json, one_line, say, stderr
from rq.errors import UsageError


@handles_errors
def ingest(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch every link again, fresh or not.")] = False,
    allow_private: AllowPrivateOpt = False,
    no_index: Annotated[bool, typer.Option("--no-index", help="Skip updating the search index afterwards.")] = False,
    engine: EngineOpt = None,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch every link of the queue, extract its text and archive both, then update the index.

    A re-run fetches only what is stale, extracts only what changed and embeds nothing twice.
    With --engine ray, fetching, extracting and embedding run on a Ray cluster (per-host limits hold
    across all its machines) and land in the same archive and index.

    Example: rq ingest --queue ~/notes/reading.md
    Example: rq ingest --engine ray --address 10.0.0.5:6379
    """
    settings = settings_from(queue=queue, index=index, refresh=refresh or None, allow_private=allow_private or None,
                             engine=engine, ray_address=address, ray_workers=workers)
    _say_engine(settings)
    summary, report = _fetch_then_index(settings, index_too=not no_index)
    if json_out:
        emit_json({**summary.as_dict(), "index": report.__dict__ if report else None})
    if not summary.did_something:
        raise typer.Exit(1)


@handles_errors
def watch(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    allow_private: AllowPrivateOpt = False,
    settle: Annotated[float, typer.Option(
        "--settle", min=0.05, max=60.0, metavar="SECONDS",
        help="How long the file must stay unchanged after a save before rq acts on it.")] = 1.0,
) -> None:
    """Keep the archive and the index up to date while you edit the queue: each save fetches and
    indexes the links that are new or changed (what `rq ingest` would), nothing else.

    rq brings the archive up to date once at start, then waits for the file to change. A burst of
    writes (an editor saving, a sync tool) is one change: rq acts when the file has held still for
    --settle seconds. The file is only looked at (stat), never held open. Ctrl-C stops.

    Example: rq watch --queue ~/notes/reading.md
    """
    from rq.files import file_stamp, wait_for_settled_change
    from rq.paths import locate

    settings = settings_from(queue=queue, index=index, allow_private=allow_private or None)
    path = locate(settings).queue_path
    if locate(settings).embedded:
        raise UsageError("the embedded sample queue never changes; pass --queue (or set RQ_QUEUE) to watch yours")
    stamp = file_stamp(path)
    only_new = False  # at start, what `rq ingest` does; then, on each save, the links never fetched
    try:
        while True:
            _bring_up_to_date(settings, only_new)
            say(f"watching {one_line(str(path))} (Ctrl-C to stop)")
            stamp = wait_for_settled_change(path, stamp, settle_s=settle)
            say("the queue changed")
            only_new = True
    except KeyboardInterrupt:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the shutdown
        say("stopped watching; the archive and index are as of the last update")


def _bring_up_to_date(settings, only_new: bool) -> None:
    """One `rq ingest` (fetch what is new or stale, then index), reported on stderr; a failure is
    reported and the watch goes on (the next save may fix the file)."""
    from rq.errors import RqError

    try:
        _fetch_then_index(settings, only_new=only_new)
    except RqError as exc:
        say(f"{exc}; waiting for the next save")


def _fetch_then_index(settings, index_too: bool = True, only_new: bool = False):
    """What `rq ingest` and each `rq watch` round run: fetch, then index, each with its bar and its
    report on stderr (also when stdout carries JSON). Returns the ingest summary and the index report."""
    from rq.ingest.pipeline import ingest as run_ingest

    with Bar("fetching") as bar:
        summary = run_ingest(settings, progress=bar, notice=say, only_new=only_new)
    print_ingest_summary(summary)
    report = None
    if index_too:
        from rq.index.build import build_index

        with Bar("embedding") as bar:
            report = build_index(settings, progress=bar, notice=say)
        print_index_report(report)
    return summary, report


def _say_engine(settings) -> None:
    """Where the work will run, on stderr, when it is not here: starting or joining Ray takes seconds."""
    if settings.engine != "ray":
        return
    where = (f"the Ray cluster at {settings.ray_address}" if settings.ray_address
             else "a Ray of rq's own on this machine")
    say(f"engine: ray ({where}; joined only when there is something to fetch or embed)")


FAILURES_SHOWN = 10  # the rest are counted ("and 5 more") and listed by `rq ls --failed`


def print_ingest_summary(summary) -> None:
    err = stderr()
    failed = sum(summary.failed.values())
    err.print(f"{summary.resources} resources: {summary.fetched} fetched, {summary.unchanged} unchanged, "
              f"{summary.fresh} fresh (skipped), {failed} failed"
              + (f", {summary.offline} not checked (offline)" if summary.offline else "")
              + (f", {summary.not_web} not web links" if summary.not_web else "")
              + (f", {summary.no_text} without text" if summary.no_text else "")
              + f" in {summary.seconds:.1f}s")
    if summary.offline:
        say(f"this machine looks offline: no host name could be looked up and no server was reached; "
            f"{summary.offline} links were not checked (not counted as dead). Run `rq ingest` again when online.")
    for reason, count in summary.failed.most_common():
        err.print(f"  failed ({one_line(reason)}): {count}")
    if failed or summary.offline:
        err.print("  links that could not be fetched are indexed from their title, note and section")
    if summary.changed_since_read:
        err.print(f"  {summary.changed_since_read} page(s) you read have changed since (see `rq health`)")
    if summary.reextracted:
        err.print(f"  {summary.reextracted} archived page(s) extracted again from their saved copies "
                  "(rq's text extraction improved; nothing was fetched for them)")
    for failure in summary.failures[:FAILURES_SHOWN]:
        err.print(f"  {failure['short_id']} {one_line(failure['reason'])}: {one_line(failure['url'])} "
                  f"({one_line(failure['detail'])})", style="dim")
    if len(summary.failures) > FAILURES_SHOWN:
        err.print(f"  and {len(summary.failures) - FAILURES_SHOWN} more (see `rq ls --failed`)", style="dim")


@handles_errors
def index(
    queue: QueueOpt = None,
    index: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Rebuild even if up to date (vectors still come from the cache).")] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Embedding model name or local folder.")] = None,
    engine: EngineOpt = None,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cut archived text into passages, embed them and build the vector and keyword indexes.

    Unchanged passages are never embedded twice. `rq search` runs this by itself when needed.
    With --engine ray the passages are embedded by a pool of Ray actors (each keeps the model
    loaded); the index is the same one a local run builds.

    Example: rq index --rebuild
    Example: rq index --engine ray --address auto
    """
    from rq.index.build import build_index

    settings = settings_from(queue=queue, index=index, model=model, engine=engine, ray_address=address,
                             ray_workers=workers)
    _say_engine(settings)
    with Bar("embedding") as bar:
        report = build_index(settings, progress=bar, force=rebuild, notice=say)
    if json_out:
        emit_json(report.__dict__)
        return
    print_index_report(report)


def print_index_report(report) -> None:
    from rq.index.passages import cut_line

    if report.built:
        extra = "".join(f" + {count} {what}" for count, what in ((report.profiles, "title/note entries"),
                                                                  (report.windows, "dense windows")) if count)
        texts = report.embedded + report.cached
        stderr().print(f"index built ({report.reason}): {report.resources} resources, {report.passages} passages"
                       f"{extra} = {texts} texts ({report.embedded} embedded now, {report.cached} from cache); "
                       f"{report.vector_index} vectors, {report.seconds:.1f}s")
    else:
        stderr().print(f"index up to date: {report.passages} passages of {report.resources} resources")
    for cut in report.cut:
        stderr().print(one_line(cut_line(cut)))
