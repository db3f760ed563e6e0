"""Fetch links politely and defensively; every failure becomes a FetchResult, never an exception.

One link = one ``FetchResult``: redirects are followed by hand (each hop vetted
by ``netguard``), transient failures are retried with backoff, the decoded body
is capped while it streams, and a per-link deadline covers everything.
``fetch_all`` runs many links on a thread pool, a few per host at a time.
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import random
import re
import socket
import ssl
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from rq.fetch import netguard
from rq.settings import Settings

REASONS = (
    "not_found", "gone_dns", "refused", "reset", "tls", "timeout", "too_large", "http_error",
    "blocked", "redirect_loop", "too_many_redirects", "bad_url", "error",
)
ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024  # most decoded bytes produced per step: what bounds a gzip bomb's memory


@dataclass(frozen=True)
class FetchRequest:
    url: str  # the URL to fetch (already mapped by the caller, e.g. arXiv abs -> pdf)
    etag: str | None = None  # validators from the last successful fetch, for a conditional GET
    last_modified: str | None = None
    key: str | None = None  # opaque caller id, echoed back in the result


@dataclass(frozen=True)
class FetchResult:
    request: FetchRequest
    outcome: str  # "ok" | "not_modified" | "failed"
    reason: str | None  # when failed: one of REASONS
    detail: str  # one human line: "HTTP 404 Not Found", "connect timeout after 10s"...
    http_status: int | None  # of the last response received, if any
    final_url: str  # the last URL requested (or refused), after redirects
    redirects: tuple[str, ...]  # each URL a redirect sent us to, in order
    content_type: str | None  # header value as sent
    body: bytes | None  # content-encoding undone; only for outcome "ok"
    etag: str | None  # for "ok" and "not_modified" (the request's own if the 304 has none)
    last_modified: str | None
    attempts: int  # 1 + retries used; 0 when refused before any request (bad_url, blocked address)
    elapsed: float  # seconds
    fetched_at: float  # time.time() when the fetch ended


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, *, retryable: bool = False):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


# -- the client ----------------------------------------------------------------------------


class _NoCookies(CookieJar):
    """The shared client keeps no cookies, so one link's cookies never reach another link."""

    def extract_cookies(self, response, request) -> None:
        pass

    def set_cookie(self, cookie) -> None:
        pass


class FetchClient(httpx.Client):
    """An httpx.Client whose every connection goes through rq's address guard.

    Thread-safe; ``fetch_all`` makes one, pass one to ``fetch_one`` to reuse connections.
    """

    def __init__(self, settings: Settings):
        self.guard = netguard.Guard(settings.allow_private, settings.allow_hosts)
        transport = netguard.GuardedTransport(self.guard, keepalive=max(1, settings.fetch_concurrency))
        self.backend = transport.backend
        super().__init__(
            transport=transport,
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                  write=settings.read_timeout, pool=settings.connect_timeout),
            follow_redirects=False,  # done by hand: every hop is checked and counted
            trust_env=False,  # no proxies or netrc from the environment
            cookies=_NoCookies(),
            headers={"User-Agent": settings.user_agent},
        )


def _brotli():
    """The brotli module if it can decode in bounded steps (Brotli >= 1.2), else None."""
    try:
        import brotli
    except ImportError:
        return None
    return brotli if hasattr(brotli.Decompressor(), "can_accept_more_data") else None


_BROTLI = _brotli()
_ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI else "gzip, deflate"


# -- decoding with a memory bound ----------------------------------------------------------
# httpx's own decoders inflate a whole network read at once: 64 KB of gzip can be
# 64 MB of zeros. These never produce more than _CHUNK bytes per step.


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data


class _Inflate:
    def __init__(self, name: str):
        self._name = name
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # | 32: zlib or gzip header
        self._raw_ok = name == "deflate"  # some servers send deflate without the zlib header
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self._z.eof:
            try:
                out = self._z.decompress(data, _CHUNK)
            except zlib.error:
                if self._raw_ok and not self._started:
                    self._raw_ok = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise _Failure("error", f"body is not valid {self._name} data") from None
            self._started = True
            data = self._z.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < _CHUNK:  # input used up and nothing held back
                return


