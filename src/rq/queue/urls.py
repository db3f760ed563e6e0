"""URL normalisation, and the URL actually fetched for a resource."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the click; two links differing in them are one page.
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ref_src|source)$", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """A canonical form used for identity: the same page written two ways gets one id.

    http and https count as one page, the host is lower-cased, default ports,
    fragments, tracking parameters and a trailing slash are dropped, and the
    remaining query parameters are sorted.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING.match(k)))
    return urlunsplit(("https", host, path, query, ""))


_ARXIV_ABS = re.compile(r"^https?://(?:www\.)?(?:export\.)?arxiv\.org/(?:abs|html)/([^?#]+?)(?:v\d+)?/?(?:[?#].*)?$", re.I)


def fetch_url(url: str) -> str:
    """The URL rq downloads for a link: an arXiv abstract page yields the paper's PDF."""
    match = _ARXIV_ABS.match(url.strip())
    if match:
        return f"https://arxiv.org/pdf/{match.group(1)}"
    return url.strip()


def is_web_url(url: str) -> bool:
    return bool(re.match(r"^https?://[^\s/]", url, re.I))
