"""The queue file's bytes as text and back, in the file's own encoding.

A queue is usually UTF-8, but Windows editors still save cp1252, old files are Latin-1,
and some tools write UTF-16. The file is decoded by its byte-order mark, else as BOM-less
UTF-16 (a NUL in every other byte), else as UTF-8, else as the charset a detector
guesses, else as cp1252 when it fits exactly, else as Latin-1 (which never fails). Every
choice is checked to give back the very same bytes when encoded again, so `rq done` can
rewrite the file in its own encoding and change only the box, and no decoded text carries
surrogates (they cannot be stored or printed).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import NamedTuple

from rq.errors import QueueError

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BINARY_SIGNATURES = (b"%PDF-", b"\x89PNG", b"PK\x03\x04", b"\x1f\x8b", b"GIF8", b"\xff\xd8\xff")
_SNIFF_BYTES = 8192
# cp1252 is what a Markdown file that is not UTF-8 almost always is (Windows editors), and a
# detector reading a few accented letters cannot tell it from its neighbours: it wins unless
# the detector's own pick reads clearly cleaner.
_WESTERN = "cp1252"
_WESTERN_MARGIN = 0.1
_UNSAFE = {"utf-7"}  # decodes "+...-" runs of plain ASCII into other characters
_LAST_RESORT = "latin-1"  # one character per byte, every byte: always decodes, always round-trips


class Decoded(NamedTuple):
    text: str
    encoding: str  # a Python codec name; with bom_of(raw, encoding) it gives the bytes back
    note: str | None  # how the file was read, when that was not plain UTF-8


def decode_queue(raw: bytes, path: Path | None = None) -> Decoded:
    """The queue file's text, its encoding, and a note when it is not UTF-8. Refuses only
    bytes that are plainly not a text file."""
    head = raw[:_SNIFF_BYTES]
    if head.startswith(_BINARY_SIGNATURES):
        raise QueueError("not a Markdown file (binary content)", path)
    by_bom = _by_bom(raw)
    if by_bom is not None:
        return by_bom
    utf16 = _bomless_utf16(raw)  # first: ASCII in UTF-16 is valid UTF-8, NULs and all
    if utf16 is not None:
        return utf16
    text = _exact(raw, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", None)
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and controls / len(head) > 0.1:
        raise QueueError("not a Markdown file (binary content)", path)
    guessed = _guess(raw)
    if guessed is not None:
        text = _exact(raw, guessed)
        if text is not None:
            return Decoded(text, guessed, f"read as {guessed} (not UTF-8; guessed from its bytes, "
                                          "save it as UTF-8 to be sure)")
    # The detector gives up on text with a few control characters in it (an ANSI escape
    # pasted from a terminal); cp1252 still reads it exactly unless one of its five
    # undefined bytes occurs, and it reads 0x80-0x9f as the quotes and dashes they are.
    text = _exact(raw, _WESTERN)
    if text is not None:
        return Decoded(text, _WESTERN, f"read as {_WESTERN} (not UTF-8, and no charset was "
                                       "clearly likelier; save it as UTF-8 to be sure)")
    return Decoded(raw.decode(_LAST_RESORT), _LAST_RESORT,
                   "read as latin-1 (not UTF-8, and no other encoding fits; some characters may show wrong)")


def bom_of(raw: bytes, encoding: str) -> bytes:
    """The byte-order mark ``raw`` starts with, when it is the mark of ``encoding``."""
    for bom, name in _BOMS:
        if name == encoding and raw.startswith(bom):
            return bom
    return b""


def encode_queue(text: str, raw: bytes, encoding: str) -> bytes:
    """``text`` as bytes in the encoding (and with the byte-order mark) of the file ``raw``."""
    return bom_of(raw, encoding) + text.encode(encoding)


def decode_as(raw: bytes, encoding: str) -> str:
    """``raw`` read in an encoding found before (its byte-order mark dropped); raises
    UnicodeError when the bytes are not that encoding."""
    return raw[len(bom_of(raw, encoding)):].decode(encoding)


def _by_bom(raw: bytes) -> Decoded | None:
    for bom, name in _BOMS:
        if raw.startswith(bom):
            text = _exact(raw[len(bom):], name)
            if text is not None:
                note = None if name == "utf-8" else f"read as {name} (byte-order mark; not UTF-8)"
                return Decoded(text, name, note)
    return None  # a mark followed by bytes that are not that encoding: read it as bytes of another


def _bomless_utf16(raw: bytes) -> Decoded | None:
    """UTF-16 without a byte-order mark: mostly-ASCII text has a NUL in every other byte,
    at odd offsets (little-endian) or even ones (big-endian)."""
    head = raw[:_SNIFF_BYTES]
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    for nuls, others, name in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if nuls > 0.4 * pairs and others < 0.05 * pairs:
            text = _exact(raw, name)
            if text is not None:
                return Decoded(text, name, f"read as {name} (no byte-order mark; not UTF-8)")
    return None


def _guess(raw: bytes) -> str | None:
    """The charset a detector finds likeliest, cp1252 preferred on a near tie."""
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(raw).best()
        western = from_bytes(raw, cp_isolation=[_WESTERN]).best()
    except Exception:  # noqa: BLE001 - a detector's failure only means no guess; Latin-1 follows
        return None
    if western is not None and (best is None or western.chaos <= best.chaos + _WESTERN_MARGIN):
        return _WESTERN
    if best is None:
        return None
    try:
        name = codecs.lookup(best.encoding).name
    except LookupError:
        return None
    return None if name in _UNSAFE else name


def _exact(raw: bytes, encoding: str) -> str | None:
    """``raw`` decoded strictly, only when encoding the text again gives ``raw`` back."""
    try:
        text = raw.decode(encoding)
        if text.encode(encoding) != raw:
            return None
    except (UnicodeError, LookupError):
        return None
    return text
