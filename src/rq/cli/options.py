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
# rq ingest and rq index: where the work runs (the scale extra); default: the engine setting, else local.
EngineOpt = Annotated[str | None, typer.Option(
    "--engine", metavar="local|ray", show_default=False,
    help="Run fetching, extracting and embedding here (local) or as Ray Data stages on a Ray cluster "
         "(ray: rq's scale extra); either way the same archive and index.")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", "--ray-address", metavar="auto|HOST:PORT", show_default=False,
    help="With --engine ray: the cluster to join (auto: the one `ray start` runs here; HOST:PORT: a head "
         "node). Default: RAY_ADDRESS, else a Ray of rq's own on this machine.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", "--ray-workers", min=1, metavar="N", show_default=False,
    help="With --engine ray: embedding actors and fetch tasks at once (default: one per CPU of the cluster).")]
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
