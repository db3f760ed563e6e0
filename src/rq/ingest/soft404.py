"""Soft 404s: pages that answer HTTP 200 but are really the site saying "not found".

A *soft 404* is a page that answers HTTP 200 but is really the site saying "not
here". Three signals, tried cheapest first, each only on HTML answered 200:

* ``home_redirect``: a link to a deeper page was redirected to the same site's
  home page;
* ``title`` / ``text``: the title or first heading is an error message and
  nothing else ("Page not found", "Oops! That page can't be found."), or the
  main text is short and says so. A long article *about* 404 pages is not
  flagged: a title must be made of error words only, and a body counts only
  when it is short;
* ``sibling``: once per host and ingest run, a made-up address next to the page
  (``<parent path>/rq-missing-<random hex>``) is fetched with the same guard and
  settings; if it also answers 200 with near-identical text, the page is the
  site's catch-all error page. The check does not fetch: it answers ``Waiting``
  with the probe to start, the ingest run fetches it among its other links (so
  probes of many hosts run at once, under the same per-host limits and
  deadlines) and judges the pages that waited for it with ``sibling``. The
  ``probe_soft_404`` setting turns this signal off.

A soft 404 is recorded as a failed fetch with reason ``soft_404`` (the detail
names the signal); its body is still archived under ``raw/`` and referenced by
the fetch, but it does not replace the resource's last good document.

"""

from __future__ import annotations

import html as _html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from rq.fetch.urls import origin
from rq.ingest.similarity import path_words, similarity
from rq.words import words

SIMILAR = 0.9  # page vs made-up sibling: at least this alike -> soft 404
SHORT_BODY_WORDS = 100  # a "not found" sentence counts in a body this short or shorter
TITLE_MAX_BODY_WORDS = 600  # above this much main text, an error-shaped title alone does not decide
PROBE_PREFIX = "rq-missing-"
PROBE_KEY = "rq-probe"  # FetchRequest.key of a made-up sibling: never a resource id (40 hex digits)

# -- "not found" wording -----------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_PHRASES = [
    r"\berror\s*(?:code\s*)?:?\s*404\b",
    r"\b404\s*(?:error|[-:.!]?\s*(?:page\s+)?not\s+found)\b",
    r"\b(?:page|file|url|resource|document|article|post|content|address)s?\s+(?:was\s+|is\s+|has\s+)?not\s+(?:been\s+)?found\b",
    r"\b(?:does\s*n'?t|does\s+not|no\s+longer)\s+exists?\b",
    r"\bno\s+longer\s+(?:available|online|here)\b",
    r"\b(?:can(?:no|')?t|could\s*n'?t|could\s+not)\s+be\s+found\b",
    r"\b(?:could\s*n'?t|could\s+not|can'?t|cannot|can\s+not)\s+find\s+(?:the|that|this|what|a)\b",
    r"\bpage\s+(?:is\s+)?missing\b",
    r"\bnothing\s+(?:was\s+)?found\b",
    r"\bhas\s+been\s+(?:removed|deleted|taken\s+down)\b",
]
_BODY_PHRASE = re.compile("|".join(_PHRASES), re.I)
# In a title made of error words only, a bare "404" or "not found" is enough.
_TITLE_PHRASE = re.compile("|".join(_PHRASES + [r"\b404\b", r"\b410\b", r"\bnot\s+found\b"]), re.I)
# Every word of an error-page title comes from here; "Designing a 404 page" has "designing".
_ERROR_WORDS = frozenset("""
404 410 error page pages not found oops oop whoops sorry http the that this these you your we our us i
requested request could couldn can cannot t be find found doesn does do exist exists existed no longer
available is was missing nothing here there file resource document gone removed has have been deleted
taken down it looks look like seems seem appears appear uh oh hmm ouch isn s re looking for were are a an
lost status code to of at on content article post url address link broken dead unavailable anymore
might may moved or went wrong something what ll let go back home just yet any
""".split())
_TITLE_SPLIT = re.compile(r"\s+[|\-\u2013\u2014:\u00b7\u2022\u00bb/]\s+|\s*\|\s*|:\s+")


def _error_title(title: str | None) -> str | None:
    """The part of a title that is an error message and nothing else, if there is one."""
    if not title:
        return None
    title = " ".join(_html.unescape(title).translate(_APOSTROPHES).split())
    for segment in [title, *_TITLE_SPLIT.split(title)]:
        tokens = words(segment)
        if tokens and len(tokens) <= 12 and _TITLE_PHRASE.search(segment) \
                and all(t in _ERROR_WORDS or t.isdigit() for t in tokens):
            return segment.strip(" .!")
    return None


_TAG = re.compile(r"<[^>]+>")
_RAW_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.I | re.S)
_RAW_H1 = re.compile(rb"<h1[^>]*>(.*?)</h1", re.I | re.S)


def _raw_headings(body: bytes | None, charset: str | None) -> list[str]:
    """The page's <title> and first <h1> as written (trafilatura may report og:title instead)."""
    if not body:
        return []
    head = body[:300_000]
    found = []
    for pattern in (_RAW_TITLE, _RAW_H1):
        match = pattern.search(head)
        if match:
            try:
                text = match.group(1).decode(charset or "utf-8", "replace")
            except LookupError:
                text = match.group(1).decode("utf-8", "replace")
            found.append(_html.unescape(_TAG.sub(" ", text)))
    return found


