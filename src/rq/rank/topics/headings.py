"""What a section heading says: a topic, a kind of document, or a catch-all; and its words in a title."""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Sequence

from rq.rank.topics.phrases import NAMING_STOPWORDS, TOPICLESS
from rq.words import content_words, words


# Headings that name a kind of document rather than a topic, when first or last word:
# "Blog Posts", "MLOps Articles", "Talks about MLOps". Plurals only (mostly): singulars
# start topics too ("Link prediction", "Video understanding", "Post-training quantization").
_FORMAT_WORDS = frozenset("""
    articles blog blogs blogpost blogposts posts papers preprints videos talks lectures slides
    podcasts books courses tutorials newsletters links bookmarks threads tweets websites
    resources
""".split())
# Catch-all headings: every word is one of these (or a format word): "Misc", "Other stuff",
# "Further reading"; but "Other Representation Learning" is a topic.
_CATCHALL_WORDS = frozenset("""
    misc miscellaneous unsorted uncategorized uncategorised other others general stuff various
    random todo inbox later more things awesome list lists reading readings further extra
    assorted everything else table contents contributing contribute contributors license
    acknowledgements acknowledgments changelog
""".split())


def heading_text(path: tuple[str, ...]) -> str:
    """The text to embed for a section's heading vector: its own heading, without parents."""
    return path[-1] if path else ""


def format_reason(heading: str) -> str | None:
    """Why a heading names a kind of document or a catch-all rather than a topic, if it does."""
    tokens = [t for t in words(heading)
              if t.isalpha() and (t not in NAMING_STOPWORDS or t in _FORMAT_WORDS or t in _CATCHALL_WORDS)]
    if not tokens:
        return None
    # The head noun is first ("Talks about MLOps") or last ("MLOps Articles").
    for word in (tokens[0], tokens[-1]):
        if word in _FORMAT_WORDS:
            return f"named for a format ({word!r})"
    if all(t in _CATCHALL_WORDS or t in _FORMAT_WORDS for t in tokens):
        return f"named as a catch-all ({heading.strip()!r})"
    return None


def word_weights(texts: Sequence[str]) -> Callable[[str], float]:
    """How much a heading word found in an item says, by how rare its stem is among ``texts``:
    log((n + 1) / (texts holding it + 1)). A word in every title says nothing; a word in one
    title of 500 weighs ~5.5; a word in half of them ~0.7 ("learning" in an ML list)."""
    held = Counter(w for text in texts for w in {_stem(t) for t in _content_words(text)})
    n = len(texts)
    return lambda stem: math.log((n + 1) / (held.get(stem, 0) + 1))


def lexical_match(heading: str, title: str, weight: Callable[[str], float] | None = None) -> tuple[float, str]:
    """Share of the heading's content words found in the title, and what matched.

    Short headings embed poorly against titles full of jargon ("Recommender Systems"
    vs "Real Time Recsys"), so exact words, and abbreviations built from the leading
    letters of consecutive words ("oop", "recsys", "nlp"), count as evidence either way round.
    With ``weight`` (word_weights) each heading word counts by the weight of its stem, so a
    common word the heading shares with a title ("learning" in "Reinforcement Learning" and
    "Real Time Machine Learning") covers little of it; words of weight 0 are no evidence.
    """
    head = _content_words(heading)
    text = _content_words(title)
    if not head or not text:
        return 0.0, ""
    weights = [weight(_stem(w)) if weight else 1.0 for w in head]
    total = sum(weights)
    if total <= 0:
        return 0.0, ""
    covered: set[int] = set()
    evidence = []
    stems = {_stem(w) for w in text}
    for j, w in enumerate(head):
        if _stem(w) in stems:
            covered.add(j)
            evidence.append(w)
    for token in set(text):
        span = abbreviates(token, head)
        if span and not set(range(*span)) <= covered:
            covered.update(range(*span))
            evidence.append(f"{token} = {' '.join(head[span[0]:span[1]])}")
    for token in set(head):
        span = abbreviates(token, text)
        if span:
            covered.add(head.index(token))
            evidence.append(f"{token} = {' '.join(text[span[0]:span[1]])}")
    if not any(weights[j] > 0 for j in covered):
        return 0.0, ""
    return sum(weights[j] for j in covered) / total, ", ".join(dict.fromkeys(evidence))


def _content_words(text: str) -> list[str]:
    return [w for w in content_words(text) if w not in TOPICLESS]


def _stem(word: str) -> str:
    for suffix in ("ing", "ers", "es", "er", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def abbreviates(token: str, phrase: list[str]) -> tuple[int, int] | None:
    """(start, end) of >= 2 consecutive phrase words whose prefixes spell ``token``, if any."""
    if len(token) < 2 or token in phrase:
        return None
    for start in range(len(phrase)):
        end = _spell(token, phrase, start)
        if end is not None and end - start >= 2:
            return start, end
    return None


def _spell(token: str, phrase: list[str], at: int) -> int | None:
    """Index after the last word used if ``token`` = prefixes of phrase[at], phrase[at+1], ..."""
    if not token:
        return at
    if at >= len(phrase):
        return None
    word = phrase[at]
    # Longest prefix first: "recsys" is "rec"+"sys" before it is "r"+"ecsys".
    for cut in range(min(len(word), len(token)), 0, -1):
        if token[:cut] == word[:cut]:
            end = _spell(token[cut:], phrase, at + 1)
            if end is not None:
                return end
    return None
