"""Routes for FixtureServer that misbehave as real servers do, and the pages they serve.

One copy of each, for tests and benchmarks alike. A route is a function of the request
handler that writes the whole response (see support.http); the builders return bytes to
hand to ``static``.
"""

from __future__ import annotations

import random
import socket
import struct
import time
import zlib
from typing import Callable

from .http import Route, static

WORDS = ("retrieval ranking embedding feature pipeline latency model training serving index vector "
         "query document cache shard replica stream batch label metric drift experiment").split()
NAV = "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"


# -- pages -----------------------------------------------------------------------------------


def page(title: str, *paragraphs: str, h1: str | None = None, html: str = "", head: str = "", nav: str = NAV,
         footer: str | None = "Copyright footer", doctype: bool = True) -> bytes:
    """An article page: ``<title>``, extra ``head`` markup, a ``nav`` bar, an ``<article>`` with an
    ``<h1>`` (the title unless ``h1`` is given), one ``<p>`` per paragraph then the raw ``html``, and
    a ``<footer>`` (none when ``footer`` is None). UTF-8."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs) + html
    return (("<!doctype html>" if doctype else "") + f"<html><head><title>{title}</title>{head}</head><body>{nav}"
            f"<article><h1>{h1 or title}</h1>{body}</article>"
            + (f"<footer>{footer}</footer>" if footer is not None else "") + "</body></html>").encode("utf-8")


def random_paragraphs(rng: random.Random, n: int, words: int) -> str:
    """``n`` ``<p>`` paragraphs of ``words`` words drawn from WORDS."""
    return "".join("<p>" + " ".join(rng.choice(WORDS) for _ in range(words)) + ".</p>" for _ in range(n))


def wrong_turn(req) -> None:
    """A knowledge base's 200 answer to any address it does not have: the page a soft-404
    check must tell from the site's real articles (serve it with CatchAll)."""
    path = req.path.split("?", 1)[0]
    static(page("Acme Knowledge Base", f"Hmm, we took a wrong turn looking for {path}.",
                "Try the search box above, or browse our most popular categories: billing, accounts, "
                "shipping and returns.", h1="Whoa there, traveller"))(req)


def random_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of noise: what a broken server sends as "text/html" from a binary file."""
    return random.Random(seed).randbytes(size)


def gzip_bomb(megabytes: int = 50) -> bytes:
    """A gzip body of a few tens of kB that inflates to ``megabytes`` MB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1_000_000)
    return b"".join(packer.compress(zeros) for _ in range(megabytes)) + packer.flush()


class CatchAll(dict):
    """Routes (a copy of ``routes``) plus one handler for every unregistered path under
    ``prefix``: a site that answers any address with the same 200 page. Assign it to a
    FixtureServer's ``routes``."""

    def __init__(self, prefix: str, handler: Route, routes: dict | None = None):
        super().__init__(routes or {})
        self.prefix, self.handler = prefix, handler

    def get(self, path, default=None):
        found = super().get(path)
        if found is None and path.startswith(self.prefix):
            return self.handler
        return default if found is None else found


# -- routes ----------------------------------------------------------------------------------


def redirect(to: str, status: int = 302) -> Route:
    return static(b"", status=status, headers={"Location": to})


def quietly(write: Callable) -> Route:
    """Run a route body that may find the client gone (that is the point of some routes)."""
    def handle(req):
        try:
            write(req)
        except OSError:
            req.close_connection = True

    return handle


def sequence(*handlers: Route) -> Route:
    """The n-th request gets handlers[n]; the last one repeats."""
    count = {"n": 0}

    def handle(req):
        n = count["n"]
        count["n"] += 1
        handlers[min(n, len(handlers) - 1)](req)

    return handle


def fails_first(status: int, body: bytes, headers: dict[str, str] | None = None) -> Route:
    """The first request gets ``status`` (with ``headers``, e.g. Retry-After); later ones ``body``."""
    return sequence(static(b"<html><body>busy</body></html>", status=status, headers=headers), static(body))


def slow(seconds: float, then: Route) -> Route:
    """Wait ``seconds`` before answering as ``then`` does."""
    def handle(req):
        time.sleep(seconds)
        then(req)

    return quietly(handle)


def reset(req) -> None:
    """Abort the connection with a TCP reset, before any response."""
    req.close_connection = True
    req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    req.connection.close()


def dribble(size: int, every: float, content_type: str = "text/html") -> Route:
    """Declare ``size`` bytes, then send one every ``every`` seconds: each inside a read timeout,
    the whole far past the deadline."""
    def handle(req):
        req.send_response(200)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(size))
        req.end_headers()
        for _ in range(size):
            req.wfile.write(b"x")
            req.wfile.flush()
            time.sleep(every)

    return quietly(handle)


def streamed(body: bytes, content_type: str = "text/html", chunk: int = 65536) -> Route:
    """``body`` without a Content-Length, in chunks, then close: a size cap must trip while reading."""
    def handle(req):
        req.send_response(200)
        req.send_header("Content-Type", content_type)
        req.send_header("Connection", "close")
        req.end_headers()
        req.close_connection = True
        for start in range(0, len(body), chunk):
            req.wfile.write(body[start:start + chunk])

    return quietly(handle)


def raw_status(line: bytes, body: bytes = b"") -> Route:
    """Answer with ``line`` written as is for the status line (a reason phrase holding markup,
    odd bytes...), then ``body``."""
    def handle(req):
        req.close_connection = True
        req.wfile.write(line + b"\r\nContent-Type: text/html\r\nConnection: close\r\n"
                        + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    return quietly(handle)
