"""A matched passage as a person sees it: trimmed, without its title line, query words marked."""

from __future__ import annotations

import re

from rq.words import STOPWORDS, tokens


def query_terms(query: str) -> list[str]:
    return [t for t in tokens(query) if t not in STOPWORDS]


def highlight_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Spans of words in ``text`` that start with a query term (so "recsys" marks "RecSys's")."""
    if not terms:
        return []
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
                         + r")[\w\-]*", re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]


def display_passage(text: str, source: str, max_chars: int = 360) -> str:
    """The passage without its title line (already shown), trimmed to a readable length."""
    if "\n" in text:
        text = text.split("\n", 1)[1]  # the title line, shown already
    if source == "meta":
        text = "\n".join(line for line in text.split("\n") if not line.startswith("Section: "))
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"
