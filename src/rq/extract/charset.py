"""Charsets: ``decode_bytes`` turns bytes into text without ever failing (BOM, the
header's charset, the document's own declaration, UTF-8, then detection), reading each
charset label as the Python codec a browser would use for it.

charset-normalizer is imported inside ``_detect``, only when it is needed.
"""

from __future__ import annotations

import codecs
import re

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

