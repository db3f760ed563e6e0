"""How alike two versions of a page's text are: Jaccard similarity of word 3-shingles.

Numbers and month names are left out, so a new date or view count does not make a page
"changed"; the soft-404 sibling check also leaves out the words of each page's own address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from rq.words import words

SHINGLE = 3
_MONTHS = frozenset("january february march april may june july august september october november december "
                    "jan feb mar apr jun jul aug sep sept oct nov dec".split())


def comparable_words(text: str, ignore: frozenset[str] = frozenset()) -> list[str]:
    """The text's words without numbers, month names (a new date is not a change) or ``ignore``."""
    return [w for w in words(text) if not any(c.isdigit() for c in w) and w not in _MONTHS and w not in ignore]


def shingles(tokens: list[str], k: int = SHINGLE) -> set[tuple[str, ...]]:
    if len(tokens) < k:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def similarity(a: str, b: str, ignore_a: frozenset[str] = frozenset(),
               ignore_b: frozenset[str] = frozenset()) -> float:
    """Jaccard similarity of the two texts' word 3-shingles (1.0: same words in the same order)."""
    sa, sb = shingles(comparable_words(a, ignore_a)), shingles(comparable_words(b, ignore_b))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def path_words(url: str) -> frozenset[str]:
    """The words of a URL's path: an error page that echoes the address it was asked for
    differs from its sibling's only in these."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return frozenset()
    return frozenset(words(f"{parts.path} {parts.query}"))
