"""Fetch links politely and defensively; every failure becomes a FetchResult, never an exception.

One link = one ``FetchResult``: redirects are followed by hand (each hop vetted
by ``netguard``), transient failures are retried with backoff, the decoded body
is capped while it streams, and a per-link deadline covers everything.
``fetch_all`` runs many links on a thread pool, a few per host at a time.
"""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx

from rq.fetch import netguard
from rq.fetch.decoders import ACCEPT_ENCODING, drain, read_body
from rq.fetch.failures import PRIVATE_HINT, Failure, classify, retry_after
from rq.fetch.hosts import HostGate, Pending
from rq.fetch.urls import host_of, origin
from rq.settings import Settings

REASONS = (
    "not_found", "gone_dns", "refused", "reset", "tls", "timeout", "too_large", "http_error",
    "blocked", "redirect_loop", "too_many_redirects", "bad_url", "error",
)
ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.5"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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


_BAD_HOST = re.compile(r"[\s%<>\"{}|\\^`/?#@]")


def _check_syntax(host: str, port: int | None) -> None:
    """Refuse what httpx lets through but no server can have: "exa mple.com", port 99999."""
    if not host:
        raise Failure("bad_url", "the URL has no host")
    if _BAD_HOST.search(host):
        raise Failure("bad_url", f"not a valid host name: {host!r}")
    if port is not None and not 0 < port < 65536:
        raise Failure("bad_url", "the URL's port is not a number from 1 to 65535")


class _Fetcher:
    def __init__(self, settings: Settings, client: FetchClient, gate: HostGate, cancelled: threading.Event):
        self.s = settings
        self.client = client
        self.gate = gate
        self.cancelled = cancelled

    def fetch(self, request: FetchRequest) -> FetchResult:
        link = _Link(request, self.s.total_timeout)
        try:
            with netguard.deadline(link.deadline):
                return self._follow(link)
        except Failure as f:
            return link.result("failed", f.detail, reason=f.reason)
        except Exception as exc:  # a bad link must never take the whole run down
            f = classify(exc, self.s)
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
            raise Failure(reason, reply.line())

    def _first_url(self, raw: str) -> httpx.URL:
        try:
            parts = urlsplit(raw.strip())
        except ValueError as exc:
            raise Failure("bad_url", f"not a URL ({exc})") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise Failure("bad_url", f"only http and https links are fetched, not {parts.scheme or 'no scheme'}:")
        try:
            port = parts.port
        except ValueError:
            raise Failure("bad_url", "the URL's port is not a number from 1 to 65535") from None
        _check_syntax(parts.hostname or "", port)
        self._check_host(parts.hostname)  # before httpx, which rejects some numeric hosts as invalid
        try:
            return httpx.URL(raw.strip())
        except httpx.InvalidURL as exc:
            raise Failure("bad_url", str(exc)) from None

    def _check_host(self, host: str) -> None:
        try:
            self.client.guard.check_literal(host)
        except netguard.BlockedAddress as exc:
            raise Failure("blocked", f"{exc}: {PRIVATE_HINT}") from None

    def _redirect(self, link: _Link, current: httpx.URL, location: str, seen: set) -> httpx.URL:
        try:
            target = current.join(location.strip()).copy_with(fragment=None)
        except httpx.InvalidURL:
            raise Failure("bad_url", f"redirect to an invalid URL: {location[:200]}") from None
        if origin(str(target)) != origin(str(current)):  # credentials belong to the origin they were given for
            target = target.copy_with(username=None, password=None)
        link.redirects.append(str(target))
        link.url = str(target)
        if target.scheme not in ("http", "https"):
            raise Failure("blocked", f"redirect to {target.scheme}: refused (only http and https)")
        _check_syntax(target.host, target.port)
        # A URL revisited with the same cookies is a loop; with new ones it is a cookie check.
        key = (str(target), _jar_state(link.cookies))
        if key in seen:
            raise Failure("redirect_loop", f"redirect loop back to {target}")
        if len(link.redirects) > self.s.max_redirects:
            raise Failure("too_many_redirects", f"more than {self.s.max_redirects} redirects")
        seen.add(key)
        self._check_host(target.host)
        return target

    def _with_retries(self, link: _Link, url: httpx.URL) -> _Reply:
        while True:
            link.attempts += 1
            failure = reply = None
            try:
                reply = self._exchange(link, url)
            except Failure as f:
                failure = f
            except Exception as exc:
                failure = classify(exc, self.s)
            if failure is None and not (reply.status in (408, 429) or reply.status >= 500):
                return reply
            retryable = failure.retryable if failure else True
            pause = self._pause(link, reply)
            if not retryable or link.attempts > self.s.retries or pause is None:
                if failure:
                    raise failure
                return reply
            if self.cancelled.wait(pause):
                raise Failure("error", "cancelled")

    def _pause(self, link: _Link, reply: _Reply | None) -> float | None:
        """Seconds to wait before the next attempt, or None if that would pass the deadline."""
        hinted = retry_after(reply.headers) if reply is not None else None
        if hinted is not None:
            pause = min(hinted, self.s.retry_after_max)
        else:
            pause = self.s.backoff * 2 ** (link.attempts - 1) * random.uniform(1.0, 1.5)
        return pause if time.monotonic() + pause < link.deadline else None

    def _exchange(self, link: _Link, url: httpx.URL) -> _Reply:
        link.status, link.headers, link.url = None, httpx.Headers(), str(url)
        headers = {"User-Agent": self.s.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
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
                    body = read_body(response, self.s.max_bytes, self.cancelled)
                else:
                    drain(response)
                return _Reply(response.status_code, response.reason_phrase, response.headers, body)
            finally:
                response.close()


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
        gate = HostGate(settings.fetch_per_host, settings.fetch_host_delay, cancelled)
        return _Fetcher(settings, client, gate, cancelled).fetch(request)
    finally:
        if own:
            client.close()


# -- many links ----------------------------------------------------------------------------


def fetch_all(requests: Iterable[FetchRequest], settings: Settings,
              on_result: Callable[[FetchResult], None] | None = None,
              added: list[FetchRequest] | None = None, gate=None) -> Iterator[FetchResult]:
    """Fetch every link concurrently, yielding each result as it completes (one per request).

    ``on_result``, if given, is called in the caller's thread with each result
    just before it is yielded. ``added``, if given, is a list the caller may append
    requests to while it iterates (a follow-up a result called for): each is taken
    out and started at its host's next turn, ahead of that host's links still
    waiting, and yields its result like the others. Per-host limits
    (``fetch_per_host``, ``fetch_host_delay``) hold across all the links of one
    call. Closing the iterator early cancels the fetches still running. ``gate``: who hands out
    the per-host turns, when not this call's own HostGate (one shared by a whole cluster: it has
    HostGate's ``slot``, ``ready_at``, ``cancelled`` and ``cancel``).
    """
    added = added if added is not None else []
    pending = Pending(((host_of(r.url), r) for r in requests), settings.fetch_per_host)
    gate = gate or HostGate(settings.fetch_per_host, settings.fetch_host_delay, threading.Event())
    client = FetchClient(settings)
    fetcher = _Fetcher(settings, client, gate, gate.cancelled)
    workers = max(1, settings.fetch_concurrency)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rq-fetch")
    running: dict[Future, str] = {}
    try:
        while pending or running or added:
            while added:
                request = added.pop(0)
                pending.put_first(host_of(request.url), request)
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
        gate.cancel()
        client.backend.abort_all()
        pool.shutdown(wait=True, cancel_futures=True)
        client.close()
