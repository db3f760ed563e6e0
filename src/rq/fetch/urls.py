"""What fetch needs to know about a URL without fetching it: the origin it belongs to
(``origin``: credentials and per-origin state stay within one) and its host (``host_of``:
politeness is counted per host).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """"scheme://host[:port]": the host lower-cased, the scheme's default port dropped;
    "" when the URL cannot be parsed or has no scheme or host."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad IPv6 literal, a port that is not a number from 0 to 65535
        return ""
    if not parts.scheme or not host:
        return ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"


def host_of(url: str) -> str:
    """The host name of ``url``, lower-cased; "" when there is none."""
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""
