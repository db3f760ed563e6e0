"""Plain text documents (text/plain, Markdown, reStructuredText...): ``extract_text``,
and the whitespace clean-up that HTML and PDF text share (``squeeze``, ``clean_lines``).
"""

from __future__ import annotations

import re

from rq.extract.charset import decode_bytes
from rq.extract.clean import drop_reference_lists
from rq.extract.document import Extracted, problem
from rq.extract.sniff import parse_content_type

SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")  # runs to one space; single spaces untouched (fast)


def squeeze(line: str) -> str:
    """Whitespace runs to one space, trimmed (the check first: most lines need nothing)."""
    if line.isprintable() and "  " not in line:
        return line.strip()
    return SPACES.sub(" ", line).strip()


def clean_lines(text: str) -> str:
    lines = (squeeze(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# What text hardly ever holds: C0 and C1 controls (but tab, newlines, form feed and ESC), bytes
# that did not decode (U+FFFD), lone surrogates and private-use code points. Binary data decoded
# as text is full of them (about 13% for random bytes through windows-1252 or UTF-16).
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd"
                       "\U000f0000-\U0010ffff]")
NOT_TEXT_SHARE = 0.1  # of the characters; a real page with a few broken bytes stays far below
_NOT_TEXT_SAMPLE = 200_000


def binary_as_text(text: str) -> str | None:
    """Why decoded ``text`` is really binary data, or None when it reads as text."""
    sample = text[:_NOT_TEXT_SAMPLE]
    bad = len(sample) - len(_NOT_TEXT.sub("", sample))
    if bad >= 32 and bad > len(sample) * NOT_TEXT_SHARE:
        return (f"binary data, not text: {bad} of its first {len(sample)} characters are control characters "
                "or bytes that do not decode")
    return None


_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def extract_text(body: bytes, content_type: str | None) -> Extracted:
    _, header_charset = parse_content_type(content_type)
    text, charset = decode_bytes(body, header_charset)
    garbage = binary_as_text(text)
    if garbage:
        return problem("text", "not_text", garbage, charset=charset)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = None
    for line in text.split("\n", 200)[:200]:
        match = _MD_HEADING.match(line)
        if match:
            title = match.group(1)[:500]
            break
    if not text.strip():
        return problem("text", "no_text", "the document is empty", charset=charset)
    return Extracted("text", drop_reference_lists(text), title, None, None, None, charset, None, "")
