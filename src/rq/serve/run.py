"""Run the engine: bind the socket, write the engine file, serve until stopped, clean up.

The socket is bound here, before uvicorn starts, so a port in use is one clear error and
``port 0`` gives a free port that the engine file then names.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
from collections.abc import Callable

from rq.errors import RqError, UsageError
from rq.serve.client import (
    fingerprint,
    new_secret,
    remove_engine_file,
    write_engine_file,
)
from rq.serve.security import Guard, is_loopback
from rq.settings import Settings


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RqError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try another --port") from None
    sock.listen(128)
    return sock


def check_bind(settings: Settings) -> None:
    if not is_loopback(settings.serve_host) and not settings.serve_token:
        raise UsageError(f"listening on {settings.serve_host} (not this machine only) needs --token: "
                         "every request must then carry it")
    if settings.serve_token and len(settings.serve_token) < 16:
        raise UsageError("--token must be at least 16 characters")


def serve(settings: Settings, log: Callable[[str], None], ready: Callable[[str], None]) -> None:
    """Load the engine, then answer until interrupted. ``ready(url)`` is called once listening."""
    import uvicorn

    from rq.serve.app import create_app
    from rq.serve.engine import WarmEngine

    check_bind(settings)
    sock = bind(settings.serve_host, settings.serve_port)
    port = sock.getsockname()[1]
    engine = WarmEngine(settings, log)
    secret = new_secret()
    guard = Guard(settings.serve_host, port, secret, secrets.token_urlsafe(24), settings.serve_token, log)
    app = create_app(engine, guard)
    # The command line reaches a wildcard bind through loopback.
    near = "127.0.0.1" if settings.serve_host in ("0.0.0.0", "::") else settings.serve_host
    index_dir = engine.location.index_dir
    try:
        write_engine_file(index_dir, {"host": near, "port": port, "secret": secret, "pid": os.getpid(),
                                      "queue": engine.location.queue_key, "settings": fingerprint(settings)})
        url = f"http://{near if ':' not in near else f'[{near}]'}:{port}/"
        ready(url + (f"?token={settings.serve_token}" if settings.serve_token else ""))
        # uvicorn stops on SIGTERM and then raises it again once it has stopped: as an
        # interrupt here, so that the engine file is removed as on Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupted)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        remove_engine_file(index_dir, secret)
        engine.close()
        sock.close()


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt
