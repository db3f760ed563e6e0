"""BM25 keyword search with bm25s, tokenised so rare exact names stay findable.

The tokenizer (rq.words) lower-cases and keeps identifiers whole: ``pd.read_parquet``
gives ``pd.read_parquet``, ``pd`` and ``read_parquet``, plus ``read`` and ``parquet``,
so a query for the exact name and one for its words both match; rq's stopwords are
not indexed. Stemming
(Snowball English, through PyStemmer) is applied only when PyStemmer is
installed, and never to tokens holding digits, dots or underscores, which are
names rather than words.

Searching a saved index reads bm25s's arrays with numpy alone (``_Postings``): importing
bm25s, which pulls in scipy, would cost a cold `rq search` 0.1-0.15 s. bm25s still builds it.

Saved indexes live in a folder: each save writes a fresh ``gen-N`` subfolder
and then atomically repoints the ``CURRENT`` file at it, so a reader never sees
a half-written index and a crash mid-save leaves the previous one in place.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from rq.errors import ArchiveError, IndexMismatchError, RqError
from rq.files import atomic_write_bytes, fsync_dir, fsync_file
from rq.words import STOPWORDS, TOKEN, WORD

FORMAT = 1
_NAME_CHARS = re.compile(r"[\d_.]")


def stemmer_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("Stemmer") is not None


class Tokenizer:
    """Text -> list of index terms; the same settings must be used to build and to query."""

    def __init__(self, stopwords: bool = True, stem: bool | None = None,
                 stopword_terms: Iterable[str] | None = None):
        if stem is None:
            stem = stemmer_available()
        self.use_stopwords = bool(stopwords)
        self.stem = bool(stem)
        # A saved index carries the stopword list it was built with.
        if stopword_terms is not None:
            self._stopwords = frozenset(stopword_terms)
        else:
            self._stopwords = STOPWORDS if self.use_stopwords else frozenset()
        self._stemmer = None
        if self.stem:
            try:
                import Stemmer
            except ImportError:
                raise RqError("keyword index: stemming asked for but PyStemmer is not installed") from None
            self._stemmer = Stemmer.Stemmer("english")
        self._cache: dict[str, str] = {}

    @property
    def stopword_terms(self) -> list[str]:
        return sorted(self._stopwords)

    @property
    def config(self) -> dict[str, Any]:
        return {"stopwords": self.use_stopwords, "stem": self.stem}

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for match in TOKEN.finditer(text.lower()):
            token = match.group()
            parts = WORD.findall(token)
            if len(parts) > 1 or parts != [token]:
                # A compound name: keep it whole for exact look-ups, and its parts for word queries.
                if "'" not in token:
                    out.append(token)
                    # pd.read_parquet also gives read_parquet, the name people type.
                    segments = token.split(".")
                    if len(segments) > 1:
                        out.extend(s for s in segments if s != token and WORD.fullmatch(s) is None)
                out.extend(self._term(p) for p in parts if p not in self._stopwords)
            elif token not in self._stopwords:
                out.append(self._term(token))
        return out

    def _term(self, word: str) -> str:
        if self._stemmer is None or _NAME_CHARS.search(word):
            return word
        stemmed = self._cache.get(word)
        if stemmed is None:
            stemmed = self._cache[word] = self._stemmer.stemWord(word)
        return stemmed


class KeywordIndex:
    """BM25 over texts with int64 ids; ``search`` returns (ids, scores), best first, scores > 0."""

    def __init__(self, retriever, ids: np.ndarray, tokenizer: Tokenizer, params: Mapping[str, Any]):
        self._bm25 = retriever
        self.ids = ids
        self.tokenizer = tokenizer
        self.params = dict(params)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, texts: Sequence[str], ids: np.ndarray, k1: float = 1.2, b: float = 0.75,
              stopwords: bool = True, stem: bool | None = None, title_weight: int = 1) -> "KeywordIndex":
        """Index ``texts`` under ``ids``. The defaults won on SciFact train queries
        (benchmarks/bench_retrieval.py): stemming +2.7 nDCG@10 points, the others within 0.5.
        ``title_weight`` n > 1 counts the words of a text's first line (a passage's title
        line) n times: a title field weighted n times the body's."""
        import bm25s

        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        if title_weight < 1:
            raise ValueError(f"title_weight {title_weight}: at least 1")
        tokenizer = Tokenizer(stopwords, stem)
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        # bm25s cannot index an empty corpus; an index of nothing simply finds nothing.
        if len(texts):
            retriever.index([_weighted_terms(tokenizer, t, title_weight) for t in texts], show_progress=False)
        params = {"k1": k1, "b": b} if title_weight == 1 else {"k1": k1, "b": b, "title_weight": title_weight}
        return cls(retriever, ids, tokenizer, params)

    def _scores(self, query: str) -> np.ndarray | None:
        if not len(self.ids):
            return None
        vocab = self._bm25.vocab_dict
        terms = [vocab[t] for t in self.tokenizer(query) if t in vocab]
        if not terms:
            return None
        return self._bm25.get_scores_from_ids(terms)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self._scores(query)
        if scores is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return _top(scores, self.ids, k)

    def search_weighted(self, weights: Mapping[str, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``search`` for a query given as index terms with weights (an expanded query):
        each term's BM25 column counts ``weight`` times."""
        scores = self.score_weighted(weights)
        if k <= 0 or not scores.any():
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return _top(scores, self.ids, k)

    def score_all(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text, in ``self.ids`` order (zeros when nothing matches)."""
        scores = self._scores(query)
        return np.zeros(len(self.ids), np.float32) if scores is None else scores.astype(np.float32)

    def score_weighted(self, weights: Mapping[str, float]) -> np.ndarray:
        """``score_all`` for index terms with weights."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        vocab = self._bm25.vocab_dict if len(self.ids) else {}
        for term, weight in weights.items():
            if term in vocab and weight > 0:
                scores += np.float32(weight) * self._bm25.get_scores_from_ids([vocab[term]])
        return scores

    def query_weight(self, query: str | Mapping[str, float]) -> float:
        """The most BM25 score one text could get for ``query`` (text, or terms with weights):
        the sum of its terms' idf (lucene's BM25 gives a term at most its idf), a word the
        index never saw counting as the rarest. A text's score over this is the share of the
        query it matches, weighted by rarity: comparable from one query to the next."""
        weights = Counter(self.tokenizer(query)) if isinstance(query, str) else dict(query)
        n = len(self.ids)
        return float(sum(w * math.log(1 + (n - c + 0.5) / (c + 0.5))
                         for c, w in ((self.document_frequency(t), w) for t, w in weights.items())))

    def document_frequency(self, term: str) -> int:
        """How many indexed texts hold ``term`` (an index term: tokenized, maybe stemmed)."""
        vocab = self._bm25.vocab_dict if len(self.ids) else {}
        if term not in vocab:
            return 0
        indptr = getattr(self._bm25, "indptr", None)
        if indptr is None:  # a bm25s retriever (an index built in this process)
            indptr = self._bm25.scores["indptr"]
        column = vocab[term]
        return int(indptr[column + 1] - indptr[column])

    def holds(self, terms: Sequence[str], ids: Sequence[int]) -> np.ndarray:
        """Whether each text of ``ids`` holds each index term: a (len(ids), len(terms)) bool
        array read from the postings, no text tokenized."""
        out = np.zeros((len(ids), len(terms)), dtype=bool)
        if not len(self.ids) or not len(ids):
            return out
        vocab = self._bm25.vocab_dict
        indptr = getattr(self._bm25, "indptr", None)
        indices = getattr(self._bm25, "indices", None)
        if indptr is None:  # a bm25s retriever (an index built in this process)
            indptr, indices = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        rows = np.asarray(ids, dtype=np.int64) if self._ids_are_rows else \
            np.array([self._row_of()[int(i)] for i in ids], dtype=np.int64)
        for j, term in enumerate(terms):
            if term in vocab:
                column = np.asarray(indices[int(indptr[vocab[term]]):int(indptr[vocab[term] + 1])])
                out[:, j] = np.isin(rows, column)
        return out

    @property
    def _ids_are_rows(self) -> bool:
        """Whether id i is the i-th text (as rq builds it): no look-up needed."""
        if not hasattr(self, "_rows_cache"):
            self._rows_cache = bool(np.array_equal(self.ids, np.arange(len(self.ids))))
        return self._rows_cache

    def _row_of(self) -> dict[int, int]:
        if not hasattr(self, "_row_map"):
            self._row_map = {int(i): row for row, i in enumerate(self.ids)}
        return self._row_map

    def save(self, folder: Path) -> None:
        """Write a fresh generation and make it the current one."""
        make_current(folder, self.stage(folder))

    def stage(self, folder: Path) -> str:
        """Write a fresh ``gen-N`` folder, not yet current; returns its name. A generation left
        half-written (a full disk) is removed, and one a killed run left is removed by the next save."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        generation = 1 + max([_gen_number(p.name) for p in folder.glob("gen-*")] + [0])
        target = folder / f"gen-{generation}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        try:
            if len(self.ids):
                self._bm25.save(str(target), show_progress=False)
            np.save(target / "ids.npy", self.ids)
            meta = {"format": FORMAT, "count": len(self.ids), "tokenizer": self.tokenizer.config,
                    "params": self.params, "stopword_terms": self.tokenizer.stopword_terms}
            (target / "rq-keyword.json").write_text(json.dumps(meta, sort_keys=True))
            for path in target.iterdir():
                fsync_file(path)
            fsync_dir(target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return target.name

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex":
        folder = Path(folder)
        name = _read_current(folder)
        if name is None:
            raise ArchiveError(f"{folder}: no keyword index here; build the index first")
        target = folder / name
        try:
            meta = json.loads((target / "rq-keyword.json").read_text())
            ids = np.load(target / "ids.npy", allow_pickle=False)
            fmt, config, params, count = meta.get("format"), meta["tokenizer"], meta["params"], int(meta["count"])
            stem, stopwords = config["stem"], bool(config["stopwords"])
        except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as exc:
            raise ArchiveError(f"{target}: keyword index is incomplete or corrupt ({exc}); rebuild it") from None
        if fmt != FORMAT:
            raise IndexMismatchError(f"{target}: keyword index format {fmt}, rq reads {FORMAT}; rebuild it")
        if stem and not stemmer_available():
            raise IndexMismatchError(f"{target}: keyword index was built with stemming but PyStemmer is missing; rebuild it")
        tokenizer = Tokenizer(stopwords, stem, meta.get("stopword_terms"))
        if ids.ndim != 1 or len(ids) != count:
            raise ArchiveError(f"{target}: keyword index is incomplete or corrupt; rebuild it")
        retriever = _Postings.load(target) if len(ids) else None
        if retriever is not None and retriever.num_docs != len(ids):
            raise ArchiveError(f"{target}: keyword index does not match its ids; rebuild it")
        return cls(retriever, ids, tokenizer, params)


def make_current(folder: Path, name: str) -> None:
    """Point ``CURRENT`` at generation ``name`` (atomically), then drop the older generations."""
    folder = Path(folder)
    atomic_write_bytes(folder / "CURRENT", name.encode())
    # Older generations are unreachable now; a reader that opened one keeps its arrays in memory.
    for old in folder.glob("gen-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def current_files(folder: Path) -> list[str]:
    """The files the current keyword index is made of, relative to ``folder``: CURRENT and its generation's."""
    name = _read_current(folder)
    if name is None:
        return []
    return ["CURRENT"] + sorted(f"{name}/{p.name}" for p in (folder / name).iterdir() if p.is_file())


class _Postings:
    """The query side of a saved bm25s index (method "lucene"), read with numpy alone.

    bm25s stores each term's BM25 contribution per document, term by term (a CSC matrix
    of documents x vocabulary); a query's score is the sum of its terms' columns, a term
    that occurs twice counting twice, as in bm25s.
    """

    def __init__(self, vocab: dict[str, int], data, indices, indptr, num_docs: int):
        self.vocab_dict = vocab
        self.data, self.indices, self.indptr = data, indices, indptr
        self.num_docs = num_docs

    @classmethod
    def load(cls, target: Path) -> "_Postings":
        try:
            params = json.loads((target / "params.index.json").read_text())
            if params.get("method") != "lucene":
                raise ValueError(f"scoring method {params.get('method')!r}, rq reads lucene")
            vocab = json.loads((target / "vocab.index.json").read_text())
            # Memory-mapped: a search touches the few columns of its terms, not the whole index.
            arrays = [np.load(target / f"{name}.csc.index.npy", mmap_mode="r", allow_pickle=False)
                      for name in ("data", "indices", "indptr")]
            columns = len(arrays[2]) - 1
            # bm25s maps the empty token to the last id and gives it no column.
            vocab = {term: i for term, i in vocab.items() if term and i < columns}
            if len(vocab) != columns or arrays[2][-1] != len(arrays[0]) or len(arrays[0]) != len(arrays[1]):
                raise ValueError("arrays disagree with the vocabulary")
            num_docs = int(params["num_docs"])
        except (OSError, ValueError, EOFError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ArchiveError(f"{target}: keyword index is incomplete or corrupt ({exc}); rebuild it") from None
        return cls(vocab, *arrays, num_docs=num_docs)

    def get_scores_from_ids(self, term_ids: list[int]) -> np.ndarray:
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term in term_ids:
            start, end = int(self.indptr[term]), int(self.indptr[term + 1])
            scores[self.indices[start:end]] += self.data[start:end]
        return scores


def _weighted_terms(tokenizer: Tokenizer, text: str, title_weight: int) -> list[str]:
    if title_weight == 1 or "\n" not in text:
        return tokenizer(text)
    title, body = text.split("\n", 1)
    return tokenizer(title) * title_weight + tokenizer(body)


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` positive scores, ties broken by position so results are deterministic."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        cut = np.argpartition(-scores[positive], k - 1)[:k]
        positive = np.sort(positive[cut])
    order = positive[np.lexsort((positive, -scores[positive]))]
    return ids[order], scores[order].astype(np.float32)


def _read_current(folder: Path) -> str | None:
    try:
        name = (folder / "CURRENT").read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ArchiveError(f"{folder}: cannot read keyword index ({exc.strerror})") from None
    if not re.fullmatch(r"gen-\d+", name):
        raise ArchiveError(f"{folder}/CURRENT is corrupt; rebuild the keyword index")
    return name


def _gen_number(name: str) -> int:
    try:
        return int(name.split("-", 1)[1])
    except (IndexError, ValueError):
        return 0
