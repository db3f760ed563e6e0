"""The snippet a search hit shows: the sentences of its page that carry the query's words,
trimmed to MAX_CHARS, " … " where text was left out, the query's words marked.

A sentence is scored by the query's terms as the keyword index sees them (its tokenizer, so
stems match: "routing" marks "routed"), each weighted by BM25's idf from the index itself, a
repeated word counting with BM25's saturation. The best sentence is shown, then sentences
that add query words not shown yet, then the sentences around them while room is left. The
sentences come from the passage the ranker chose and its two neighbours on the page, so a
statement cut where one passage ends is whole in the other. When none of the query's words
occurs (a match by meaning alone) the chosen passage's opening sentences are shown.

Meaning per sentence (the query vector against a vector per sentence) is not used: encoding
the ~80 sentences of ten hits' passages took 1.8 s on the 2-core machine (benchmarks/RESULTS.md,
"Snippets"), against 50 ms for a whole warm search.

A hit whose chosen passage is the queue's note (the "meta" passage) but whose page text is
archived shows the page instead: its passage with the best BM25 score for the query, else
its first passage. Text extracted before rq.extract.clean existed may still hold arXiv
stamps and reference lists; stamps are cut here and citation-like sentences come last.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from rq.rank.passages import passage_body
from rq.words import TOKEN

MAX_CHARS = 300
FEW_PASSAGES = 8  # a page of no more passages is searched for its best one here, not in the index
SKIP = " … "
K1, B, AVERAGE_WORDS = 1.2, 0.5, 25.0  # BM25's saturation over a sentence of about average length

# The same form as rq.extract.clean.ARXIV_STAMP (rank may not import extract): text archived
# before that cleaning existed still has the stamp inside a sentence.
_STAMP = re.compile(r"arXiv:(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\s*"
                    r"\[[A-Za-z\-]+(?:\.[A-Za-z\-]+)?\]\s*\d{1,2}\s*[A-Z][a-z]{2}\s*\d{4}\s*")
_END = re.compile(r"[.!?…][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_NO_END = frozenset("e.g i.e al cf vs etc fig figs eq eqs no nos ref refs approx dr mr mrs ms prof st sec"
                    " vol pp ca resp inc ltd jr sr tab".split())
# A reference list cut into sentences: "Devlin, J., Chang, M. 2019." "BERT: pre-training of deep
# bidirectional transformers." "In Proceedings of NAACL." A sentence with one of these marks is a
# citation, and so is one between two citations (an entry's title).
_CITE_MARKS = ("In Proceedings", "Proceedings of", "arXiv preprint", "CoRR", "abs/", "Journal of", "Conference on",
               " pp. ")
_CITE_START = re.compile(r"\s*(?:\[\d{1,3}\]\s+[A-Z]|(?:1[89]|20)\d\d[a-z]?\.$|"
                         r"[A-Z][\w'’\-]+, (?:[A-Z]\.|[A-Z][\w'’\-]+ [A-Z][\w'’\-]+,))")
_CITE_HINTS = ("Proceedings", "arXiv", "CoRR", "Journal", "Conference", "pp.", "] ", "., ", ".; ")


def _citation(sentence: str) -> bool:
    return any(mark in sentence for mark in _CITE_MARKS) or _CITE_START.match(sentence) is not None


_LETTERS = re.compile(r"[^\W\d_]{2,}")
_PLAIN = re.compile(r"[^\W_]+")  # a term that is one plain word (else a name: "pd.read_parquet", "real-time")
_HYPHENED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")  # words joined by hyphens: "real-time", its parts are words


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: list[tuple[int, int]]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``: a stop, then space, then a capital or a digit,
    except after an abbreviation ("et al.", "Fig.") or an initial ("J. Smith")."""
    spans, start = [], 0
    for match in _END.finditer(text):
        stop = match.start()
        if text[stop] == ".":
            word = text[max(start, text.rfind(" ", start, stop) + 1):stop].lower().rstrip(".")
            if word in _NO_END or (len(word) == 1 and word.isalpha()):
                continue
        spans.append((start, match.start() + len(match.group().rstrip())))
        start = match.end()
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return [(a, b) for a, b in spans if b > a]


