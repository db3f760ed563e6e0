"""Options every command shares, and turning them and rq's errors into settings and exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rq.cli.output import report_failure
from rq.errors import RqError

QueueOpt = Annotated[Path | None, typer.Option(
    "--queue", "-q", help="Markdown queue file (default: RQ_QUEUE, configs/rq.toml, else the embedded sample).",
    show_default=False)]
IndexOpt = Annotated[Path | None, typer.Option(
    "--index", help="Index folder (default: one per queue; see `rq status`).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# On the commands a running `rq serve` answers (rq.cli.remote reads it before typer runs).
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Say whether a running `rq serve` answered, or why the command worked in-process.")]
AllowPrivateOpt = Annotated[bool, typer.Option(
    "--allow-private",
    help="Let links reach loopback/private addresses (off: a shared list must not probe your network).")]
# -n on every command that answers with a list; `rq search` also keeps its first spelling, -k.
LimitOpt = Annotated[int | None, typer.Option(
    "-n", "--limit", min=1, metavar="N", help="Show at most N (default: all).", show_default=False)]


def limit_opt(what: str, *aliases: str):
    """-n / --limit N with its own help text (``what``: "How many resources to show.")."""
    return Annotated[int, typer.Option("-n", "--limit", *aliases, min=1, metavar="N", help=what)]


def settings_from(**flags: Any):
    from rq.settings import load_settings

    return load_settings(flags)


def fail(message: str, code: int, as_json: bool) -> None:
    """Report a failure (rq.cli.output.report_failure), then exit with ``code``."""
    report_failure(message, code, as_json)
    raise typer.Exit(code)


def handles_errors(func: Callable) -> Callable:
    """Turn rq's own exceptions into one line and the right exit code (1 failure, 2 usage)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RqError as exc:
            fail(str(exc), exc.exit_code, bool(kwargs.get("json_out")))
        except KeyboardInterrupt:
            fail("interrupted; what was done so far is kept", 130, bool(kwargs.get("json_out")))
    return wrapper