class _Brotli:
    def __init__(self, brotli):
        self._brotli = brotli
        self._d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._d.process(data, output_buffer_limit=_CHUNK)
            while out:
                yield out
                out = b"" if self._d.can_accept_more_data() else self._d.process(b"", output_buffer_limit=_CHUNK)
        except self._brotli.error:
            raise _Failure("error", "body is not valid brotli data") from None


def _decoder(content_encoding: str | None):
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflate("deflate" if codings[0] == "deflate" else "gzip")
    if codings == ["br"] and _BROTLI:
        return _Brotli(_BROTLI)
    raise _Failure("error", f"unsupported Content-Encoding: {content_encoding}")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


# -- politeness ----------------------------------------------------------------------------


class _HostGate:
    """At most ``per_host`` requests in flight per host, starts ``delay`` seconds apart."""

    def __init__(self, per_host: int, delay: float, cancelled: threading.Event):
        self._per_host = max(1, per_host)
        self._delay = max(0.0, delay)
        self._cancelled = cancelled
        self._cond = threading.Condition()
        self._busy: collections.Counter[str] = collections.Counter()
        self._next: dict[str, float] = {}

    def ready_at(self, host: str) -> float:
        with self._cond:
            return self._next.get(host, 0.0)

    @contextlib.contextmanager
    def slot(self, host: str, deadline: float) -> Iterator[None]:
        with self._cond:
            while True:
                if self._cancelled.is_set():
                    raise _Failure("error", "cancelled")
                now = time.monotonic()
                free = self._busy[host] < self._per_host
                start_in = self._next.get(host, 0.0) - now
                if free and start_in <= 0:
                    break
                left = deadline - now
                if left <= 0:
                    raise _Failure("timeout", f"no turn at {host} before the deadline")
                self._cond.wait(min(left, start_in) if free else left)
            self._busy[host] += 1
            self._next[host] = now + self._delay
        try:
            yield
        finally:
            with self._cond:
                self._busy[host] -= 1
                self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


# -- one link ------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    phrase: str
    headers: httpx.Headers
    body: bytes | None  # read only for 2xx

    def line(self) -> str:
        return f"HTTP {self.status} {self.phrase}".strip()


class _Link:
    """The mutable record of one link's fetch, frozen into a FetchResult at the end."""

    def __init__(self, request: FetchRequest, total_timeout: float):
        self.request = request
        self.url = request.url
        self.redirects: list[str] = []
        self.attempts = 0
        self.status: int | None = None
        self.headers = httpx.Headers()
        self.cookies = httpx.Cookies()  # this link's own, across its redirects
        self.started = time.monotonic()
        self.deadline = self.started + total_timeout

    def result(self, outcome: str, detail: str, *, reason: str | None = None,
               body: bytes | None = None) -> FetchResult:
        etag = last_modified = None
        if outcome != "failed":
            etag = self.headers.get("etag") or (self.request.etag if outcome == "not_modified" else None)
            last_modified = self.headers.get("last-modified") or (
                self.request.last_modified if outcome == "not_modified" else None)
        if outcome == "failed" and self.attempts > 1:
            detail = f"{detail} (after {self.attempts} attempts)"
        return FetchResult(
            request=self.request, outcome=outcome, reason=reason, detail=detail,
            http_status=self.status, final_url=self.url, redirects=tuple(self.redirects),
            content_type=self.headers.get("content-type"), body=body, etag=etag,
            last_modified=last_modified, attempts=self.attempts,
            elapsed=time.monotonic() - self.started, fetched_at=time.time(),
        )


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "original", None)


