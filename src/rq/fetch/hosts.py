"""Politeness per host: ``HostGate`` keeps at most ``fetch_per_host`` requests in flight
to one host, started ``fetch_host_delay`` seconds apart, and ``Pending`` holds the links
``fetch_all`` has not started yet, by host, handing a free thread the next link whose
host can take a request now.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from typing import Generic, Iterable, Iterator, TypeVar

from rq.fetch.failures import Failure

T = TypeVar("T")


class TurnBook:
    """The bookkeeping of per-host politeness, with no waiting in it: at most ``per_host``
    requests in flight per host, started ``delay`` seconds apart. HostGate waits on it within one
    process; a Ray actor holds one for a whole cluster (rq.ingest.on_ray), so the limits hold
    across machines. Times are this object's own monotonic clock: callers get waits, not instants."""

    def __init__(self, per_host: int, delay: float):
        self._per_host = max(1, per_host)
        self._delay = max(0.0, delay)
        self._busy: collections.Counter[str] = collections.Counter()
        self._next: dict[str, float] = {}

    def start(self, host: str, now: float | None = None) -> float:
        """0.0 when a request to ``host`` may start now (and it is counted as started), else how
        long to wait before asking again: the seconds to its next turn, or ``math.inf`` while all
        its slots are busy (ask again when one finishes)."""
        now = time.monotonic() if now is None else now
        if self._busy[host] >= self._per_host:
            return math.inf
        start_in = self._next.get(host, 0.0) - now
        if start_in > 0:
            return start_in
        self._busy[host] += 1
        self._next[host] = now + self._delay
        return 0.0

    def finish(self, host: str) -> None:
        """A request started for ``host`` has ended."""
        self._busy[host] -= 1
        if self._busy[host] <= 0:
            del self._busy[host]

    def next_start(self, host: str) -> float:
        """The instant (this object's clock) from which ``host`` may take its next request."""
        return self._next.get(host, 0.0)


class HostGate:
    """At most ``per_host`` requests in flight per host, starts ``delay`` seconds apart, within
    this process (threads wait on a condition). ``cancelled`` set: every waiter gives up."""

    def __init__(self, per_host: int, delay: float, cancelled: threading.Event):
        self.cancelled = cancelled
        self._book = TurnBook(per_host, delay)
        self._cond = threading.Condition()

    def ready_at(self, host: str) -> float:
        with self._cond:
            return self._book.next_start(host)

    @contextlib.contextmanager
    def slot(self, host: str, deadline: float) -> Iterator[None]:
        with self._cond:
            while True:
                if self.cancelled.is_set():
                    raise Failure("error", "cancelled")
                now = time.monotonic()
                wait = self._book.start(host, now)
                if wait == 0.0:
                    break
                left = deadline - now
                if left <= 0:
                    raise Failure("timeout", f"no turn at {host} before the deadline")
                self._cond.wait(min(left, wait))
        try:
            yield
        finally:
            with self._cond:
                self._book.finish(host)
                self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def cancel(self) -> None:
        """Make every waiter give up (fetch_all's shutdown)."""
        self.cancelled.set()
        self.wake()


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
