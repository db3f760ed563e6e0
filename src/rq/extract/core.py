"""Turn fetched bytes into main text: HTML (trafilatura), PDF (pypdfium2), plain text.

``extract`` runs in the calling process. ``extract_isolated`` runs the same code in a
reusable child process with a wall-clock limit (``settings.extract_timeout``) and an
address-space limit (``settings.extract_memory_mb``), so one hostile or broken document
(a parser crash, a page that takes minutes, a memory blow-up) marks only that document.

Neither function raises for a bad document: problems come back in ``Extracted.problem``
("no_text", "not_text", "too_many_pages", "timeout", "crashed", "too_much_memory",
"bad_pdf") with one human line in ``Extracted.detail``. The input bytes are never
modified; decoding happens on a copy.

trafilatura, lxml, pypdfium2 and charset-normalizer are imported inside the functions
that use them, so importing this module costs nothing for rq's cheap commands.
"""

from __future__ import annotations

import atexit
import codecs
import html as _html
import os
import queue
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from rq.settings import Settings

__all__ = [
    "Extracted",
    "ExtractorPool",
    "close",
    "extract",
    "extract_isolated",
    "sniff_kind",
]

PROBLEMS = ("no_text", "not_text", "too_many_pages", "timeout", "crashed", "too_much_memory", "bad_pdf")


@dataclass(frozen=True)
class Extracted:
    kind: str  # "html" | "pdf" | "text" | "unsupported"
    text: str  # main text, "" when nothing was found
    title: str | None
    author: str | None
    date: str | None  # ISO date when known
    pages: int | None  # PDFs: pages read
    charset: str | None  # HTML/text: the Python codec used to decode ("utf-8", "cp1252", "cp932"...)
    problem: str | None  # None or one of PROBLEMS
    detail: str  # one human line about the problem, "" when none


def _problem(kind: str, problem: str, detail: str, **fields) -> Extracted:
    base = dict(text="", title=None, author=None, date=None, pages=None, charset=None)
    base.update(fields)
    return Extracted(kind=kind, problem=problem, detail=detail, **base)


# ---------------------------------------------------------------------------
# What is it?

_BINARY_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"PK\x03\x04",  # zip, docx, epub, jar...
    b"PK\x05\x06",
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x00\x00\x01\x00",  # ico
    b"II*\x00",  # tiff
    b"MM\x00*",
    b"OggS",
    b"fLaC",
    b"\x1aE\xdf\xa3",  # matroska / webm
    b"wOFF",
    b"wOF2",
    b"\x00asm",
    b"\x7fELF",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # old MS Office
    b"%!PS",
)

