"""`rq serve`: the warm engine, its web app and its API; `rq search`, `next`, `related` and
`show` answer through it while it runs (rq.cli.remote)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rq.cli.options import IndexOpt, QueueOpt, handles_errors, settings_from
from rq.cli.output import one_line, say
from rq.errors import RqError


@handles_errors
def serve(
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (default 127.0.0.1: this machine only).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        "--port", "-p", help="Port (default 8765; 0: any free port).", show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Secret every request must carry; required to listen on any other address than "
                        "loopback.", show_default=False)] = None,
    queue: QueueOpt = None, index: IndexOpt = None,
) -> None:
    """Run one warm engine for the queue and its index: a web app (search, next, resources,
    clusters, map, health), a JSON API under /api/ (docs at /docs), and the answers of rq search,
    next, related and show while it runs. One line per request goes to stderr. Ctrl-C stops it.

    Example: rq serve --port 8765
    """
    settings = settings_from(queue=queue, index=index, serve_host=host, serve_port=port, serve_token=token)
    try:
        from rq.serve.run import serve as run
    except ImportError as exc:
        raise RqError(f"rq serve needs fastapi, uvicorn and jinja2 ({exc}); pip install -e . installs them") from None

    def log(line: str) -> None:
        sys.stderr.write(f"rq serve: {one_line(line)}\n")
        sys.stderr.flush()

    try:
        run(settings, log, ready=lambda url: say(f"serving {url} (Ctrl-C stops)"))
    except KeyboardInterrupt:
        pass
