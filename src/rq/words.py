"""Words: the one tokenizer and stopword list every part of rq uses.

The keyword index, search highlights, cluster names, the soft-404 wording check and
change detection all cut text into words here, so a word means the same thing
everywhere. Two views of the same scan:

* ``tokens``: lower-cased tokens with identifiers kept whole (``pd.read_parquet``,
  ``real-time``, ``don't``), for the keyword index and queries;
* ``words``: the plain words inside those tokens (``pd``, ``read``, ``parquet``,
  ``real``, ``time``, ``don``, ``t``), for comparing and naming texts.
"""

from __future__ import annotations

import re

# A token: letters/digits, optionally joined by _ . - ' into one identifier.
TOKEN = re.compile(r"\w+(?:[._\-']\w+)*")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A plain word: letters and digits only (underscores split words, as in snake_case names).
WORD = re.compile(r"[^\W_]+")

# English function words: pronouns, determiners, prepositions, conjunctions, auxiliaries and
# the pieces contractions leave ("don't" is the token "don't", or the words "don" and "t").
# They carry no topic, so the keyword index does not score them, highlights skip them and
# cluster names never use them.
STOPWORDS = frozenset("""
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves
    what which who whom this that these those
    a an the and but if or because as until while of at by for with about against between into
    through during before after above below to from up down in out on off over under
    again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very
    am is are was were be been being have has had having do does did doing
    can will just should now
    s t d ll m o re ve y ma ain
    aren couldn didn doesn don hadn hasn haven isn mightn mustn needn shan shouldn wasn weren won wouldn
    aren't couldn't didn't doesn't don't hadn't hasn't haven't isn't mightn't mustn't needn't shan't
    shouldn't wasn't weren't won't wouldn't
    it's she's that'll should've you'd you'll you're you've
""".split())


def scrub(text: str) -> str:
    """Text that came from outside, safe to store, tokenize and print: bytes that were not UTF-8
    (which Python carries as lone surrogates, e.g. in command-line arguments) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def tokens(text: str) -> list[str]:
    """Lower-cased tokens of ``text``, identifiers kept whole."""
    return TOKEN.findall(text.lower())


def words(text: str) -> list[str]:
    """Lower-cased plain words of ``text`` (letters and digits; any other character splits)."""
    return WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Words that say what a text is about: no stopwords, no numbers."""
    return [w for w in words(text) if w not in STOPWORDS and not w.isdigit()]
