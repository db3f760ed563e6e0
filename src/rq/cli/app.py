"""The `rq` command line: the commands, and the one place a run ends.

Data goes to stdout (tables, or JSON with --json); progress, warnings and errors go to
stderr. Exit codes: 0 ok, 1 failure, 2 usage error. No traceback reaches a user: rq's
own errors are one line; anything else is one line too, with the details in a file.
"""

from __future__ import annotations

import inspect
import sys

import typer

from rq.cli import browse, capture, collect, find, mark, serve, topics
from rq.cli.output import report_failure, stdout
from rq.cli.usage import RqCommand, RqGroup

app = typer.Typer(
    help="Search and mine a Markdown reading queue.\n\nExample: rq search \"real-time recsys\"",
    cls=RqGroup, no_args_is_help=True, add_completion=True, rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]}, pretty_exceptions_enable=False,
)

def _print_version(asked: bool) -> None:
    if asked:
        from rq import __version__

        stdout().print(f"rq {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                          help="Print rq's version and exit.")) -> None:
    """Search and mine a Markdown reading queue.

    Example: rq search "real-time recsys"
    """


def _unwrapped(doc: str | None) -> str | None:
    """A docstring's paragraphs as single lines: the help renderer keeps a source line break as
    a line break, so text wrapped for the source would be wrapped twice on screen."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


for command in (collect.ingest, collect.index, collect.watch, browse.status, browse.ls, browse.show, browse.open,
                find.search, mark.done, mark.todo, find.next, find.related, topics.clusters, topics.map,
                browse.health, capture.add, serve.serve):
    command.__doc__ = _unwrapped(command.__doc__)
    app.command(command.__name__, cls=RqCommand)(command)
capture.import_.__doc__ = _unwrapped(capture.import_.__doc__)
app.command("import", cls=RqCommand)(capture.import_)


def main() -> None:
    """Run one command; turn whatever stops it into one line on stderr and an exit code."""
    as_json = "--json" in sys.argv[1:]
    try:
        code = app(standalone_mode=False, prog_name="rq")
    except KeyboardInterrupt:
        code = _fail("interrupted; what was done so far is kept", 130, as_json)
    except Exception as exc:
        code = _ended_by(exc, as_json)
    sys.exit(code if isinstance(code, int) else 0)


def _ended_by(exc: Exception, as_json: bool) -> int:
    # By class name: typer may bring its own copy of click, whose exceptions are other classes.
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    ctx = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in kinds:  # `rq` alone: typer has shown the help already
        return 2
    if "UsageError" in kinds:
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        return _fail(f"{exc.format_message()}{hint}", 2, as_json)
    if "Abort" in kinds:
        return _fail("interrupted; what was done so far is kept", 130, as_json)
    if "ClickException" in kinds:
        return _fail(exc.format_message(), getattr(exc, "exit_code", 1), as_json)
    # A bug in rq: the user gets one line and where the details are.
    return _fail(f"unexpected error ({type(exc).__name__}: {exc}); this is a bug in rq, "
                 f"details in {_save_traceback()}", 1, as_json)


def _fail(message: str, code: int, as_json: bool) -> int:
    report_failure(message, code, as_json)
    return code


def _save_traceback() -> str:
    import tempfile
    import traceback

    try:
        with tempfile.NamedTemporaryFile("w", prefix="rq-error-", suffix=".txt", delete=False) as fh:
            traceback.print_exc(file=fh)
            return fh.name
    except OSError:
        return "no file (the temporary folder is not writable)"
