"""What stands between the port rq serve binds and the user's files (issue 15, "Security").

One ASGI middleware, in front of every route:

* the ``Host`` header must name the address the engine is bound to (or loopback when it is
  bound to loopback): a defence against DNS rebinding, where a foreign page's name comes to
  resolve to 127.0.0.1;
* bound to any other address, every request must carry the token (a header, or the cookie
  that ``/?token=...`` sets), or the engine file's secret (the command line's client);
* a request that changes something is a POST, whose ``Origin`` (or ``Sec-Fetch-Site``) must not
  be another site's, and which must carry the CSRF token the pages hold (or the secret);
* the query string and the request body have size limits;
* every answer carries headers that forbid framing by other sites, sniffing and inline
  scripts (a Content-Security-Policy of 'self'); no CORS header is ever sent.

One log line per request goes to ``log``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from rq.serve.client import SECRET_HEADER

TOKEN_HEADER = "x-rq-token"
CSRF_HEADER = "x-rq-csrf"
CSRF_FIELD = "csrf"
TOKEN_COOKIE = "rq_token"
MAX_QUERY_BYTES = 4096  # the whole query string
MAX_BODY_BYTES = 16 * 1024  # a form with an id and a token needs a few hundred bytes
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = ("GET", "HEAD")

# Pages load only what rq serves; the map's own document (a self-contained file with its
# inline script and style) gets its own, equally closed, policy in pages.py.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """The rules for one running engine."""

    host: str  # the address bound
    port: int
    secret: str  # the engine file's secret
    csrf: str  # the token every page's forms carry
    token: str = ""  # required on every request when not "" (a non-loopback bind)
    log: Callable[[str], None] = lambda line: None
    names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        hosts = set(LOOPBACK_NAMES) if is_loopback(self.host) else {self._bracketed(self.host)}
        if self.host in ("0.0.0.0", "::"):
            hosts |= set(LOOPBACK_NAMES)  # also reached as localhost on the machine itself
        self.names = {f"{h}:{self.port}" for h in hosts} | hosts

    @staticmethod
    def _bracketed(host: str) -> str:
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    def host_ok(self, host: str) -> bool:
        # Any host name is allowed on a wildcard bind with a token: the token is the gate there.
        return host.lower() in self.names or (self.host in ("0.0.0.0", "::") and bool(self.token))

    def origin_ok(self, origin: str | None, host: str) -> bool:
        if origin is None:
            return True
        if origin == "null":
            return False
        parts = urllib.parse.urlsplit(origin)
        return parts.scheme == "http" and parts.netloc.lower() == host.lower()

    def authorised(self, headers: dict[str, str], query: str) -> bool:
        if not self.token:
            return True
        if _same(headers.get(SECRET_HEADER.lower()), self.secret):
            return True
        offered = headers.get(TOKEN_HEADER) or _bearer(headers.get("authorization")) or _cookie(
            headers.get("cookie"), TOKEN_COOKIE) or urllib.parse.parse_qs(query).get("token", [None])[0]
        return _same(offered, self.token)


def _same(offered: str | None, expected: str) -> bool:
    return bool(offered) and hmac.compare_digest(offered.encode("utf-8"), expected.encode("utf-8"))


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return urllib.parse.unquote(value)
    return None


class GuardMiddleware:
    """The ASGI middleware applying a Guard (see the module docstring)."""

    def __init__(self, app, guard: Guard):
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_seen = {"code": 0}
        remember = self._token_cookie(scope)

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status_seen["code"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + _security_headers(message) + remember
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _plain(send_logged, *refusal)
            else:
                await self.app(scope, _limited(receive, send_logged), send_logged)
        except _TooLarge:
            if not status_seen["code"]:
                await _plain(send_logged, 413, "request body too large")
        finally:
            ms = (time.perf_counter() - started) * 1000
            self.guard.log(f"{scope['method']} {scope['path']} {status_seen['code']} {ms:.1f} ms")

    def _token_cookie(self, scope) -> list[tuple[bytes, bytes]]:
        """The address `rq serve` prints carries ?token=; the browser keeps it in a cookie that
        goes to this server only, so the pages' own links need not carry it."""
        token = self.guard.token
        offered = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        if not token or not _same(offered, token):
            return []
        cookie = f"{TOKEN_COOKIE}={urllib.parse.quote(token)}; Path=/; HttpOnly; SameSite=Strict"
        return [(b"set-cookie", cookie.encode("latin-1"))]

    def _refusal(self, scope) -> tuple[int, str] | None:
        guard = self.guard
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        query = scope.get("query_string", b"")
        if not guard.host_ok(host):
            return 403, "this address is not served here (Host header refused)"
        if len(query) > MAX_QUERY_BYTES:
            return 414, "query string too long"
        if not guard.authorised(headers, query.decode("latin-1")):
            return 401, "a token is required: open the address `rq serve` printed, with its ?token="
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return 413, "request body too large"
        method = scope["method"]
        if method in SAFE_METHODS:
            return None
        if method != "POST":
            return 405, "only GET and POST are served"
        if not guard.origin_ok(headers.get("origin"), host) or headers.get("sec-fetch-site") == "cross-site":
            return 403, "cross-site request refused"
        if _same(headers.get(SECRET_HEADER.lower()), guard.secret) or _same(headers.get(CSRF_HEADER), guard.csrf):
            return None
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return None  # the form's csrf field is checked by the route, which reads the body
        return 403, "missing CSRF token"


def _security_headers(message) -> list[tuple[bytes, bytes]]:
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
    # pages' own form posts, which the Origin check must refuse. Links out still carry nothing.
    have = {k.lower() for k, _ in message.get("headers", [])}
    extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
             (b"x-frame-options", b"SAMEORIGIN"), (b"cache-control", b"no-store")]
    if b"content-security-policy" not in have:
        extra.append((b"content-security-policy", CSP.encode()))
    return [(k, v) for k, v in extra if k not in have]


class _TooLarge(Exception):
    pass


def _limited(receive, send):
    """``receive`` that stops a body past MAX_BODY_BYTES (one sent without a Content-Length)."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise _TooLarge()
        return message
    return wrapped


async def _plain(send, status: int, message: str) -> None:
    body = json.dumps({"error": {"code": 1, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def form_csrf_ok(guard: Guard, form: dict[str, list[str]], headers) -> bool:
    """A form post's CSRF check: its hidden field, or the header a script sends."""
    offered = (form.get(CSRF_FIELD) or [None])[0] or headers.get(CSRF_HEADER)
    return _same(offered, guard.csrf) or _same(headers.get(SECRET_HEADER.lower()), guard.secret)
