"""`rq done` and `rq todo`: tick or untick an item's checkbox in the queue file, and nothing else."""

from __future__ import annotations

from typing import Annotated

import typer

from rq.cli.options import IndexOpt, JsonOpt, QueueOpt, handles_errors, settings_from
from rq.cli.output import emit_json, one_line, say, stdout

ResourceArg = Annotated[str, typer.Argument(help="Resource id (or unique prefix), or its URL.")]


@handles_errors
def done(resource: ResourceArg, queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Mark a resource read: ticks its checkbox in the Markdown file and nothing else.

    Example: rq done 6de98d1b --queue ~/reading.md
    """
    _mark(resource, "read", queue, index, json_out)


@handles_errors
def todo(resource: ResourceArg, queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Mark a resource unread again: unticks its checkbox.

    Example: rq todo 6de98d1b --queue ~/reading.md
    """
    _mark(resource, "unread", queue, index, json_out)


def _mark(resource: str, state: str, queue, index, json_out: bool) -> None:
    from rq.archive.marks import mark, marked

    result = mark(settings_from(queue=queue, index=index), resource, state)
    for warning in result.warnings:
        say(f"warning: {warning}")
    res = result.resource
    if json_out:
        emit_json(marked(result))
        return
    if result.changed:
        verb = "marked read" if state == "read" else "marked unread"
        lines = ", ".join(map(str, result.lines))
        stdout().print(f"{verb}: {one_line(res.title)} ({res.short_id}), line {lines}")
    else:
        stdout().print(f"already {state}: {one_line(res.title)} ({res.short_id}); file not touched")
