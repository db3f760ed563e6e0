"""Keep fetches away from private networks, judged on the address actually connected to.

A link in a reading queue is untrusted input: it (or a redirect it leads to) may
name ``localhost``, a cloud metadata address or a LAN box in one of many
disguises (``http://2130706433/``, ``http://0x7f.1/``, ``[::ffff:127.0.0.1]``,
a DNS name that resolves to 10.0.0.5...). Parsing the URL cannot catch them all,
so the check sits in the network backend httpcore connects through: the host is
resolved once, every address is vetted, and the socket connects to a vetted
address, never to the name again (a second lookup could answer differently:
DNS rebinding). Every connection, hence every redirect hop, goes through it.

The same backend also bounds every wait by a per-thread deadline (see
``deadline``), so a server that dribbles bytes or headers cannot hold a fetch
past its overall time budget, and can abort all its sockets at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ipaddress
import os
import socket
import ssl
import threading
import time
import weakref
from typing import Iterable, Iterator

import httpcore
import httpx
from httpcore._backends.sync import (
    SyncStream,  # not re-exported; the socket stream SyncBackend itself returns
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(httpcore.ConnectError):
    """A host resolved to an address rq must not connect to.

    A ConnectError so that generic httpx code sees a failed connection; rq's
    fetch finds this class in the exception chain to report "blocked".
    """

    def __init__(self, host: str, address: str, why: str):
        same = normalize_host(host) == address
        super().__init__(f"{address} is {why}" if same else f"{host} is {address}, {why}")
        self.host = host
        self.address = address
        self.why = why


class ConnectFailed(httpcore.ConnectError):
    """No connection could be made; ``original`` is the OSError or gaierror that said why.

    Kept as an attribute because httpcore's pool re-raises with ``from None``,
    which drops ``__cause__``.
    """

    def __init__(self, message: str, original: BaseException | None):
        super().__init__(message)
        self.original = original


class DeadlineExceeded(httpcore.TimeoutException):
    """The per-link deadline set with ``deadline()`` ran out during network I/O."""


# Ranges that are never a public web server. Order matters only for the wording.
_V4_RANGES = [
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("169.254.0.0/16", "a link-local address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
]
_V6_RANGES = [
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),  # deprecated, but routable on old LANs
    ("fc00::/7", "a unique-local (private) address"),
    ("ff00::/8", "a multicast address"),
    # RFC 8215 local-use NAT64: the v4 part's position depends on the prefix length.
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    # Deprecated IPv4-compatible form (::a.b.c.d): Python calls it global.
    ("::/96", "an IPv4-compatible IPv6 address"),
]
_TABLE = [(ipaddress.ip_network(net), why) for net, why in _V4_RANGES + _V6_RANGES]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the same host, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None  # Teredo (2001::/32) embeds a NAT's address, not the host's: is_global says no


def forbidden_reason(address: str | IPAddress) -> str | None:
    """Why rq must not connect to ``address`` (e.g. "a loopback address"), or None if it may."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        inner = _embedded_v4(ip)
        if inner is not None:
            why = forbidden_reason(inner)
            return f"{why} ({inner}) inside IPv6" if why else None
    for net, why in _TABLE:
        if ip.version == net.version and ip in net:
            return why
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:  # documentation, benchmarking, protocol-assignment ranges...
        return "not a public address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host name spells out by itself, in any form the C library accepts.

    ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` all mean 127.0.0.1
    to inet_aton, and so to getaddrinfo; httpx rejects some of them as invalid
    URLs, so they must be caught before httpx sees them to be reported "blocked".
    """
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None  # a DNS name: only resolving it tells
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _is_plain_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class Guard:
    """What may be reached: everything with allow_private, else public addresses plus allow_hosts."""

    def __init__(self, allow_private: bool = False, allow_hosts: Iterable[str] = ()):
        self.allow_private = allow_private
        self.allow_hosts = frozenset(normalize_host(h) for h in allow_hosts)

    def trusts(self, host: str) -> bool:
        return self.allow_private or normalize_host(host) in self.allow_hosts

    def check_literal(self, host: str) -> None:
        """Raise BlockedAddress if ``host`` is itself a forbidden address (no lookup, no connection)."""
        ip = literal_address(host)
        if ip is None or self.trusts(host):
            return
        why = forbidden_reason(ip)
        if why:
            spelled = normalize_host(host)
            raise BlockedAddress(host, spelled if _is_plain_ip(spelled) else str(ip), why)

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Raise BlockedAddress if any address ``host`` resolved to is forbidden.

        Any, not all: a name that resolves to a public and a private address is
        either misconfigured or an attack, and picking the public one would let
        the next lookup (or the OS's address order) decide.
        """
        if self.trusts(host):
            return
        for address in addresses:
            why = forbidden_reason(address)
            if why:
                raise BlockedAddress(host, address, why)


# -- deadline ------------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("rq_deadline", default=None)


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Within this block (this thread), no connect, read or write waits past ``at`` (time.monotonic())."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None) -> tuple[float | None, bool]:
    """The timeout to use for one wait, and whether the deadline (not ``timeout``) is what bounds it."""
    at = _deadline.get()
    if at is None:
        return timeout, False
    left = at - time.monotonic()
    if left <= 0:  # a socket timeout of 0 would mean non-blocking, not "expired"
        raise DeadlineExceeded("deadline reached")
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


# -- httpcore backend ----------------------------------------------------------------------


class _BoundedStream(httpcore.NetworkStream):
    """httpcore's socket stream with every wait cut at the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: "GuardedBackend"):
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait, by_deadline = _bounded(timeout)
        try:
            return self._inner.read(max_bytes, wait)
        except httpcore.ReadTimeout:
            if by_deadline:
                raise DeadlineExceeded("deadline reached while reading") from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait, by_deadline = _bounded(timeout)
        try:
            self._inner.write(buffer, wait)
        except httpcore.WriteTimeout:
            if by_deadline:
                raise DeadlineExceeded("deadline reached while writing") from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        # server_hostname is the URL's host, so certificate checks and SNI use
        # the name even though the socket was connected to a bare address.
        wait, by_deadline = _bounded(timeout)
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, wait)
        except httpcore.ConnectTimeout:
            if by_deadline:
                raise DeadlineExceeded("deadline reached during the TLS handshake") from None
            raise
        self._backend._track(inner.get_extra_info("socket"))
        return _BoundedStream(inner, self._backend)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's sync backend, but: resolve once, vet every address, connect to a vetted one."""

    def __init__(self, guard: Guard):
        self.guard = guard
        self._live: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._aborted = False

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if self._aborted:
            raise httpcore.ConnectError("fetching was cancelled")
        self.guard.check_literal(host)
        addresses = self._resolve(host, port)
        self.guard.check_resolved(host, [sockaddr[0] for *_, sockaddr in addresses])
        last: Exception | None = None
        for family, kind, proto, _, sockaddr in addresses:
            try:
                sock = self._connect(family, kind, proto, sockaddr, timeout, local_address, socket_options)
            except (socket.timeout, OSError) as exc:
                last = exc
                continue
            self._track(sock)
            return _BoundedStream(SyncStream(sock), self)
        if isinstance(last, socket.timeout):
            raise httpcore.ConnectTimeout(f"connect to {host} timed out") from last
        raise ConnectFailed(f"cannot connect to {host}: {last}", last)

    @staticmethod
    def _resolve(host: str, port: int) -> list:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConnectFailed(f"cannot resolve {host}: {exc}", exc) from exc
        if not found:
            raise ConnectFailed(f"cannot resolve {host}", socket.gaierror(socket.EAI_NONAME, "no address"))
        return found

    @staticmethod
    def _connect(family, kind, proto, sockaddr, timeout, local_address, socket_options) -> socket.socket:
        wait, by_deadline = _bounded(timeout)
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(wait)
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if local_address:
                sock.bind((local_address, 0))
            sock.connect(sockaddr)
        except socket.timeout:
            sock.close()
            if by_deadline:
                raise DeadlineExceeded("deadline reached while connecting") from None
            raise
        except BaseException:
            sock.close()
            raise
        return sock

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("rq never fetches through a Unix socket")

    def _track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:  # the same lock as abort_all: a socket is either seen by it or cut here
            self._live.add(sock)
            if self._aborted:
                _cut(sock)

    def abort_all(self) -> None:
        """Refuse new connections and wake every blocked read (shutdown does; close would not)."""
        with self._lock:
            self._aborted = True
            live = list(self._live)
        for sock in live:
            _cut(sock)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """Verified TLS (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), no insecure fallback.

    Cached: loading the CA bundle costs ~0.1 s and a context is safe to share
    between clients and threads. The arguments are only the cache key; httpx
    reads the same variables.
    """
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that connects through GuardedBackend."""

    def __init__(self, guard: Guard, *, keepalive: int = 8):
        ssl_context = _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        super().__init__(verify=ssl_context, trust_env=False)
        self.backend = GuardedBackend(guard)
        # httpx has no public way to hand httpcore a network backend, so the pool it
        # just built (no connections yet) is swapped for one that uses ours;
        # handle_request only ever goes through self._pool (true of httpx 0.28, the version installed).
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("this httpx version builds its transport differently; rq.fetch.netguard needs updating")
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,  # fetch_all's own limits decide concurrency
            max_keepalive_connections=keepalive,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )
