"""What extraction returns: the ``Extracted`` document, the problems it can carry, and
``problem()`` to build a document that carries one.

Nothing here raises for a bad document: a problem ("no_text", "not_text",
"too_many_pages", "timeout", "crashed", "too_much_memory", "bad_pdf") comes back in
``Extracted.problem`` with one human line in ``Extracted.detail``.
"""

from __future__ import annotations

from dataclasses import dataclass

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



def problem(kind: str, problem: str, detail: str, **fields) -> Extracted:
    """An Extracted of ``kind`` that carries ``problem``; ``fields`` fill in what is known."""
    base = dict(text="", title=None, author=None, date=None, pages=None, charset=None)
    base.update(fields)
    return Extracted(kind=kind, problem=problem, detail=detail, **base)