def _not_prose(sentence: str) -> bool:
    """A run of table cells or figure labels: fewer words of letters than half its words."""
    return len(_LETTERS.findall(sentence)) < max(3, (sentence.count(" ") + 1) // 2)


def _mark_citations(sentences: list["_Sentence"]) -> None:
    cites = [_citation(s.text) for s in sentences]
    for i, sentence in enumerate(sentences):
        if cites[i] or (any(cites[max(0, i - 2):i]) and any(cites[i + 1:i + 3])):
            sentence._junk = True


class _Sentence:
    __slots__ = ("text", "terms", "score", "_junk")

    def __init__(self, text: str, terms: Counter, score: float):
        self.text, self.terms, self.score, self._junk = text, terms, score, None

    @property
    def junk(self) -> bool:
        """A citation (see _mark_citations) or not prose: shown only when nothing else matches."""
        if self._junk is None:
            self._junk = _not_prose(self.text)
        return self._junk


class SnippetPicker:
    """Picks and marks the sentences of a page that best carry one query's words."""

    def __init__(self, query: str, tokenize: Callable[[str], list[str]], weights: dict[str, float] | None = None):
        self.tokenize = tokenize
        terms = list(dict.fromkeys(tokenize(query)))
        self.weights = {t: (weights or {}).get(t, 1.0) for t in terms}
        # Marked: every term but the pieces of a name ("pd" and "v2" of "pd.read_v2"): they score
        # a sentence as they score a passage, but a lone "pd" in the text is not what was asked.
        self.marked = {t for word in TOKEN.findall(query.lower()) for t in tokenize(word)
                       if _HYPHENED.fullmatch(word) or not _PLAIN.fullmatch(t) or t == word or _PLAIN.fullmatch(word)}
        self._found: dict[str, tuple[str, ...]] = {}  # a word -> the query terms it is
        # Where a query term can be: a word that starts with the term less its last letter (a
        # stem is its word's start, but for a final y that became i), or a name such as
        # "pd.read_parquet" written out. Only those words are tokenized: stemming every word of
        # ten hits' passages would cost milliseconds.
        names = sorted((t for t in terms if not _PLAIN.fullmatch(t)), key=len, reverse=True)
        starts = sorted({re.escape(t[:max(3, len(t) - 1)]) for t in terms if _PLAIN.fullmatch(t)})
        # One look-behind first: inside a word the search moves on at once.
        pattern = "|".join(([f"(?:{'|'.join(re.escape(n) for n in names)})(?!\\w)"] if names else [])
                           + ([f"(?:{'|'.join(starts)})[^\\W_]*"] if starts else []))
        self._words = re.compile(rf"(?<![^\W_])(?:{pattern})") if pattern else None

    def _terms_at(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, query terms) of each word of ``text`` that is one of the query's terms."""
        if self._words is None:
            return []
        out = []
        for match in self._words.finditer(text.lower()):
            word = match.group()
            found = self._found.get(word)
            if found is None:
                found = self._found[word] = tuple(t for t in self.tokenize(word) if t in self.weights)
            if found:
                out.append((match.start(), match.end(), found))
        return out

    @classmethod
    def for_index(cls, query: str, keywords) -> "SnippetPicker":
        """Weighted as the keyword index weighs the query's words (``rq.index.keyword.KeywordIndex``)."""
        return cls(query, keywords.tokenizer, term_weights(query, keywords))

    # -- one hit

    def pick(self, passages: Sequence[str], focus: int = 0, max_chars: int = MAX_CHARS) -> Snippet:
        """The snippet for passage ``passages[focus]`` of a page, its neighbours in ``passages``
        (in page order, passages overlapping by a few sentences, titles already removed)."""
        sentences, first_of_focus = self._sentences(passages, focus)
        if not sentences:
            return Snippet("", [])
        best = max(range(len(sentences)), key=lambda i: (sentences[i].score, -abs(i - first_of_focus)))
        if sentences[best].score <= 0:
            chosen = self._opening(sentences, first_of_focus, max_chars)
        else:
            chosen = self._matching(sentences, best, max_chars)
        if len(chosen) == 1 and len(sentences[chosen[0]].text) > max_chars:
            text = self._clip(sentences[chosen[0]].text, max_chars, chosen[0] > 0, chosen[0] < len(sentences) - 1)
        else:
            text = _render([s.text for s in sentences], sorted(chosen))
        return Snippet(text, self.highlights(text))

    def score(self, text: str) -> float:
        """How well ``text`` as a whole carries the query's words (as a sentence is scored)."""
        return self._score(Counter(t for _, _, terms in self._terms_at(text) for t in terms), text.count(" ") + 1)

    def highlights(self, text: str) -> list[tuple[int, int]]:
        """Spans of the words of ``text`` that are one of the query's terms."""
        return [(a, b) for a, b, terms in self._terms_at(text) if self.marked.intersection(terms)]

    # -- internals

    def _sentences(self, passages: Sequence[str], focus: int) -> tuple[list[_Sentence], int]:
        out: list[_Sentence] = []
        seen: set[str] = set()
        first_of_focus = 0
        for index, passage in enumerate(passages):
            if "arXiv:" in passage:
                passage = _STAMP.sub("", passage)
            if "\n" in passage or "  " in passage:
                passage = " ".join(passage.split())
            if index == focus:
                first_of_focus = len(out)
            found = self._terms_at(passage)
            where = [a for a, _, _ in found]
            for a, b in sentence_spans(passage):
                text = passage[a:b]
                # Passages overlap: a sentence (or the tail of one) is already there.
                if text in seen or (out and index != 0 and a == 0 and out[-1].text.endswith(text)):
                    continue
                seen.add(text)
                sentence = _Sentence(text, Counter(), 0.0)
                at = bisect_left(where, a)
                while at < len(found) and found[at][0] < b:
                    sentence.terms.update(found[at][2])
                    at += 1
                if sentence.terms:
                    sentence.score = self._score(sentence.terms, text.count(" ") + 1)
                out.append(sentence)
        if any(hint in p for p in passages for hint in _CITE_HINTS):  # maybe archived with its references
            _mark_citations(out)
        for sentence in out:
            if sentence.score and sentence.junk:
                sentence.score *= 0.1
        return out, min(first_of_focus, max(0, len(out) - 1))

    def _score(self, terms: Counter, words: int) -> float:
        norm = K1 * (1 - B + B * words / AVERAGE_WORDS)
        return sum(self.weights[t] * n * (K1 + 1) / (n + norm) for t, n in terms.items())

    def _matching(self, sentences: list[_Sentence], best: int, max_chars: int) -> list[int]:
        """The best sentence, the next best that add query words, then their neighbours."""
        chosen = [best]
        covered = set(sentences[best].terms)
        ranked = sorted(range(len(sentences)), key=lambda i: -sentences[i].score)
        for i in ranked:
            if sentences[i].score <= 0:
                break
            new = set(sentences[i].terms) - covered
            if i in chosen or not new or not _fits(sentences, chosen + [i], max_chars):
                continue
            chosen.append(i)
            covered |= new
        return _grow(sentences, chosen, max_chars)

    def _opening(self, sentences: list[_Sentence], first: int, max_chars: int) -> list[int]:
        """No query word anywhere: the chosen passage's first sentences that read as prose."""
        start = next((i for i in range(first, len(sentences)) if not sentences[i].junk), first)
        return _grow(sentences, [start], max_chars, back=False)

    def _clip(self, sentence: str, max_chars: int, before: bool, after: bool) -> str:
        """A window of one long sentence around its densest run of query words, cut at spaces."""
        room = max_chars - 4
        found = self._terms_at(sentence)
        start = 0
        if found:
            def weight(at: int) -> float:
                inside = {t for a, b, terms in found if at <= a and b <= at + room for t in terms}
                return sum(self.weights.get(t, 0.0) for t in inside)

            starts = [max(0, a - 40) for a, _, _ in found]
            start = max(starts, key=lambda at: (weight(at), -at))
            if start:
                cut = sentence.find(" ", start)
                start = cut + 1 if 0 <= cut < start + 40 else start
        end = start + room
        if end < len(sentence):
            cut = sentence.rfind(" ", start, end)
            end = cut if cut > start else end
        else:
            end = len(sentence)
        text = sentence[start:end].strip()
        return ("… " if before or start else "") + text + (" …" if after or end < len(sentence) else "")


def _render(texts: list[str], chosen: list[int]) -> str:
    out = "… " if chosen[0] > 0 else ""
    for k, i in enumerate(chosen):
        if k:
            out += " " if i == chosen[k - 1] + 1 else SKIP
        out += texts[i]
    return out + (" …" if chosen[-1] < len(texts) - 1 else "")


def _fits(sentences: list[_Sentence], chosen: list[int], max_chars: int) -> bool:
    return len(_render([s.text for s in sentences], sorted(chosen))) <= max_chars


def _grow(sentences: list[_Sentence], chosen: list[int], max_chars: int, back: bool = True) -> list[int]:
    """Add the sentences right after (and, with ``back``, before) the chosen ones while they fit."""
    grew = True
    while grew:
        grew = False
        for i in sorted(chosen, key=lambda i: -sentences[i].score):
            for j in (i + 1, i - 1) if back else (i + 1,):
                if 0 <= j < len(sentences) and j not in chosen and not sentences[j].junk \
                        and _fits(sentences, chosen + [j], max_chars):
                    chosen = chosen + [j]
                    grew = True
    return chosen


def term_weights(query: str, keywords) -> dict[str, float]:
    """BM25's idf of each of the query's terms in the keyword index, ln(1 + (N - df + 0.5) / (df + 0.5)),
    df from the index's postings (``KeywordIndex.document_frequency``)."""
    total = len(keywords)
    return {t: math.log1p((total - df + 0.5) / (df + 0.5))
            for t in dict.fromkeys(keywords.tokenizer(query)) for df in [keywords.document_frequency(t)]}


def hit_snippets(archive, loaded, query: str, hits: Sequence[tuple[int, int, bool]],
                 around: int = 1) -> list[tuple[Snippet, str]]:
    """Each hit's snippet and where it came from ("text": the page, "meta": the queue's note).

    ``hits`` are (the resource's row in ``loaded.resource_ids``, the passage the ranker chose,
    whether the page's text is archived). A chosen note gives way to the page's text when there
    is some: the page passage with the best BM25 score for the query, else its first one. The
    sentences come from that passage and ``around`` passages on each side of it."""
    picker = SnippetPicker.for_index(query, loaded.keywords)
    focus = [int(passage) for _, passage, _ in hits]
    rows = archive.passages_by_id(focus)
    matched = None
    for k, (resource_row, passage, has_text) in enumerate(hits):
        row = rows.get(int(passage))
        if row is None or row["source"] != "meta" or not has_text:
            continue
        ids = np.flatnonzero(loaded.owner == resource_row)
        ids = ids[ids != passage]
        if 0 < len(ids) <= FEW_PASSAGES:  # scored here: cheaper than asking the index
            texts = archive.passages_by_id(ids.tolist())
            focus[k] = int(max(ids.tolist(), key=lambda i: (picker.score(passage_body(texts[i]["text"], "text")), -i)))
        elif len(ids):
            if matched is None:  # every passage holding a query word, best BM25 first
                matched = loaded.keywords.search(query, len(loaded.keywords))[0]
            best = matched[np.isin(matched, ids)]
            focus[k] = int(best[0] if len(best) else ids.min())  # else the page's first passage
    rows = archive.passages_by_id(sorted({i + d for i in focus for d in range(-around, around + 1) if i + d >= 0}))
    out: list[tuple[Snippet, str]] = []
    for passage in focus:
        row = rows.get(passage)
        if row is None:
            out.append((Snippet("", []), "meta"))
        elif row["source"] != "text":
            out.append((picker.pick([passage_body(row["text"], row["source"])]), row["source"]))
        else:
            near = [r for r in (rows.get(i) for i in range(passage - around, passage + around + 1)) if r is not None
                    and r["resource_id"] == row["resource_id"] and r["source"] == "text"]
            out.append((picker.pick([passage_body(r["text"], "text") for r in near], near.index(row)), "text"))
    return out
