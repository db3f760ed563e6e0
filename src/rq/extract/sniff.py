"""What the bytes are: ``sniff_kind`` says "html", "pdf", "text" or "unsupported",
trusting magic numbers and markup over the served Content-Type (binary bytes served as
text/html are "unsupported"); ``parse_content_type`` splits a Content-Type header into
its MIME type and charset.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

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


def parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """(MIME type lower-cased, charset or None) of a Content-Type header; ("", None) when absent."""
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


def _looks_binary(body: bytes, charset: str | None = None) -> bool:
    sample = body[:8192]
    if not sample:
        return False
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text has NULs
        return False
    if charset and charset.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return False  # NULs are what this text is made of; the charset check decides after decoding
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
    mime, charset = parse_content_type(content_type)
    suffix = _url_suffix(url)
    if mime == "application/pdf":
        return "pdf"  # says PDF, has no PDF header: reported as bad_pdf
    binary = _looks_binary(body, charset)
    if mime in _HTML_MIMES or mime.endswith("+xml"):
        return "unsupported" if binary else "html"  # bytes with NULs served as HTML are not a page
    plain_declared = mime in _PLAIN_MIMES or suffix in _TEXT_SUFFIXES
    if not plain_declared and _WEAK_HTML_START.match(head.lstrip()):
        return "html"
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


def declares_text(content_type: str | None) -> bool:
    """Whether the served type says the body is text (HTML, XML, plain text, JSON...)."""
    mime, _ = parse_content_type(content_type)
    return (mime.startswith("text/") or mime in _HTML_MIMES or mime in _TEXT_APP_MIMES
            or mime.endswith(("+xml", "+json", "+yaml")))


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
