"""Find the links on one Markdown line, in order, in time linear in the line's length.

Real lists nest brackets (badges are ``[![alt](img)](url)``), put parentheses in
URLs, and mix Markdown with HTML anchors, autolinks and bare URLs. Brackets are
paired with a stack in one pass, so a line of 50,000 ``[`` costs no more than
reading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rq.queue.urls import is_web_url

_HTML_A = re.compile(r"""<a\s[^>]{0,2000}?href\s*=\s*["']([^"'\s]{1,4000})["'][^>]{0,2000}>(.{0,2000}?)</a\s*>""", re.I)
_AUTOLINK = re.compile(r"<(https?://[^>\s]{1,4000})>", re.I)
# Unbounded (one character class, so still linear): a URL is found whole, however long, and the
# parser refuses an overlong one instead of keeping its first few thousand characters as another page.
_BARE = re.compile(r"https?://[^\s<>\[\]\"'`]+", re.I)
_TAG = re.compile(r"</?[a-zA-Z][^>]{0,2000}>")
_EMPHASIS = re.compile(r"(\*\*|__|`+|~~)")
_SPACES = re.compile(r"\s+")
# An escape or a bracket of one kind; compiled once (a queue has thousands of lines).
_BRACKETS = {pair: re.compile(r"\\.|[" + re.escape(pair) + "]") for pair in ("[]", "()")}


@dataclass(frozen=True)
class Link:
    kind: str  # "markdown" | "image" | "html" | "autolink" | "bare"
    text: str
    url: str
    start: int
    end: int
    badge: bool = False  # a link whose visible text is an image

    @property
    def is_web(self) -> bool:
        return is_web_url(self.url)


def _pairs(line: str, open_ch: str, close_ch: str) -> dict[int, int]:
    """Map each opening bracket to its matching close; unmatched ones are absent.

    Only bracket characters and escapes are visited, so a long line of prose costs
    one regex scan rather than a Python loop over every character.
    """
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for m in _BRACKETS[open_ch + close_ch].finditer(line):
        ch = m.group(0)
        if ch == open_ch:
            stack.append(m.start())
        elif ch == close_ch and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _destination(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("<") and ">" in raw:
        return raw[1:raw.index(">")]
    return raw.split()[0] if raw.split() else ""


def _markdown_links(line: str) -> list[Link]:
    if "](" not in line:
        return []
    squares = _pairs(line, "[", "]")
    parens = _pairs(line, "(", ")")
    links: list[Link] = []
    pos = 0
    for i in sorted(squares):
        close = squares[i]
        if i < pos or close + 1 >= len(line) or line[close + 1] != "(" or (close + 1) not in parens:
            continue
        end = parens[close + 1]
        text = line[i + 1:close]
        image = i > 0 and line[i - 1] == "!"
        kind = "image" if image else "markdown"
        start = i - 1 if image else i
        links.append(Link(kind, _plain(text), _destination(line[close + 2:end]),
                          start, end + 1, badge="![" in text))
        pos = end + 1
    return links


def _mask(line: str, spans: list[tuple[int, int]]) -> str:
    """Blank out the given spans, keeping every other character's offset."""
    pieces, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        pieces += [line[pos:start], " " * (end - start)]
        pos = end
    pieces.append(line[pos:])
    return "".join(pieces)


def find_links(line: str) -> list[Link]:
    """Every link on the line, ordered by position."""
    links = _markdown_links(line)
    rest = _mask(line, [(lk.start, lk.end) for lk in links])
    if "<" in rest:
        for m in _HTML_A.finditer(rest):
            links.append(Link("html", strip_inline_markup(m.group(2)), m.group(1).strip(), m.start(), m.end(),
                              badge="<img" in m.group(2).lower()))
        rest = _mask(rest, [(lk.start, lk.end) for lk in links if lk.kind == "html"])
        for m in _AUTOLINK.finditer(rest):
            links.append(Link("autolink", "", m.group(1), m.start(), m.end()))
        rest = _mask(rest, [(lk.start, lk.end) for lk in links if lk.kind == "autolink"])
    if "://" in rest:
        for m in _BARE.finditer(rest):
            url = m.group(0).rstrip(".,;:!?)")
            links.append(Link("bare", "", url, m.start(), m.start() + len(url)))
    return sorted(links, key=lambda lk: lk.start)


_INNER_IMAGE = re.compile(r"!\[[^\]]{0,2000}\]\([^)]{0,4000}\)")


def _plain(text: str) -> str:
    """Link text without markup; not recursive, so deep nesting stays cheap."""
    text = _INNER_IMAGE.sub("", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text).replace("[", "").replace("]", "")
    return _SPACES.sub(" ", text).strip()


def strip_inline_markup(text: str) -> str:
    """Readable text of a Markdown fragment: links become their text, images and tags vanish."""
    if "[" in text or "<" in text:
        pieces: list[str] = []
        pos = 0
        for lk in _markdown_links(text):
            pieces.append(text[pos:lk.start])
            if lk.kind == "markdown" and not lk.badge:
                pieces.append(lk.text)
            pos = lk.end
        pieces.append(text[pos:])
        text = "".join(pieces)
        text = _HTML_A.sub(lambda m: m.group(2), text)
        text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    return _SPACES.sub(" ", text).strip()