_SHORT_MAGIC = (b"BM", b"MZ", b"ID3", b"RIFF")  # bmp, exe, mp3, wav/webp: binary only if the bytes say so too
_HTML_MIMES = {"text/html", "application/xhtml+xml", "text/xml", "application/xml", "application/vnd.wap.xhtml+xml"}
_PLAIN_MIMES = {"text/plain", "text/markdown", "text/x-markdown", "text/x-rst", "text/prs.fallenstein.rst"}
_TEXT_APP_MIMES = {
    "application/json",
    "application/ld+json",
    "application/x-ndjson",
    "application/javascript",
    "application/x-javascript",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
    "application/x-tex",
    "application/x-latex",
    "application/x-sh",
    "application/x-python",
    "application/markdown",
}
_BINARY_MIME_PREFIXES = ("image/", "audio/", "video/", "font/", "model/", "application/vnd.", "application/x-font")
_BINARY_MIMES = {
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/msword",
    "application/wasm",
    "application/java-archive",
    "application/x-executable",
    "application/x-sharedlib",
    "application/x-msdownload",
    "application/x-shockwave-flash",
    "application/postscript",
    "application/rtf",
}
_TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst", ".text", ".org", ".adoc")
_HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")
_STRONG_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]")
_WEAK_HTML_START = re.compile(
    rb"<(?:!--|script|iframe|h[1-6]|div|font|table|a|style|title|b|br|p|meta|link|section|article|main|span)[\s>/]"
)


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
_PRINTABLE_ASCII = bytes([9, 10, 13, *range(32, 127)])


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = content_type.split(";")
    mime = parts[0].strip().lower()
    charset = None
    for part in parts[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip() or None
    return mime, charset


def _sniff_head(body: bytes) -> bytes:
    """The first bytes, lower-cased and readable as ASCII whatever the BOM."""
    head = body[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode("ascii", errors="ignore")
    elif head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.lower()


def _looks_binary(body: bytes) -> bool:
    sample = body[:8192]
    if not sample:
        return False
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text has NULs
        return False
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > len(sample) * 0.05


def _url_suffix(url: str) -> str:
    try:
        path = urlsplit(url or "").path.lower()
    except ValueError:
        return ""
    return os.path.splitext(path)[1]


def sniff_kind(body: bytes, content_type: str | None, url: str) -> str:
    """"html", "pdf", "text" or "unsupported", trusting the bytes over the served type."""
    start = body.find(b"%PDF-", 0, 1024)
    if start == 0 or (start > 0 and b"<" not in body[:start]):  # PDF readers allow junk before the header
        return "pdf"
    if body.startswith(_BINARY_MAGIC) or (body.startswith(_SHORT_MAGIC) and _looks_binary(body)):
        return "unsupported"
    if body[4:8] == b"ftyp" and _looks_binary(body):  # mp4, heic, avif...
        return "unsupported"
    head = _sniff_head(body)
    if _STRONG_HTML.search(head):
        return "html"
    mime, _ = _parse_content_type(content_type)
    suffix = _url_suffix(url)
    if mime == "application/pdf":
        return "pdf"  # says PDF, has no PDF header: reported as bad_pdf
    if mime in _HTML_MIMES or mime.endswith("+xml"):
        return "html"
    plain_declared = mime in _PLAIN_MIMES or suffix in _TEXT_SUFFIXES
    if not plain_declared and _WEAK_HTML_START.match(head.lstrip()):
        return "html"
    binary = _looks_binary(body)
    if mime.startswith("text/") or mime in _TEXT_APP_MIMES or mime.endswith(("+json", "+yaml")):
        return "unsupported" if binary else "text"
    if mime in _BINARY_MIMES or mime.endswith("+zip") or mime.startswith(_BINARY_MIME_PREFIXES):
        return "unsupported"
    # no type, application/octet-stream or something unknown: decide from the bytes
    if binary:
        return "unsupported"
    if suffix in _HTML_SUFFIXES:
        return "html"
    if not body or _decodes_as_text(body[:65536]):
        return "text"
    return "unsupported"


def _decodes_as_text(sample: bytes) -> bool:
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason.startswith("unexpected end"):
            return True  # the sample cut a character in two
    # not UTF-8: text in a legacy charset is mostly printable ASCII
    printable = len(sample) - len(sample.translate(None, _PRINTABLE_ASCII))
    return printable >= len(sample) * 0.7


# ---------------------------------------------------------------------------
# Charsets

# WHATWG-style aliases: labels browsers treat as a larger codec.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "x-user-defined": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "iso-8859-9": "cp1254",
    "big5": "big5hkscs",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}
_UNSAFE_CODECS = {"utf-7", "utf_7"}
_META_CHARSET = re.compile(rb"<meta\b[^>]{0,512}?charset\s*=\s*[\"']?\s*([a-z0-9_.:\-]+)", re.I)
_XML_ENCODING = re.compile(rb"^\s*<\?xml\b[^>]{0,200}?encoding\s*=\s*[\"']([a-z0-9_.:\-]+)", re.I)
_XML_DECL_TEXT = re.compile(r"^\s*<\?xml\b[^>]*\?>", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _codec(label: str | None, *, in_document: bool = False) -> str | None:
    """A Python text codec name for a charset label, or None if unusable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:  # base64, rot13, zlib...
        return None
    if in_document and info.name.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a document that can declare itself in ASCII is not UTF-16
    return info.name


def _mostly_utf8(body: bytes) -> bool:
    """Valid UTF-8 with a few broken bytes (truncation, one bad paste) rather than another charset."""
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    good = non_ascii - bad - body.count(b"\xef\xbf\xbd")
    return good > 0 and good >= 2 * bad


def _detect(body: bytes) -> str | None:
    """charset-normalizer's guess, leaning to windows-1252 when that is as plausible."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    sample = body if len(body) <= 2_000_000 else body[:2_000_000]
    try:
        matches = list(from_bytes(sample))
    except Exception:  # the detector must never take extraction down
        return None
    if not matches:
        return None
    best = matches[0]
    for match in matches:
        if _codec(match.encoding) == "cp1252" and match.chaos <= best.chaos + 0.1:
            return "cp1252"
    return _codec(best.encoding)


def decode_bytes(body: bytes, header_charset: str | None = None, *, html: bool = False) -> tuple[str, str]:
    """Decode without ever failing: BOM, header charset, in-document declaration, UTF-8, detection.

    Returns (text, codec name). ``body`` is not modified.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            if name == "utf-8":
                return body[len(bom):].decode("utf-8", errors="replace"), name
            return body.decode(name, errors="replace"), name  # these codecs consume their BOM
    declared: list[str] = []
    codec = _codec(header_charset)
    if codec and codec.startswith(("utf-16", "utf-32")) and b"\x00" not in body[:4096]:
        codec = "utf-8"  # UTF-16 text without a BOM is full of NULs; this is ASCII-based
    if codec:
        declared.append(codec)
    if html:
        head = body[:16384]
        match = _XML_ENCODING.match(head) or _META_CHARSET.search(head)
        codec = _codec(match.group(1).decode("ascii", "ignore"), in_document=True) if match else None
        if codec and codec not in declared:
            declared.append(codec)
    for name in declared:
        try:
            return body.decode(name), name
        except UnicodeDecodeError:
            pass
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(body):
        return body.decode("utf-8", errors="replace"), "utf-8"
    # a declared legacy charset with a handful of stray bytes still beats a guess
    for name in declared:
        if name == "utf-8":
            continue
        text = body.decode(name, errors="replace")
        if text.count("\ufffd") <= max(3, len(body) // 2000):
            return text, name
    guess = _detect(body)
    if guess:
        return body.decode(guess, errors="replace"), guess
    return body.decode("cp1252", errors="replace"), "cp1252"


# ---------------------------------------------------------------------------
# HTML

_SKIP_TAGS = ("script", "style", "noscript", "template", "nav", "head", "svg", "math", "iframe", "object",
              "embed", "canvas", "select", "button")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body dd details dialog div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr html li main ol p pre section summary table tbody tfoot thead tr ul "
    "caption center".split()
)
_TITLE_RE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")  # runs to one space; single spaces untouched (fast)
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


def _squeeze(line: str) -> str:
    """Whitespace runs to one space, trimmed (the check first: most lines need nothing)."""
    if line.isprintable() and "  " not in line:
        return line.strip()
    return _SPACES.sub(" ", line).strip()


def _clean_line_text(text: str) -> str:
    lines = (_squeeze(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _html_title(text: str) -> str | None:
    match = _TITLE_RE.search(text, 0, 1_000_000)
    if not match:
        return None
    title = _SPACES.sub(" ", _html.unescape(match.group(1))).strip()
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
    return _clean_line_text("".join(parts))


def _trafilatura():
    """Import trafilatura once, muting its per-page log lines: rq reports problems in Extracted."""
    import logging

    import trafilatura

    for name in ("trafilatura", "htmldate", "courlan"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)
    return trafilatura


def _extract_html(body: bytes, content_type: str | None, url: str) -> Extracted:
    _, header_charset = _parse_content_type(content_type)
    text, charset = decode_bytes(body, header_charset, html=True)
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
            main = _clean_line_text(doc.text or "")
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
    if not main:
        return _problem("html", "no_text", "no readable text in the page", title=title, author=author, date=date,
                        charset=charset)
    return Extracted("html", main, title, author, date, None, charset, None, "")


# ---------------------------------------------------------------------------
# PDF

_PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe
# pdfium marks a word it hyphenated at a line end with U+FFFE (older builds: U+0002)
_PDF_MARKS = re.compile(r"[\ufffe\x02\u00ad]")
_PDF_SOFT_BREAK = re.compile(r"([^\s\ufffe\x02\u00ad]*)[\ufffe\x02\u00ad]\s*")
_PDF_LINE_HYPHEN = re.compile(r"(?:^|[^\w-])[a-z]{2,}-$")
_PDF_CONTROL_KEEP_MARKS = re.compile(r"[\x00\x01\x03-\x08\x0b\x0c\x0e-\x1f\x7f\uffff]")
_PDF_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\u00ad]")
_SENTENCE_END = tuple(".!?:;\"')]”’")
_BULLETS = tuple("•◦▪▫‣∙·●○■□➢►–")


def _join_soft_break(match: re.Match) -> str:
    word = match.group(1)
    return word + "-" if "-" in word else word  # "state-of-the|art" keeps its hyphen, "represen|tation" does not


def _clean_pdf_page(raw: str) -> str:
    """One page's text with hyphenation undone and wrapped lines joined into paragraphs."""
    text = _PDF_CONTROL_KEEP_MARKS.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    # a line may hold several printed lines glued at soft hyphens; what matters for
    # paragraph ends is the printed width, so measure the pieces
    lines = []
    for line in text.split("\n"):
        line = _squeeze(line)
        last = _PDF_MARKS.split(line)[-1].strip()
        lines.append((line, len(last)))
    lengths = sorted(n for line, _ in lines for piece in _PDF_MARKS.split(line) for n in [len(piece.strip())] if n)
    if not lengths:
        return ""
    width = lengths[int(len(lengths) * 0.8)] if len(lengths) > 4 else lengths[-1]
    paragraphs: list[str] = []
    current = ""
    for line, last_width in lines:
        if not line:
            if current:
                paragraphs.append(current)
                current = ""
            continue
        if current and line.startswith(_BULLETS):
            paragraphs.append(current)
            current = ""
        if not current:
            current = line
        elif _PDF_LINE_HYPHEN.search(current) and line[:1].islower():
            current = current[:-1] + line  # "exam-" + "ple" (pdfium did not mark it)
        else:
            current = current + " " + line
        if last_width < 0.5 * width or (last_width < 0.8 * width and line.endswith(_SENTENCE_END)):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    cleaned = []
    for paragraph in paragraphs:
        paragraph = _PDF_SOFT_BREAK.sub(_join_soft_break, paragraph)
        paragraph = _SPACES.sub(" ", _PDF_CONTROL.sub("", paragraph)).strip()
        if paragraph:
            cleaned.append(paragraph)
    return "\n".join(cleaned)


def _pdf_date(value: str | None) -> str | None:
    match = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?", (value or "").strip())
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    if not (1900 <= int(year) <= 2200):
        return None
    if month and 1 <= int(month) <= 12:
        if day and 1 <= int(day) <= 31:
            return f"{year}-{month}-{day}"
        return f"{year}-{month}"
    return year


def _pdf_meta_text(value) -> str | None:
    if not value:
        return None
    value = _SPACES.sub(" ", _PDF_CONTROL.sub("", str(value))).strip()
    if not value or value.lower() in ("untitled", "unknown", "title", "author", "anonymous"):
        return None
    if re.search(r"\.(?:dvi|pdf|docx?|tex|indd|ps)$", value, re.I) or value.lower().startswith("microsoft word"):
        return None
    return value[:500]


def _largest_font_title(textpage) -> str | None:
    """The words set in the largest upright font on a page (a paper's title), if any.

    A word belongs to the title when its first letter is in that size, which keeps
    small-caps titles whole and stops at the author line.
    """
    import math

    import pypdfium2.raw as pdfium_c

    handle = textpage.raw
    count = min(pdfium_c.FPDFText_CountChars(handle), 20000)
    chars: list[tuple[str, float]] = []
    for index in range(count):
        code = pdfium_c.FPDFText_GetUnicode(handle, index)
        try:
            char = chr(code)
        except (ValueError, OverflowError):
            continue
        angle = pdfium_c.FPDFText_GetCharAngle(handle, index)
        if angle > 0.05 and abs(angle - 2 * math.pi) > 0.05:
            continue  # rotated text: margin stamps such as arXiv's
        size = pdfium_c.FPDFText_GetFontSize(handle, index) if not char.isspace() else 0.0
        chars.append((char, size))
    letter_sizes = [round(size, 1) for char, size in chars if char.isalnum() and size > 0]
    if not letter_sizes:
        return None
    top = max(letter_sizes)
    body = max(set(letter_sizes), key=letter_sizes.count)
    if top < body + 1.0:
        return None  # no display font on this page

    words: list[list[tuple[str, float]]] = [[]]
    for char, size in chars:
        if char.isspace() or char in "\ufffe\x02":
            if words[-1]:
                words.append([])
        else:
            words[-1].append((char, size))

    def lead_size(word):
        return next((size for char, size in word if char.isalnum()), None)

    title: list[str] = []
    for word in words:
        if not word:
            continue
        size = lead_size(word)
        if size is not None and abs(size - top) <= 0.5:
            title.append("".join(char for char, _ in word))
        elif size is None and title:
            title.append("".join(char for char, _ in word))
        elif title:
            break
    text = " ".join(title).strip()
    letters = sum(char.isalpha() for char in text)
    if letters < 4 or len(text) > 300:
        return None
    return text


def _first_line_title(text: str) -> str | None:
    for line in text.replace("\r", "\n").split("\n"):
        line = _SPACES.sub(" ", _PDF_CONTROL.sub("", line)).strip()
        if len(line) >= 3:
            if len(line) > 200:
                cut = line.rfind(" ", 0, 200)
                line = line[: cut if cut > 50 else 200]
            return line
    return None


def _extract_pdf(body: bytes, max_pages: int) -> Extracted:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(body)
        except pdfium.PdfiumError as exc:
            reason = str(exc)
            if "password" in reason.lower():
                return _problem("pdf", "bad_pdf", "the PDF is encrypted with a password")
            return _problem("pdf", "bad_pdf", f"cannot open the PDF ({reason.rstrip('.')})")
        try:
            total = len(pdf)
            wanted = total if not max_pages or max_pages <= 0 else min(total, max_pages)  # <= 0: no limit
            texts: list[str] = []
            font_title = first_line = None
            for index in range(wanted):
                try:
                    page = pdf[index]
                except pdfium.PdfiumError:
                    texts.append("")
                    continue
                try:
                    textpage = page.get_textpage()
                    try:
                        raw = textpage.get_text_range()
                        texts.append(_clean_pdf_page(raw))
                        if index == 0:
                            first_line = _first_line_title(raw)
                            try:
                                font_title = _largest_font_title(textpage)
                            except Exception:  # a heuristic only
                                font_title = None
                    finally:
                        textpage.close()
                finally:
                    page.close()
            try:
                meta = pdf.get_metadata_dict()
            except Exception:
                meta = {}
        finally:
            pdf.close()
    text = "\n\n".join(t for t in texts if t)
    title = _pdf_meta_text(meta.get("Title")) or font_title or first_line
    author = _pdf_meta_text(meta.get("Author"))
    date = _pdf_date(meta.get("CreationDate")) or _pdf_date(meta.get("ModDate"))
    fields = dict(title=title, author=author, date=date, pages=wanted)
    if total == 0:
        return _problem("pdf", "bad_pdf", "the PDF has no pages", **fields)
    if not text:
        return _problem("pdf", "no_text", f"no text layer in {wanted} page(s) (a scan?)", **fields)
    if total > wanted:
        return Extracted("pdf", text, title, author, date, wanted, None, "too_many_pages",
                         f"the PDF has {total} pages; read the first {wanted} (pdf_max_pages)")
    return Extracted("pdf", text, title, author, date, wanted, None, None, "")


# ---------------------------------------------------------------------------
# Plain text

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def _extract_text(body: bytes, content_type: str | None) -> Extracted:
    _, header_charset = _parse_content_type(content_type)
    text, charset = decode_bytes(body, header_charset)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = None
    for line in text.split("\n", 200)[:200]:
        match = _MD_HEADING.match(line)
        if match:
            title = match.group(1)[:500]
            break
    if not text.strip():
        return _problem("text", "no_text", "the document is empty", charset=charset)
    return Extracted("text", text, title, None, None, None, charset, None, "")


# ---------------------------------------------------------------------------
# Entry points


def _extract(body: bytes, content_type: str | None, url: str, pdf_max_pages: int) -> Extracted:
    kind = sniff_kind(body, content_type, url)
    try:
        if kind == "pdf":
            return _extract_pdf(body, pdf_max_pages)
        if kind == "html":
            return _extract_html(body, content_type, url)
        if kind == "text":
            return _extract_text(body, content_type)
    except MemoryError:
        return _problem(kind, "too_much_memory", "ran out of memory while extracting")
    except RecursionError:
        return _problem(kind, "crashed", "the document is nested too deeply to extract")
    except Exception as exc:  # a parser bug must not take the whole ingest down
        return _problem(kind, "crashed", f"extraction failed: {type(exc).__name__}: {exc}"[:300])
    mime, _ = _parse_content_type(content_type)
    what = mime or "the body"
    return _problem("unsupported", "not_text", f"{what} is not a text, HTML or PDF document")


def extract(body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
    """Main text and metadata of one fetched document, in this process."""
    return _extract(bytes(body), content_type, url or "", settings.pdf_max_pages)


# ---------------------------------------------------------------------------
# Isolation: reusable child processes

_WARM_UP_PAGE = (
    "<html><head><title>warm up</title><meta name='author' content='A. Writer'>"
    "<meta property='article:published_time' content='2020-01-02'></head><body><nav>home</nav><article>"
    + "<p>This paragraph only loads the extraction code before the first real document arrives.</p>" * 6
    + "</article><footer>footer</footer></body></html>"
)


def _set_memory_limit(memory_mb: int | None) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = resource.RLIM_INFINITY if not memory_mb or memory_mb <= 0 else int(memory_mb) * 1024 * 1024
    if hard != resource.RLIM_INFINITY and (want == resource.RLIM_INFINITY or want > hard):
        want = hard
    if want != soft:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        except (ValueError, OSError):  # some platforms (macOS) refuse address-space limits
            pass


def _proc_status_bytes(field: bytes) -> int | None:
    """A size from /proc/self/status (VmPeak: peak address space, VmRSS: resident now); None off Linux."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(field + b":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


_RETIRE_RSS = 1024 * 1024 * 1024  # a worker that grew past this (no limit set) is replaced


def _watch_parent(parent_pid: int) -> None:
    """Leave when the parent is gone (killed before it could close our pipe)."""
    import time

    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_entry() -> None:
    """Child process main: fd 0 brings (document...) tuples, fd 1 takes results back.

    The protocol descriptors are moved aside so that a library printing to stdout
    cannot corrupt the stream.
    """
    import signal
    import sys
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; it kills us
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    parent = int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _worker_loop(inbox, outbox)


def _worker_loop(inbox, outbox) -> None:
    try:
        _extract(_WARM_UP_PAGE.encode(), "text/html", "https://example.org/warm-up", 1)
        import pypdfium2  # noqa: F401
    except Exception:
        pass
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        body, content_type, url, pdf_max_pages, memory_mb = message
        del message
        limit = int(memory_mb) * 1024 * 1024 if memory_mb and memory_mb > 0 else None
        over = f"the extraction went over the {memory_mb} MB memory limit"
        _set_memory_limit(memory_mb)
        try:
            result = _extract(body, content_type, url, pdf_max_pages)
        except MemoryError:
            result = _problem(sniff_kind(body, content_type, url), "too_much_memory", over)
        del body
        peak = _proc_status_bytes(b"VmPeak") if limit else None
        if peak is not None and peak >= 0.9 * limit and result.problem in ("no_text", "crashed"):
            result = _problem(result.kind, "too_much_memory", over)  # a parser gave up quietly at the limit
        elif result.problem == "too_much_memory":
            result = _problem(result.kind, "too_much_memory", over)
        # Leave after a memory failure, or once grown big: the next document then gets a
        # fresh process (no leftovers, and VmPeak above stays about one document).
        if limit:
            retire = result.problem == "too_much_memory" or (peak is not None and peak >= 0.6 * limit)
        else:
            rss = _proc_status_bytes(b"VmRSS")
            retire = rss is not None and rss > _RETIRE_RSS
        _set_memory_limit(0)  # room to pickle the answer
        outbox.send(("retire" if retire else "done", result))
        if retire:
            return


_WORKER_CODE = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from rq.extract.core import _worker_entry; _worker_entry()"
)


class _Worker:
    """One child process started with ``python -c`` (no re-import of the caller's __main__)."""

    def __init__(self) -> None:
        self.process = None
        self.inbox = None  # we read results here
        self.outbox = None  # we send documents here
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive else None

    def start(self, startup_timeout: float) -> None:
        import json
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        self.kill()
        command = [sys.executable, "-c", _WORKER_CODE, json.dumps(sys.path), str(os.getpid())]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True
        )
        self.starts += 1
        self.process = process
        self.outbox = Connection(os.dup(process.stdin.fileno()), readable=False)
        self.inbox = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        try:
            ready = self.inbox.poll(startup_timeout) and self.inbox.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self.kill()
            raise RuntimeError(f"the extraction process did not start ({_exit_detail(code)})")

    def kill(self) -> int | None:
        """Stop the process now; returns its exit status if there was one."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            try:
                code = self.process.wait(10)
            except Exception:  # pragma: no cover - a process that survives SIGKILL
                code = None
        for conn in (self.inbox, self.outbox):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self.process = self.inbox = self.outbox = None
        return code

    def stop(self) -> None:
        if self.alive:
            try:
                self.outbox.send(None)
                self.process.wait(2)
            except Exception:
                pass
        self.kill()


def _exit_detail(code: int | None) -> str:
    if code is None:
        return "the extraction process died"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the extraction process died ({name})"
    return f"the extraction process exited with code {code}"


class ExtractorPool:
    """Up to ``size`` long-lived extraction processes, each started on first use and
    restarted only after it was killed (timeout) or died (crash, memory).

    Thread-safe: each call borrows one idle worker, waiting while all are busy.
    Use as a context manager or call ``close()`` to stop the processes.
    """

    def __init__(self, size: int = 1, startup_timeout: float = 120.0):
        if size < 1:
            raise ValueError("an ExtractorPool needs at least one worker")
        self.size = size
        self.startup_timeout = startup_timeout
        self._workers = [_Worker() for _ in range(size)]
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in reversed(self._workers):
            self._idle.put(worker)

    def __enter__(self) -> "ExtractorPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def starts(self) -> int:
        """Processes started so far (first starts and restarts)."""
        return sum(w.starts for w in self._workers)

    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [pid for pid in (w.pid for w in self._workers) if pid is not None]

    def extract(self, body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
        worker = self._idle.get()
        try:
            return self._run(worker, bytes(body), content_type, url or "", settings)
        except BaseException:
            worker.kill()  # interrupted half-way: the worker's state is unknown
            raise
        finally:
            self._idle.put(worker)

    def _run(self, worker: _Worker, body: bytes, content_type, url: str, settings: Settings) -> Extracted:
        kind = sniff_kind(body, content_type, url)
        message = (body, content_type, url, settings.pdf_max_pages, settings.extract_memory_mb)
        for attempt in (1, 2):
            if not worker.alive:
                try:
                    worker.start(self.startup_timeout)
                except (RuntimeError, OSError) as exc:
                    return _problem(kind, "crashed", f"cannot run the extraction process: {exc}")
            try:
                worker.outbox.send(message)
                break
            except (OSError, EOFError, ValueError):  # it died while idle: one fresh start
                worker.kill()
                if attempt == 2:
                    return _problem(kind, "crashed", "cannot send the document to the extraction process")
        del message
        timeout = settings.extract_timeout
        try:
            ready = worker.inbox.poll(timeout if timeout and timeout > 0 else None)
        except (OSError, EOFError):
            ready = True  # recv below reports the death
        if not ready:
            worker.kill()
            return _problem(kind, "timeout", f"extraction took longer than {timeout:g} s and was stopped")
        try:
            status, result = worker.inbox.recv()
        except (OSError, EOFError):
            code = worker.kill()
            return _problem(kind, "crashed", _exit_detail(code))
        if status == "retire":
            worker.kill()  # it is leaving anyway; reap it now so the next call starts a fresh one
        return result

    def close(self) -> None:
        """Stop every worker. The pool stays usable: workers start again on demand."""
        for worker in self._workers:
            worker.stop()


_default_pool: ExtractorPool | None = None
_default_lock = threading.Lock()


def _pool() -> ExtractorPool:
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = ExtractorPool(size=max(1, min(2, os.cpu_count() or 1)))
            atexit.register(close)
        return _default_pool


def extract_isolated(body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
    """Like ``extract`` but in a reusable child process with settings.extract_timeout and
    settings.extract_memory_mb; a crash, timeout or memory blow-up marks only this document."""
    return _pool().extract(body, content_type, url, settings)


def close() -> None:
    """Stop the default pool's worker processes (they restart if extract_isolated is called again)."""
    with _default_lock:
        pool = _default_pool
    if pool is not None:
        pool.close()
