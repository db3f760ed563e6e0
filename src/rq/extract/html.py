"""HTML documents: ``extract_html`` finds the main text and metadata with trafilatura,
falling back to the whole page's text (lxml, without scripts, styles and navigation)
when trafilatura finds nothing.

trafilatura and lxml are imported inside the functions that use them.
"""

from __future__ import annotations

import html as _html
import re

from rq.extract.charset import decode_bytes
from rq.extract.clean import drop_navigation, drop_reference_lists
from rq.extract.document import Extracted, problem
from rq.extract.sniff import parse_content_type
from rq.extract.text import SPACES, binary_as_text, clean_lines

_XML_DECL_TEXT = re.compile(r"^\s*<\?xml\b[^>]*\?>", re.I)

_SKIP_TAGS = ("script", "style", "noscript", "template", "nav", "head", "svg", "math", "iframe", "object",
              "embed", "canvas", "select", "button")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body dd details dialog div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr html li main ol p pre section summary table tbody tfoot thead tr ul "
    "caption center".split()
)
_TITLE_RE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_TRAFILATURA_OPTIONS = dict(
    include_comments=False,
    favor_precision=True,  # best F1 on the 45-page benchmark (see benchmarks/bench_extract.py)
    include_tables=True,
    include_images=False,
    include_links=False,
    deduplicate=False,
    with_metadata=True,
)
_METADATA_MAX_CHARS = 5_000_000


def _html_title(text: str) -> str | None:
    match = _TITLE_RE.search(text, 0, 1_000_000)
    if not match:
        return None
    title = SPACES.sub(" ", _html.unescape(match.group(1))).strip()
    return title[:500] or None


def _html_to_plain(text: str) -> str:
    """Whole-page text without scripts, styles and navigation, one block per line."""
    import lxml.etree
    import lxml.html

    parser = lxml.html.HTMLParser(huge_tree=True, remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        try:
            root = lxml.html.document_fromstring(text.encode("utf-8"), parser=lxml.html.HTMLParser(
                huge_tree=True, remove_comments=True, remove_pis=True, encoding="utf-8"))
        except (lxml.etree.ParserError, ValueError):
            return ""
    for element in list(root.iter(*_SKIP_TAGS)):
        parent = element.getparent()
        if parent is not None:
            element.drop_tree()
    parts: list[str] = []
    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _BLOCK_TAGS:
                parts.append("\n")
            if element.text and tag:
                parts.append(element.text)
        else:
            if tag in _BLOCK_TAGS or tag == "br":
                parts.append("\n")
            elif tag in ("td", "th"):
                parts.append(" ")
            if element.tail and element is not root:
                parts.append(element.tail)
    return clean_lines("".join(parts))


def _trafilatura():
    """Import trafilatura once, muting its per-page log lines: rq reports problems in Extracted."""
    import logging

    import trafilatura

    for name in ("trafilatura", "htmldate", "courlan"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)
    return trafilatura


def extract_html(body: bytes, content_type: str | None, url: str) -> Extracted:
    _, header_charset = parse_content_type(content_type)
    text, charset = decode_bytes(body, header_charset, html=True)
    garbage = binary_as_text(text)
    if garbage:
        return problem("html", "not_text", garbage, charset=charset)
    text = _XML_DECL_TEXT.sub("", text, count=1)  # lxml refuses str input that declares an encoding
    title = author = date = None
    main = ""
    if text.strip():
        trafilatura = _trafilatura()

        doc = None
        try:
            doc = trafilatura.bare_extraction(text, url=url or None, **_TRAFILATURA_OPTIONS)
        except MemoryError:
            raise
        except Exception:  # trafilatura gave up on this page: fall back to the whole-page text
            doc = None
        if doc is not None:
            main = clean_lines(doc.text or "")
            title, author, date = doc.title or None, doc.author or None, doc.date or None
        elif len(text) <= _METADATA_MAX_CHARS:
            try:
                meta = trafilatura.extract_metadata(text, default_url=url or None)
            except MemoryError:
                raise
            except Exception:
                meta = None
            if meta is not None:
                title, author, date = meta.title or None, meta.author or None, meta.date or None
        if not main:
            main = _html_to_plain(text)
    title = title or _html_title(text)
    # What article extraction kept of the page's furniture, and its reference list, are not
    # the article: they are neither indexed nor shown (rq.extract.clean says why).
    main = drop_reference_lists(drop_navigation(main))
    if not main:
        return problem("html", "no_text", "no readable text in the page", title=title, author=author, date=date,
                       charset=charset)
    return Extracted("html", main, title, author, date, None, charset, None, "")
