"""How a fetch fails: ``Failure`` (a reason from client.REASONS and one human line, raised
inside a fetch and turned into a FetchResult at the end), ``classify`` (an exception from
the network stack as the failure a user should see) and ``retry_after`` (a Retry-After
header in seconds).
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
from typing import Iterator

import httpx

from rq.fetch import netguard
from rq.settings import Settings


# What a person can do about a link refused for its address: the flag first, the setting for good.
PRIVATE_HINT = "not fetched (pass --allow-private, or list the host in allow_hosts)"


class Failure(Exception):
    """Why one link failed; ``retryable`` when trying again may help (timeouts, resets)."""

    def __init__(self, reason: str, detail: str, *, retryable: bool = False):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "original", None)


def classify(exc: Exception, s: Settings) -> Failure:
    """Name the failure a user should see; only timeouts and resets are worth retrying."""
    chain = list(_causes(exc))

    def find(*types):
        return next((e for e in chain if isinstance(e, types)), None)

    if e := find(netguard.BlockedAddress):
        return Failure("blocked", f"{e}: {PRIVATE_HINT}")
    if find(netguard.DeadlineExceeded):
        return Failure("timeout", f"no complete response within {s.total_timeout:g}s")
    if e := find(socket.gaierror):
        return Failure("gone_dns", f"host name does not resolve ({e.strerror or e})")
    if e := find(ssl.SSLCertVerificationError):
        return Failure("tls", f"TLS certificate rejected: {e.verify_message or e}")
    if e := find(ssl.SSLError):
        return Failure("tls", f"TLS error: {e.reason or e}")
    if find(ConnectionRefusedError):
        return Failure("refused", "connection refused")
    if find(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return Failure("reset", "connection reset by the server", retryable=True)
    if find(httpx.ConnectTimeout):
        return Failure("timeout", f"connect timeout after {s.connect_timeout:g}s", retryable=True)
    if find(httpx.TimeoutException):
        return Failure("timeout", f"no data for {s.read_timeout:g}s", retryable=True)
    if e := find(httpx.RemoteProtocolError):
        if "disconnected" in str(e) or "closed" in str(e):
            return Failure("reset", "connection closed by the server before the response ended", retryable=True)
        return Failure("error", f"malformed HTTP response ({e})")
    if e := find(httpx.InvalidURL, httpx.UnsupportedProtocol):
        return Failure("bad_url", str(e))
    if e := find(OSError):
        return Failure("error", e.strerror or str(e))
    return Failure("error", f"{type(exc).__name__}: {exc}")


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds a Retry-After header asks for (delay or HTTP date), or None without a usable one."""
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

