"""Split a resource's text into passages that fit the embedding model's window.

Passages break at paragraph, then sentence, boundaries; a sentence longer than
the window is cut by words. Each passage starts with the resource title on its
own line: the title is often the most informative text a resource has, and a
passage cut from the middle of a page says little without it. For the
WordPiece tokenizer a newline is plain whitespace, so "title\\npassage" embeds
exactly like BEIR's "title + ' ' + text" while staying easy to strip for display.

Budgets are in words (cheap, no tokenizer needed). Pass ``count_pieces`` (for
instance ``Embedder.count_pieces``) and ``max_pieces`` to also guarantee the
model's window in word pieces: scientific prose runs at ~1.6 pieces per word,
so a word budget alone overflows a 256-piece window on dense text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

PieceCounter = Callable[[Sequence[str]], Sequence[int]]

# The title may take at most this share of a passage budget, so a page with an
# absurdly long title still gets room for its text.
_TITLE_SHARE = 3

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
# A sentence ends at . ! or ? (maybe followed by closing quotes or brackets) and whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
# Words before a full stop that do not end a sentence (the lower-cased form is compared).
_ABBREVIATIONS = frozenset(
    "e.g i.e al cf vs etc fig figs eq eqs no nos ref refs approx dr mr mrs ms prof st sec"
    " vol pp p ca resp inc ltd jr sr".split()
)


def passage_hash(text: str) -> str:
    """Key of a passage's embedding in the cache (together with the model id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Unit:
    """A sentence (or a piece of an over-long one), with its size in both budgets."""

    words: list[str]
    pieces: int
    paragraph: int


