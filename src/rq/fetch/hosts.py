"""Politeness per host: ``HostGate`` keeps at most ``fetch_per_host`` requests in flight
to one host, started ``fetch_host_delay`` seconds apart, and ``Pending`` holds the links
``fetch_all`` has not started yet, by host, handing a free thread the next link whose
host can take a request now.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from typing import Generic, Iterable, Iterator, TypeVar

from rq.fetch.failures import Failure

T = TypeVar("T")


class HostGate:
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
                    raise Failure("error", "cancelled")
                now = time.monotonic()
                free = self._busy[host] < self._per_host
                start_in = self._next.get(host, 0.0) - now
                if free and start_in <= 0:
                    break
                left = deadline - now
                if left <= 0:
                    raise Failure("timeout", f"no turn at {host} before the deadline")
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


class Pending(Generic[T]):
    """Links not started yet, by host, so threads go to hosts that can take a request now."""

    def __init__(self, links: Iterable[tuple[str, T]], per_host: int):
        self._by_host: dict[str, collections.deque[T]] = {}
        for host, link in links:
            self._by_host.setdefault(host, collections.deque()).append(link)
        self._active: collections.Counter[str] = collections.Counter()
        self._per_host = max(1, per_host)

    def __bool__(self) -> bool:
        return bool(self._by_host)

    def put_first(self, host: str, link: T) -> None:
        """Add ``link`` ahead of the links still waiting for ``host``: it starts at that host's next turn."""
        self._by_host.setdefault(host, collections.deque()).appendleft(link)

    def take(self, gate: HostGate) -> tuple[str, T] | None:
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
        link = queue.popleft()
        if not queue:
            del self._by_host[host]
        self._active[host] += 1
        return host, link

    def done(self, host: str) -> None:
        """A link taken for ``host`` has finished."""
        self._active[host] -= 1
