"""Telling "this machine is offline" from "these links are dead".

Without a network every host name fails to resolve, which looks exactly like a list of
dead domains. A run is judged offline when host names of at least ``MIN_HOSTS`` different
hosts failed to resolve and no link of the run got a connection to any server. Until a
connection succeeds, name-lookup failures are held back; the first connection releases
them as what they are (``gone_dns``). At the end of a run that never connected, they are
recorded as ``offline``: not checked, not dead, tried again by the next ingest.
"""

from __future__ import annotations

from rq.fetch.urls import host_of

MIN_HOSTS = 3  # fewer failing hosts are as likely a few dead domains as a missing network
# Failures that still prove a connection was made: a server spoke TLS, or dropped one.
_CONNECTED = frozenset({"tls", "reset"})


def connected(result) -> bool:
    """Whether the fetch reached a server: any HTTP answer, or a connection the server then broke."""
    return result.outcome != "failed" or result.http_status is not None or result.reason in _CONNECTED


class OfflineWatch:
    """Holds back name-lookup failures while no link of the run has connected anywhere."""

    def __init__(self) -> None:
        self.online = False
        self.held: list = []  # gone_dns FetchResults, in arrival order

    def see(self, result) -> list:
        """The results to store now: ``result`` itself, or nothing while it is held back, plus
        the failures held so far once a connection shows the network works."""
        if self.online:
            return [result]
        if connected(result):
            self.online = True
            released, self.held = self.held, []
            return [*released, result]
        if result.reason == "gone_dns":
            self.held.append(result)
            return []
        return [result]

    def offline(self) -> bool:
        """At the end of the run: whether it looked offline (see the module's doc)."""
        return not self.online and len({host_of(r.request.url) for r in self.held}) >= MIN_HOSTS

    def detail(self) -> str:
        hosts = len({host_of(r.request.url) for r in self.held})
        return (f"no host name could be looked up ({hosts} hosts) and no server was reached: "
                "this machine looked offline")
