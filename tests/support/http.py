"""A real HTTP server on 127.0.0.1 (or another loopback address) for tests and benchmarks:
routes are plain functions.

    server.route("/page", static(b"<html>...</html>", "text/html"))
    url = server.url("/page")

A route receives the BaseHTTPRequestHandler and writes the whole response
itself, so a test can misbehave in any way a real server does (stall, reset,
lie about the content type...). ``server.hits[path]`` counts requests.
Ready-made misbehaving routes and page builders are in support.routes.
"""

from __future__ import annotations

import collections
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Route = Callable[[BaseHTTPRequestHandler], None]


def static(body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
           headers: dict[str, str] | None = None) -> Route:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(body)

    return handle


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _dispatch(self) -> None:
        server: FixtureServer = self.server.fixture  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.hits[path] += 1
            server.requests.append((self.command, self.path, dict(self.headers)))
        route = server.routes.get(path)
        if route is None:
            static(b"<html><title>Not Found</title><body>no such page</body></html>", status=404)(self)
            return
        route(self)

    do_GET = _dispatch
    do_HEAD = _dispatch


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # routes that reset or stall on purpose make the client hang up mid-response


class FixtureServer:
    """``host``: the loopback address to listen on. rq counts politeness per host name, not per
    port, so servers on 127.0.0.2, 127.0.0.3... are different hosts to it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        self.host = host
        self._httpd = _QuietServer((host, 0), _Handler)
        self._httpd.fixture = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> "FixtureServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def route(self, path: str, handler: Route) -> str:
        self.routes[path] = handler
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


def closed_port() -> int:
    """A port on 127.0.0.1 that was just free: nobody listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