def _classify(exc: Exception, s: Settings) -> _Failure:
    """Name the failure a user should see; only timeouts and resets are worth retrying."""
    chain = list(_causes(exc))

    def find(*types):
        return next((e for e in chain if isinstance(e, types)), None)

    if e := find(netguard.BlockedAddress):
        return _Failure("blocked", f"{e}: not fetched (see allow_private / allow_hosts)")
    if find(netguard.DeadlineExceeded):
        return _Failure("timeout", f"no complete response within {s.total_timeout:g}s")
    if e := find(socket.gaierror):
        return _Failure("gone_dns", f"host name does not resolve ({e.strerror or e})")
    if e := find(ssl.SSLCertVerificationError):
        return _Failure("tls", f"TLS certificate rejected: {e.verify_message or e}")
    if e := find(ssl.SSLError):
        return _Failure("tls", f"TLS error: {e.reason or e}")
    if find(ConnectionRefusedError):
        return _Failure("refused", "connection refused")
    if find(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return _Failure("reset", "connection reset by the server", retryable=True)
    if find(httpx.ConnectTimeout):
        return _Failure("timeout", f"connect timeout after {s.connect_timeout:g}s", retryable=True)
    if find(httpx.TimeoutException):
        return _Failure("timeout", f"no data for {s.read_timeout:g}s", retryable=True)
    if e := find(httpx.RemoteProtocolError):
        if "disconnected" in str(e) or "closed" in str(e):
            return _Failure("reset", "connection closed by the server before the response ended", retryable=True)
        return _Failure("error", f"malformed HTTP response ({e})")
    if e := find(httpx.InvalidURL, httpx.UnsupportedProtocol):
        return _Failure("bad_url", str(e))
    if e := find(OSError):
        return _Failure("error", e.strerror or str(e))
    return _Failure("error", f"{type(exc).__name__}: {exc}")


def _retry_after(headers: httpx.Headers) -> float | None:
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_BAD_HOST = re.compile(r"[\s%<>\"{}|\\^`/?#@]")


def _check_syntax(host: str, port: int | None) -> None:
    """Refuse what httpx lets through but no server can have: "exa mple.com", port 99999."""
    if not host:
        raise _Failure("bad_url", "the URL has no host")
    if _BAD_HOST.search(host):
        raise _Failure("bad_url", f"not a valid host name: {host!r}")
    if port is not None and not 0 < port < 65536:
        raise _Failure("bad_url", "the URL's port is not a number from 1 to 65535")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class _Fetcher:
    def __init__(self, settings: Settings, client: FetchClient, gate: _HostGate, cancelled: threading.Event):
        self.s = settings
        self.client = client
        self.gate = gate
        self.cancelled = cancelled

    def fetch(self, request: FetchRequest) -> FetchResult:
        link = _Link(request, self.s.total_timeout)
        try:
            with netguard.deadline(link.deadline):
                return self._follow(link)
        except _Failure as f:
            return link.result("failed", f.detail, reason=f.reason)
        except Exception as exc:  # a bad link must never take the whole run down
            f = _classify(exc, self.s)
            return link.result("failed", f.detail, reason=f.reason)

    def _follow(self, link: _Link) -> FetchResult:
        url = self._first_url(link.url)
        seen = {(str(url), _jar_state(link.cookies))}
        while True:
            reply = self._with_retries(link, url)
            location = reply.headers.get("location")
            if reply.status in _REDIRECT_STATUSES and location:
                url = self._redirect(link, url, location, seen)
                continue
            if 200 <= reply.status < 300:
                return link.result("ok", reply.line(), body=reply.body)
            if reply.status == 304 and (link.request.etag or link.request.last_modified):
                return link.result("not_modified", reply.line())
            reason = "not_found" if reply.status in (404, 410) else "http_error"
            raise _Failure(reason, reply.line())

    def _first_url(self, raw: str) -> httpx.URL:
        try:
            parts = urlsplit(raw.strip())
        except ValueError as exc:
            raise _Failure("bad_url", f"not a URL ({exc})") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise _Failure("bad_url", f"only http and https links are fetched, not {parts.scheme or 'no scheme'}:")
        try:
            port = parts.port
        except ValueError:
            raise _Failure("bad_url", "the URL's port is not a number from 1 to 65535") from None
        _check_syntax(parts.hostname or "", port)
        self._check_host(parts.hostname)  # before httpx, which rejects some numeric hosts as invalid
        try:
            return httpx.URL(raw.strip())
        except httpx.InvalidURL as exc:
            raise _Failure("bad_url", str(exc)) from None

    def _check_host(self, host: str) -> None:
        try:
            self.client.guard.check_literal(host)
        except netguard.BlockedAddress as exc:
            raise _Failure("blocked", f"{exc}: not fetched (see allow_private / allow_hosts)") from None

    def _redirect(self, link: _Link, current: httpx.URL, location: str, seen: set) -> httpx.URL:
        try:
            target = current.join(location.strip()).copy_with(fragment=None)
        except httpx.InvalidURL:
            raise _Failure("bad_url", f"redirect to an invalid URL: {location[:200]}") from None
        if _origin(target) != _origin(current):  # credentials belong to the origin they were given for
            target = target.copy_with(username=None, password=None)
        link.redirects.append(str(target))
        link.url = str(target)
        if target.scheme not in ("http", "https"):
            raise _Failure("blocked", f"redirect to {target.scheme}: refused (only http and https)")
        _check_syntax(target.host, target.port)
        # A URL revisited with the same cookies is a loop; with new ones it is a cookie check.
        key = (str(target), _jar_state(link.cookies))
        if key in seen:
            raise _Failure("redirect_loop", f"redirect loop back to {target}")
        if len(link.redirects) > self.s.max_redirects:
            raise _Failure("too_many_redirects", f"more than {self.s.max_redirects} redirects")
        seen.add(key)
        self._check_host(target.host)
        return target

    def _with_retries(self, link: _Link, url: httpx.URL) -> _Reply:
        while True:
            link.attempts += 1
            failure = reply = None
            try:
                reply = self._exchange(link, url)
            except _Failure as f:
                failure = f
            except Exception as exc:
                failure = _classify(exc, self.s)
            if failure is None and not (reply.status in (408, 429) or reply.status >= 500):
                return reply
            retryable = failure.retryable if failure else True
            pause = self._pause(link, reply)
            if not retryable or link.attempts > self.s.retries or pause is None:
                if failure:
                    raise failure
                return reply
            if self.cancelled.wait(pause):
                raise _Failure("error", "cancelled")

    def _pause(self, link: _Link, reply: _Reply | None) -> float | None:
        """Seconds to wait before the next attempt, or None if that would pass the deadline."""
        hinted = _retry_after(reply.headers) if reply is not None else None
        if hinted is not None:
            pause = min(hinted, self.s.retry_after_max)
        else:
            pause = self.s.backoff * 2 ** (link.attempts - 1) * random.uniform(1.0, 1.5)
        return pause if time.monotonic() + pause < link.deadline else None

    def _exchange(self, link: _Link, url: httpx.URL) -> _Reply:
        link.status, link.headers, link.url = None, httpx.Headers(), str(url)
        headers = {"User-Agent": self.s.user_agent, "Accept": ACCEPT, "Accept-Encoding": _ACCEPT_ENCODING}
        if link.request.etag:
            headers["If-None-Match"] = link.request.etag
        if link.request.last_modified:
            headers["If-Modified-Since"] = link.request.last_modified
        request = self.client.build_request("GET", url, headers=headers)
        link.cookies.set_cookie_header(request)
        with self.gate.slot(url.host, link.deadline):
            response = self.client.send(request, stream=True)
            try:
                link.cookies.extract_cookies(response)
                link.status, link.headers = response.status_code, response.headers
                body = None
                if 200 <= response.status_code < 300:
                    body = self._read_body(response)
                else:
                    _drain(response)
                return _Reply(response.status_code, response.reason_phrase, response.headers, body)
            finally:
                response.close()

    def _read_body(self, response: httpx.Response) -> bytes:
        cap = self.s.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _Failure("too_large", f"Content-Length {_size(int(declared))} over the {_size(cap)} cap")
        decoder = _decoder(response.headers.get("content-encoding"))
        body = bytearray()
        for raw in response.iter_raw():
            for piece in decoder.feed(raw):
                body += piece
                if len(body) > cap:
                    raise _Failure("too_large", f"body over the {_size(cap)} cap")
            if self.cancelled.is_set():
                raise _Failure("error", "cancelled")
        return bytes(body)


def _drain(response: httpx.Response) -> None:
    """Read a short error or redirect body, so the connection can be reused rather than reset."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= _CHUNK:
        with contextlib.suppress(httpx.HTTPError):
            for _ in response.iter_raw():
                pass


def _jar_state(cookies: httpx.Cookies) -> tuple:
    return tuple(sorted((c.domain, c.path, c.name, c.value or "") for c in cookies.jar))


def fetch_one(request: FetchRequest, settings: Settings, client: FetchClient | None = None) -> FetchResult:
    """Fetch one link. Pass a FetchClient to reuse its connections; never raises for a bad link.

    ``fetch_host_delay`` spaces only this link's own retries and redirects:
    spacing between links is fetch_all's job.
    """
    if client is not None and not isinstance(client, FetchClient):
        raise TypeError("fetch_one needs a rq.fetch.client.FetchClient: it carries the address guard")
    own = client is None
    client = client or FetchClient(settings)
    cancelled = threading.Event()
    try:
        gate = _HostGate(settings.fetch_per_host, settings.fetch_host_delay, cancelled)
        return _Fetcher(settings, client, gate, cancelled).fetch(request)
    finally:
        if own:
            client.close()


# -- many links ----------------------------------------------------------------------------


def _host_of(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


class _Pending:
    """Links not started yet, by host, so threads go to hosts that can take a request now."""

    def __init__(self, requests: Iterable[FetchRequest], per_host: int):
        self._by_host: dict[str, collections.deque[FetchRequest]] = {}
        for request in requests:
            self._by_host.setdefault(_host_of(request.url), collections.deque()).append(request)
        self._active: collections.Counter[str] = collections.Counter()
        self._per_host = max(1, per_host)

    def __bool__(self) -> bool:
        return bool(self._by_host)

    def take(self, gate: _HostGate) -> tuple[str, FetchRequest] | None:
        """The next link in queue order whose host has room, preferring hosts ready to start now."""
        best: tuple[float, str] | None = None
        now = time.monotonic()
        for host in self._by_host:
            if self._active[host] >= self._per_host:
                continue
            ready = gate.ready_at(host)
            if best is None or ready < best[0]:
                best = (ready, host)
            if ready <= now:
                break
        if best is None:
            return None
        host = best[1]
        queue = self._by_host[host]
        request = queue.popleft()
        if not queue:
            del self._by_host[host]
        self._active[host] += 1
        return host, request

    def done(self, host: str) -> None:
        self._active[host] -= 1


def fetch_all(requests: Iterable[FetchRequest], settings: Settings,
              on_result: Callable[[FetchResult], None] | None = None) -> Iterator[FetchResult]:
    """Fetch every link concurrently, yielding each result as it completes (one per request).

    ``on_result``, if given, is called in the caller's thread with each result
    just before it is yielded. Per-host limits (``fetch_per_host``,
    ``fetch_host_delay``) hold across all the links of one call. Closing the
    iterator early cancels the fetches still running.
    """
    pending = _Pending(requests, settings.fetch_per_host)
    cancelled = threading.Event()
    gate = _HostGate(settings.fetch_per_host, settings.fetch_host_delay, cancelled)
    client = FetchClient(settings)
    fetcher = _Fetcher(settings, client, gate, cancelled)
    workers = max(1, settings.fetch_concurrency)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rq-fetch")
    running: dict[Future, str] = {}
    try:
        while pending or running:
            while len(running) < workers and (picked := pending.take(gate)):
                host, request = picked
                running[pool.submit(fetcher.fetch, request)] = host
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                pending.done(running.pop(future))
                result = future.result()
                if on_result is not None:
                    on_result(result)
                yield result
    finally:
        # Wake everything still waiting (gate, backoff, socket reads) so shutdown is quick.
        cancelled.set()
        gate.wake()
        client.backend.abort_all()
        pool.shutdown(wait=True, cancel_futures=True)
        client.close()