def split_passages(
    title: str,
    text: str,
    max_words: int,
    overlap_words: int,
    *,
    count_pieces: PieceCounter | None = None,
    max_pieces: int | None = None,
) -> list[str]:
    """Cut ``text`` into passages of at most ``max_words`` words, title included.

    Consecutive passages of one paragraph share up to ``overlap_words`` words
    (whole trailing sentences when they fit, else the last words) so that a
    statement cut in two is still whole in one passage. With ``count_pieces``
    (a batch function: texts -> word-piece counts, special tokens excluded)
    and ``max_pieces``, no passage exceeds ``max_pieces`` word pieces either.
    Empty text gives []; the caller decides what stands in for it.
    """
    if max_words < 2:
        raise ValueError("max_words must be at least 2")
    overlap_words = max(0, min(overlap_words, max_words // 2))
    if not text or not text.strip():
        return []
    use_pieces = count_pieces is not None and max_pieces is not None
    title_words = title.split()[: max(1, max_words // _TITLE_SHARE)] if title.strip() else []
    title_line = " ".join(title_words)
    title_pieces = _count(count_pieces, [title_line])[0] if use_pieces and title_line else 0
    if use_pieces and title_pieces > max_pieces // _TITLE_SHARE:
        title_words, title_pieces = _shorten(title_words, max_pieces // _TITLE_SHARE, count_pieces)
        title_line = " ".join(title_words)
    word_budget = max_words - len(title_words)
    piece_budget = (max_pieces - title_pieces) if use_pieces else None

    units = _units(text, word_budget, piece_budget, overlap_words, count_pieces if use_pieces else None)
    bodies = _pack(units, word_budget, piece_budget, overlap_words, count_pieces if use_pieces else None)
    prefix = f"{title_line}\n" if title_line else ""
    return [prefix + " ".join(words) for words in bodies]


def _count(count_pieces: PieceCounter | None, texts: Sequence[str]) -> list[int]:
    if count_pieces is None:
        return [0] * len(texts)
    return [int(n) for n in count_pieces(list(texts))]


def _shorten(words: list[str], budget: int, count_pieces: PieceCounter) -> tuple[list[str], int]:
    """Longest prefix of ``words`` within ``budget`` pieces (WordPiece counts add up per word)."""
    sizes = _count(count_pieces, words)
    kept, total = [], 0
    for word, size in zip(words, sizes):
        if total + size > budget:
            break
        kept.append(word)
        total += size
    return kept, total


def _sentences(paragraph: str) -> list[str]:
    """Split one paragraph at sentence ends; single newlines also end a sentence."""
    out: list[str] = []
    for line in paragraph.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            before = line[start : match.start()].rsplit(None, 1)
            last = before[-1].lower().rstrip(".") if before else ""
            # "et al." or "J. Smith": a full stop that does not end the sentence.
            if line[match.start()] == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
                continue
            out.append(line[start : match.end()])
            start = match.end()
        out.append(line[start:])
    return [s for s in (s.strip() for s in out) if s]


def _units(text: str, word_budget: int, piece_budget: int | None, overlap_words: int,
           count_pieces: PieceCounter | None) -> list[_Unit]:
    """Sentences of every paragraph, over-long ones cut by words to fit a passage alone."""
    # Cuts of an over-long sentence leave room for the overlap, so consecutive cuts overlap too.
    cut_words = max(1, word_budget - overlap_words)
    cut_pieces = None if piece_budget is None else max(1, piece_budget * cut_words // word_budget)
    tagged = [
        (index, sentence)
        for index, paragraph in enumerate(_PARAGRAPH_BREAK.split(text.strip()))
        for sentence in _sentences(paragraph)
    ]
    sizes = _count(count_pieces, [s for _, s in tagged])
    units: list[_Unit] = []
    for (paragraph, sentence), pieces in zip(tagged, sizes):
        words = sentence.split()
        if len(words) <= word_budget and (piece_budget is None or pieces <= piece_budget):
            units.append(_Unit(words, pieces, paragraph))
        else:
            units.extend(_hard_split(words, paragraph, cut_words, cut_pieces, count_pieces))
    return units


def _hard_split(words: list[str], paragraph: int, word_budget: int, piece_budget: int | None,
                count_pieces: PieceCounter | None) -> list[_Unit]:
    sizes = _count(count_pieces, words)
    out: list[_Unit] = []
    current: list[str] = []
    pieces = 0
    for word, size in zip(words, sizes):
        # A single word longer than the whole piece budget still goes alone; the model truncates it.
        too_many = len(current) >= word_budget or (piece_budget is not None and pieces + size > piece_budget)
        if current and too_many:
            out.append(_Unit(current, pieces, paragraph))
            current, pieces = [], 0
        current.append(word)
        pieces += size
    if current:
        out.append(_Unit(current, pieces, paragraph))
    return out


def _fits(words: int, pieces: int, word_budget: int, piece_budget: int | None) -> bool:
    return words <= word_budget and (piece_budget is None or pieces <= piece_budget)


def _pack(units: list[_Unit], word_budget: int, piece_budget: int | None, overlap_words: int,
          count_pieces: PieceCounter | None) -> list[list[str]]:
    """Greedily fill passages with whole units, keeping paragraphs together when that costs little."""
    passages: list[list[str]] = []
    current: list[_Unit] = []
    para_size: dict[int, tuple[int, int]] = {}
    for unit in units:
        w, p = para_size.get(unit.paragraph, (0, 0))
        para_size[unit.paragraph] = (w + len(unit.words), p + unit.pieces)

    def size(group: list[_Unit]) -> tuple[int, int]:
        return sum(len(u.words) for u in group), sum(u.pieces for u in group)

    for unit in units:
        words, pieces = size(current)
        if current and unit.paragraph != current[-1].paragraph:
            # Start the new paragraph in a fresh passage if it would not fit the rest of
            # this one but fits a passage of its own, and this one is at least half full.
            p_words, p_pieces = para_size[unit.paragraph]
            if (
                not _fits(words + p_words, pieces + p_pieces, word_budget, piece_budget)
                and _fits(p_words, p_pieces, word_budget, piece_budget)
                and 2 * words >= word_budget
            ):
                passages.append(_flatten(current))
                current = []
                words, pieces = 0, 0
        if current and not _fits(words + len(unit.words), pieces + unit.pieces, word_budget, piece_budget):
            passages.append(_flatten(current))
            current = _overlap(current, unit, overlap_words, word_budget, piece_budget, count_pieces)
        current.append(unit)
    if current:
        passages.append(_flatten(current))
    return passages


def _overlap(previous: list[_Unit], following: _Unit, overlap_words: int, word_budget: int,
             piece_budget: int | None, count_pieces: PieceCounter | None) -> list[_Unit]:
    """Trailing sentences of ``previous`` (same paragraph as ``following``) to repeat, within budget."""
    if overlap_words <= 0 or previous[-1].paragraph != following.paragraph:
        return []
    room_words = word_budget - len(following.words)
    room_pieces = None if piece_budget is None else piece_budget - following.pieces
    kept: list[_Unit] = []
    words = pieces = 0
    for unit in reversed(previous):
        if unit.paragraph != following.paragraph:
            break
        w, p = words + len(unit.words), pieces + unit.pieces
        if w > overlap_words or w > room_words or (room_pieces is not None and p > room_pieces):
            break
        kept.insert(0, unit)
        words, pieces = w, p
    if kept:
        return kept
    # No whole sentence is short enough: repeat the last words of the previous passage.
    tail_len = min(overlap_words, room_words, len(previous[-1].words) - 1)
    if tail_len <= 0:
        return []
    tail = previous[-1].words[-tail_len:]
    sizes = _count(count_pieces, tail)
    if room_pieces is not None:
        while tail and sum(sizes) > room_pieces:
            tail, sizes = tail[1:], sizes[1:]
    return [_Unit(tail, sum(sizes), following.paragraph)] if tail else []


def _flatten(group: list[_Unit]) -> list[str]:
    return [word for unit in group for word in unit.words]
