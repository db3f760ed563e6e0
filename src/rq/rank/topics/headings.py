"""What a section heading says: a topic, a kind of document, or a catch-all; and its words in a title."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from functools import lru_cache
from itertools import product
from typing import Callable, Sequence

from rq.rank.topics.phrases import NAMING_STOPWORDS, TOPICLESS, stem
from rq.words import WORD, content_words, words


ABBREVIATION_SPAN = 4  # an abbreviation spells at most this many consecutive words ...
ABBREVIATION_PREFIX = 4  # ... from the first 1 to 4 letters of each, or all of it ("recsys", "oop")
SHORTENED_MAX = 4  # a heading word this short may be an abbreviation; longer ones need 2+ capitals

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
    held = Counter(w for text in texts for w in {stem(t) for t in _content_words(text)})
    return _rarity(held, len(texts))


def _rarity(held: Counter, n: int) -> Callable[[str], float]:
    return lambda word_stem: math.log((n + 1) / (held.get(word_stem, 0) + 1))


def lexical_match(heading: str, title: str, weight: Callable[[str], float] | None = None) -> tuple[float, str]:
    """Share of the heading's content words found in the title, and what matched.

    Short headings embed poorly against titles full of jargon ("Recommender Systems"
    vs "Real Time Recsys"), so exact words, and abbreviations built from the leading
    letters of consecutive words ("oop", "recsys", "nlp"), count as evidence either way round
    (a heading word as an abbreviation only where it looks like one: see _shortened).
    With ``weight`` (word_weights) each heading word counts by the weight of its stem, so a
    common word the heading shares with a title ("learning" in "Reinforcement Learning" and
    "Real Time Machine Learning") covers little of it; words of weight 0 are no evidence.
    """
    head = _content_words(heading)
    text = _content_words(title)
    if not head or not text:
        return 0.0, ""
    weights = [weight(stem(w)) if weight else 1.0 for w in head]
    shortened = _shortened(heading)
    return _cover(head, text, {stem(w) for w in text}, weights,
                  lambda token: abbreviates(token, text) if token in shortened else None)


class WordIndex:
    """lexical_match of one heading against many texts at once, looking only at the texts that
    share a word stem with the heading or could spell or be spelled by it (inverted indexes), so
    a 10,000-item queue with hundreds of headings costs seconds, not minutes."""

    def __init__(self, texts: Sequence[str]):
        self.words = [_content_words(t) for t in texts]
        self.stems = [{stem(w) for w in ws} for ws in self.words]
        self._by_stem: dict[str, set[int]] = defaultdict(set)
        self._by_word: dict[str, set[int]] = defaultdict(set)
        # Two consecutive words, as (the first's first 1-4 letters or all of it, the next one's first
        # letter): where a token may spell the words.
        self._by_start: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._spelled: dict[str, set[int]] = {}
        for i, ws in enumerate(self.words):
            for s in self.stems[i]:
                self._by_stem[s].add(i)
            for w in ws:
                self._by_word[w].add(i)
            for a, b in zip(ws, ws[1:]):
                for part in _prefixes(a):
                    self._by_start[part, b[0]].add(i)
        self.weight = _rarity(Counter({s: len(ix) for s, ix in self._by_stem.items()}), len(texts))

    def _spelling(self, token: str) -> set[int]:
        """The items with words the token spells (abbreviates(token, words))."""
        if token not in self._spelled:
            # Two consecutive words must start as the token does, the second one where the first part ends.
            pool = set().union(*(self._by_start.get((token[:k], token[k]), set()) for k in range(1, len(token))))
            self._spelled[token] = {i for i in pool if abbreviates(token, self.words[i])}
        return self._spelled[token]

    def matches(self, heading: str, above: float = 0.0) -> dict[int, tuple[float, str]]:
        """Item -> (coverage, evidence) as lexical_match(heading, text, word_weights(texts)) gives
        it, for every item where the coverage is above ``above``."""
        head = _content_words(heading)
        if not head:
            return {}
        weights = [self.weight(stem(w)) for w in head]
        total = sum(weights)
        if total <= 0:
            return {}
        by_stems: Counter = Counter()  # item -> weight of the heading words its stems cover
        for w, weight in zip(head, weights):
            for i in self._by_stem.get(stem(w), ()):
                by_stems[i] += weight
        spelled = {token: self._spelling(token) for token in _shortened(heading) & set(head)}
        maybe = set().union(*spelled.values())
        for token in abbreviations(tuple(head)):
            maybe |= self._by_word.get(token, set())
        # Items with no abbreviation either way cover what their stems cover, no more.
        found = maybe | {i for i, covered in by_stems.items() if covered / total > above}
        out = {}
        for i in found:
            text = self.words[i]
            coverage, evidence = _cover(head, text, self.stems[i], weights,
                                        lambda token, i=i, text=text: abbreviates(token, text)
                                        if i in spelled.get(token, ()) else None)
            if coverage > above:
                out[i] = (coverage, evidence)
        return out


def _shortened(heading: str) -> set[str]:
    """The heading's words that may stand for several words of an item: short ones ("nlp", "rl")
    and ones written with two capitals or more ("MLOps", "RecSys"), not plain words ("search")."""
    return {w.lower() for w in WORD.findall(heading)
            if len(w) <= SHORTENED_MAX or sum(c.isupper() for c in w) >= 2}


def _cover(head: list[str], text: list[str], stems: set[str], weights: list[float],
           spelled_by_head: Callable[[str], tuple[int, int] | None]) -> tuple[float, str]:
    total = sum(weights)
    if total <= 0:
        return 0.0, ""
    covered: set[int] = set()
    evidence = []
    for j, w in enumerate(head):
        if stem(w) in stems:
            covered.add(j)
            evidence.append(w)
    spelling = abbreviations(tuple(head))
    for token in dict.fromkeys(text):
        span = spelling.get(token)
        if span and not set(range(*span)) <= covered:
            covered.update(range(*span))
            evidence.append(f"{token} = {' '.join(head[span[0]:span[1]])}")
    for token in dict.fromkeys(head):
        span = spelled_by_head(token)
        if span:
            covered.add(head.index(token))
            evidence.append(f"{token} = {' '.join(text[span[0]:span[1]])}")
    if not any(weights[j] > 0 for j in covered):
        return 0.0, ""
    return sum(weights[j] for j in covered) / total, ", ".join(dict.fromkeys(evidence))


def _content_words(text: str) -> list[str]:
    return [w for w in content_words(text) if w not in TOPICLESS]


def abbreviates(token: str, phrase: list[str]) -> tuple[int, int] | None:
    """(start, end) of the first 2 to ABBREVIATION_SPAN consecutive phrase words whose prefixes
    (1 to ABBREVIATION_PREFIX letters, or the whole word) spell ``token``, if any."""
    if len(token) < 2 or token in phrase:
        return None
    for start in range(len(phrase)):
        if phrase[start][0] != token[0]:
            continue
        for end in range(start + 2, min(len(phrase), start + ABBREVIATION_SPAN) + 1):
            if _spells(token, phrase[start:end]):
                return start, end
    return None


@lru_cache(maxsize=4096)
def abbreviations(phrase: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Every token abbreviates() finds in ``phrase``, with the span it gives."""
    found: dict[str, tuple[int, int]] = {}
    for start in range(len(phrase)):
        for end in range(start + 2, min(len(phrase), start + ABBREVIATION_SPAN) + 1):
            for parts in product(*(_prefixes(w) for w in phrase[start:end])):
                token = "".join(parts)
                if token not in found and token not in phrase:
                    found[token] = (start, end)
    return found


def _prefixes(word: str) -> list[str]:
    return list(dict.fromkeys([word[:k] for k in range(1, min(len(word), ABBREVIATION_PREFIX) + 1)] + [word]))


def _spells(token: str, words: list[str]) -> bool:
    """Whether ``token`` is a prefix of each of ``words`` in turn (1 to ABBREVIATION_PREFIX letters
    or the whole word), and nothing more."""
    if not words:
        return not token
    word = words[0]
    same = 0
    while same < min(len(token), len(word)) and token[same] == word[same]:
        same += 1
    cuts = list(range(min(same, ABBREVIATION_PREFIX), 0, -1))
    if same == len(word) and len(word) > ABBREVIATION_PREFIX:
        cuts.insert(0, len(word))
    return any(_spells(token[cut:], words[1:]) for cut in cuts)