def says_not_found(title: str | None, text: str, body: bytes | None = None,
                   charset: str | None = None) -> tuple[str, str] | None:
    """(signal, explanation) when the page's own words say it is missing."""
    n_words = len(words(text))
    if n_words <= TITLE_MAX_BODY_WORDS:
        for candidate in [title, *_raw_headings(body, charset)]:
            message = _error_title(candidate)
            if message:
                return "title", f"the page is titled \u201c{message}\u201d"
    if 0 < n_words <= SHORT_BODY_WORDS:
        match = _BODY_PHRASE.search(text.translate(_APOSTROPHES))
        if match:
            return "text", f"its {n_words}-word text says \u201c{' '.join(match.group(0).split())}\u201d"
    return None


# -- redirects to the home page --------------------------------------------------------------

_HOME_PATH = re.compile(r"^/?(?:[a-z]{2}(?:[-_][a-z]{2})?/?)?(?:index\.(?:html?|php|aspx?|jsp))?$", re.I)


def _site(host: str) -> str:
    host = (host or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def redirected_home(requested: str, final: str, redirects: tuple[str, ...] | list[str]) -> bool:
    """A link to a deeper page that ended, through redirects, on its own site's home page."""
    if not redirects:
        return False
    try:
        asked, landed = urlsplit(requested), urlsplit(final)
    except ValueError:
        return False
    if _HOME_PATH.match(asked.path or "/"):
        return False  # asked for the home page (or a locale home) in the first place
    a, b = _site(asked.hostname or ""), _site(landed.hostname or "")
    same_site = a == b or a.endswith("." + b) or b.endswith("." + a)
    return same_site and bool(_HOME_PATH.match(landed.path or "/"))


# -- the made-up sibling -----------------------------------------------------------------------


def probe_url(url: str, token: str) -> str | None:
    """An address next to ``url`` that cannot exist: same scheme, host and parent folder."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = parts.path or "/"
    trailing = path.endswith("/") and path != "/"
    parent = path.rstrip("/").rsplit("/", 1)[0] + "/"
    name = f"{PROBE_PREFIX}{token}" + ("/" if trailing else "")
    return urlunsplit((parts.scheme, parts.netloc, parent + name, "", ""))


@dataclass
class Probe:
    url: str
    status: int | None
    outcome: str  # the sibling's fetch outcome: "ok" means the site said 200 to a made-up address
    text: str


@dataclass(frozen=True)
class Waiting:
    """A page that can be judged only once its host's made-up sibling is known."""

    origin: str
    request: object | None  # the probe's FetchRequest to start; None when it is already on its way


class SoftNotFound:
    """Decides whether a page answered 200 is a soft 404. One per ingest run: it remembers
    the made-up sibling of each host (fetched at most once per host)."""

    def __init__(self, settings, pool, token: str | None = None, probe_siblings: bool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.token = token or secrets.token_hex(8)
        self.probe_siblings = settings.probe_soft_404 if probe_siblings is None else probe_siblings
        self.probes: dict[str, Probe | None] = {}  # by origin, once its probe has answered
        self._asked: set[str] = set()  # origins whose probe is on its way

    def check(self, result, kind: str | None, text: str, title: str | None,
              charset: str | None = None) -> str | Waiting | None:
        """``"signal: explanation"`` if the fetched page is a soft 404, None if it is not, or
        ``Waiting`` when that takes its host's made-up sibling, not fetched yet."""
        if result.outcome != "ok" or kind != "html":
            return None
        requested, final = result.request.url, result.final_url or result.request.url
        if redirected_home(requested, final, result.redirects):
            return f"home_redirect: the link now redirects to the site's home page {final}"
        said = says_not_found(title, text, result.body, charset)
        if said:
            return f"{said[0]}: HTTP 200, but {said[1]}"
        if not self.probe_siblings or not text.strip():
            return None
        try:
            path = urlsplit(final).path or "/"
        except ValueError:
            return None
        if _HOME_PATH.match(path):
            return None  # a site answering everything with its home page would match its own home
        key = origin(final)
        if key in self.probes:
            return self.sibling(final, text)
        if key in self._asked:
            return Waiting(key, None)
        target = probe_url(final, self.token)
        if target is None:
            self.probes[key] = None
            return None
        from rq.fetch.client import FetchRequest

        self._asked.add(key)
        return Waiting(key, FetchRequest(url=target, key=PROBE_KEY))

    @staticmethod
    def is_probe(result) -> bool:
        return result.request.key == PROBE_KEY

    def probed(self, result) -> str:
        """Keep a made-up sibling's answer; returns the origin whose waiting pages can now be judged."""
        key = origin(result.request.url)
        self._asked.discard(key)
        self.probes[key] = self._read_probe(result)
        return key

    def sibling(self, final: str, text: str) -> str | None:
        """The verdict on a page whose host's made-up sibling is known."""
        probe = self.probes.get(origin(final))
        if probe is None or probe.outcome != "ok" or not probe.text.strip():
            return None
        score = similarity(text, probe.text, path_words(final), path_words(probe.url))
        if score >= SIMILAR:
            return (f"sibling: the made-up address {probe.url} also answers HTTP 200 with the same text "
                    f"(similarity {score:.2f})")
        return None

    def _read_probe(self, result) -> Probe:
        target = result.request.url
        text = ""
        if result.outcome == "ok" and result.body is not None:
            if redirected_home(target, result.final_url or target, result.redirects):
                return Probe(target, result.http_status, "home_redirect", "")
            doc = self.pool.extract(result.body, result.content_type, result.final_url or target, self.settings)
            text = doc.text if doc.kind == "html" else ""
        return Probe(target, result.http_status, result.outcome, text)
