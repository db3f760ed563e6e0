"""Plain text documents (text/plain, Markdown, reStructuredText...): ``extract_text``,
and the whitespace clean-up that HTML and PDF text share (``squeeze``, ``clean_lines``).
"""

from __future__ import annotations

import re

from rq.extract.charset import decode_bytes
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


_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def extract_text(body: bytes, content_type: str | None) -> Extracted:
    _, header_charset = parse_content_type(content_type)
    text, charset = decode_bytes(body, header_charset)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = None
    for line in text.split("\n", 200)[:200]:
        match = _MD_HEADING.match(line)
        if match:
            title = match.group(1)[:500]
            break
    if not text.strip():
        return problem("text", "no_text", "the document is empty", charset=charset)
    return Extracted("text", text, title, None, None, None, charset, None, "")
