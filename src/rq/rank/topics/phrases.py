"""Terms that can name a topic: single words and phrases of two or three, cut from text.

A phrase is a run of consecutive content words: punctuation, line ends and stopwords end
it, so "Feature stores for real-time ML, explained" gives the runs "Feature stores" and
"real-time ML" and from them the terms "feature store", "real time", "time ml", "real time
ml", "feature", "store" and "ml" (a cheap stand-in for noun phrases that needs no tagger). A
word counts if it is not a stopword (rq.words, contractions included), not a piece of a URL
or file name, not a number, and has three letters or more, or two capitals ("ML", "AI").
Words that never name a topic alone ("time", "large") may still sit in a phrase; words that
neither start nor end one ("using", "better") may sit only inside it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from rq.words import STOPWORDS, WORD

# Besides rq's stopwords (rq.words), words that say nothing about a topic in a reading list.
TOPICLESS = frozenset("""
    also could would via vs versus using use used within without towards toward across per etc eg ie
    one two three new part get got make makes made way ways thing things introduction intro guide
    overview notes note example examples list awesome
""".split())
NAMING_STOPWORDS = STOPWORDS | TOPICLESS
# Pieces of URLs and file names that survive in notes and titles.
URL_JUNK = frozenset("""
    http https www com org net io html htm pdf php aspx md abs doi arxiv github githubusercontent
    medium blogspot readthedocs wordpress youtube youtu be watch index en
""".split())
# Never the first or last word of a term (nor a term alone): "using PyTorch" names nothing
# "PyTorch" does not.
EDGE_WORDS = frozenset("""
    go goes going get gets getting got make making build building built run running learn
    learned learnt lessons lesson take taking work working works help helps helping start starting
    see seen look looking find finding found want need needs know think said says say like just
    really actually better best good great easy easier simple simpler hard harder difficult first
    last next many much lot lots every various several different important
    part parts way ways year years day days today now people thing things stuff case cases
    introducing introduction explained dive
""".split())
# Never a term alone, but good in a phrase ("real time", "time series", "large language model").
NOT_ALONE = frozenset("""
    time times real large small big high low based open source end results result data model models
    system systems learning machine deep engineering approach approaches method methods problem
    problems question questions answer answers paper papers post posts blog article articles talk
    video videos course courses book books code project projects tool tools team teams company
    world life energy design
""".split()) | EDGE_WORDS
MAX_WORDS = 3
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
# What ends a run of words: punctuation other than an in-word hyphen or apostrophe, and line ends.
_BREAK = re.compile(r"[\n\r\t.,;:!?()\[\]{}<>\"“”‘’|/\\=+*#@~^&%$]|\s[-–—]+\s|\s'|'\s|--+")


@dataclass
class Vocabulary:
    """Surface forms seen for each term key, and the plural-to-singular folding of words."""
    fold: dict[str, str] = field(default_factory=dict)
    forms: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def display(self, key: str) -> str:
        """A term as people write it: acronyms and inner capitals kept ("GPU", "PyTorch"), else lower case."""
        words = []
        for i, word in enumerate(key.split()):
            seen = self.forms.get(word)
            if not seen:
                words.append(word)
                continue
            # Capitalised first letters only say a title was in Title Case; inner capitals mean it.
            marked = sum(n for form, n in seen.items() if any(c.isupper() for c in form[1:]))
            if marked * 2 > sum(seen.values()):
                words.append(max((f for f in seen if any(c.isupper() for c in f[1:])), key=seen.__getitem__))
            else:
                words.append(word)
        return " ".join(words)


def runs(text: str) -> list[list[str]]:
    """The runs of content words in ``text``, each word as written (case kept)."""
    found = []
    for piece in _BREAK.split(_URL.sub(" . ", text)):
        current: list[str] = []
        for word in WORD.findall(piece):
            if _counts(word):
                current.append(word)
            else:
                if current:
                    found.append(current)
                current = []
        if current:
            found.append(current)
    return found


def _counts(word: str) -> bool:
    low = word.lower()
    if low in NAMING_STOPWORDS or low in URL_JUNK or not word[0].isalpha():
        return False
    return len(word) >= 3 or (len(word) == 2 and word.isupper())


def terms_of(text: str, vocab: Vocabulary | None = None) -> set[str]:
    """The term keys (lower case, plurals folded where ``vocab`` knows the singular) in ``text``."""
    found = set()
    for run in runs(text):
        low = [w.lower() for w in run]
        if vocab is not None:
            low = [vocab.fold.get(w, w) for w in low]
        for n in range(1, MAX_WORDS + 1):
            for start in range(len(low) - n + 1):
                gram = low[start:start + n]
                if gram[0] in EDGE_WORDS or gram[-1] in EDGE_WORDS or (n == 1 and gram[0] in NOT_ALONE):
                    continue
                if n > 1 and len(set(gram)) < n:
                    continue  # "data data"
                found.add(" ".join(gram))
    return found


def vocabulary(texts: list[str]) -> Vocabulary:
    """Fold plural words into a singular that also occurs ("stores" -> "store", "queries" ->
    "query"), and record how each word is written."""
    vocab = Vocabulary()
    seen: Counter = Counter()
    for text in texts:
        for run in runs(text):
            for word in run:
                seen[word.lower()] += 1
                vocab.forms[word.lower()][word] += 1
    for w in seen:
        if len(w) > 3 and w.endswith("ies") and w[:-3] + "y" in seen:
            vocab.fold[w] = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss") and w[:-1] in seen:
            vocab.fold[w] = w[:-1]
    for plural, singular in vocab.fold.items():
        vocab.forms[singular].update(vocab.forms[plural])
    return vocab


def stem(word: str) -> str:
    """A crude stem: whether two names say the same thing, whether a heading's word is in a title."""
    for suffix in ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word
