"""The pure retrieval layer: chunking, embedding, FAISS and BM25 indexes, fusion."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from rq.index.chunk import passage_hash, split_passages
from rq.index.encoders.torch_encoder import Embedder, resolve_model
from rq.errors import ArchiveError, IndexMismatchError, RqError
from rq.rank.fusion import aggregate, fuse
from rq.index.keyword import KeywordIndex, Tokenizer
from rq.index.vectors import VectorIndex

SENTENCE = ("Sphingosine-1-phosphate receptor modulators reduced the annualized relapse rate "
            "in patients with relapsing multiple sclerosis compared with interferon beta-1a.")


@pytest.fixture(scope="session")
def tokenizer_embedder():
    """An Embedder used only for its tokenizer: no torch, no weights loaded."""
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def model():
    """The real all-MiniLM-L6-v2, loaded once for the whole session."""
    embedder = Embedder("all-MiniLM-L6-v2", threads=2)
    embedder.encode(["warm up"])
    return embedder


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# --------------------------------------------------------------------------- chunking


def long_text() -> str:
    paragraphs = []
    for p in range(6):
        sentences = [f"Paragraph {p} sentence {s}: " + SENTENCE for s in range(5 + p)]
        paragraphs.append(" ".join(sentences))
    # One sentence far longer than any window, with no punctuation to split at.
    paragraphs.append(" ".join(f"token{i}" for i in range(700)))
    return "\n\n".join(paragraphs)


def test_passages_fit_the_model_window_in_word_pieces(tokenizer_embedder):
    count = tokenizer_embedder.count_pieces
    limit = tokenizer_embedder.max_pieces
    assert limit == 254  # 256 positions minus [CLS] and [SEP]
    title = "Fingolimod and relapse rates: a randomised trial in multiple sclerosis"
    passages = split_passages(title, long_text(), 160, 32, count_pieces=count, max_pieces=limit)
    assert len(passages) > 5
    sizes = count(passages)
    assert max(sizes) <= limit
    # The tokenizer with special tokens agrees: nothing the model would truncate.
    assert all(n + 2 <= 256 for n in sizes)


def test_word_budget_alone_is_respected():
    for passage in split_passages("T", long_text(), 50, 10):
        assert len(passage.split()) <= 50


def test_title_is_kept_with_every_passage():
    title = "Microbiome and obesity"
    passages = split_passages(title, long_text(), 80, 16)
    assert len(passages) > 3
    assert all(p.startswith(title + "\n") for p in passages)
    assert all(p.split("\n", 1)[1].strip() for p in passages)


def test_consecutive_passages_overlap():
    text = " ".join(f"Sentence number {i} says something short." for i in range(60))
    passages = [p.split("\n", 1)[1] for p in split_passages("T", text, 40, 12)]
    assert len(passages) > 3
    for before, after in zip(passages, passages[1:]):
        tail = before.split()[-6:]
        assert " ".join(tail) in after  # the end of one passage opens the next
    no_overlap = [p.split("\n", 1)[1] for p in split_passages("T", text, 40, 0)]
    assert sum(len(p.split()) for p in no_overlap) == len(text.split())


def test_sentence_boundaries_and_hard_split():
    passages = split_passages("", "First sentence here. " + " ".join(["word"] * 100), 30, 0)
    assert passages[0] == "First sentence here."  # the long sentence does not join it
    assert all(len(p.split()) <= 30 for p in passages)
    assert sum(p.count("word") for p in passages) == 100


def test_short_paragraph_is_not_cut_when_a_fresh_passage_holds_it():
    first = " ".join(f"Alpha sentence {i} is here." for i in range(5))  # 25 words
    second = " ".join(f"Beta sentence {i} is here." for i in range(4))  # 20 words
    passages = split_passages("", first + "\n\n" + second, 30, 0)
    assert any(p == second for p in passages)


def test_chunking_is_deterministic_and_empty_text_gives_nothing():
    a = split_passages("Title", long_text(), 100, 20)
    b = split_passages("Title", long_text(), 100, 20)
    assert a == b
    assert split_passages("Title", "", 100, 20) == []
    assert split_passages("Title", "  \n\n ", 100, 20) == []


def test_passage_hash():
    assert passage_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert passage_hash("abc") != passage_hash("abd")


# --------------------------------------------------------------------------- model resolution


def test_resolve_model_names_and_paths(tmp_path):
    short = resolve_model("all-MiniLM-L6-v2")
    assert short == resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert (short / "config.json").is_file()
    assert resolve_model(str(short)) == short.resolve()
    with pytest.raises(RqError, match="downloads no models"):
        resolve_model("BAAI/bge-large-en-v1.5")
    with pytest.raises(RqError):
        resolve_model(str(tmp_path))  # a folder without model files


def test_model_id_and_dim_need_no_torch():
    code = (
        "import sys; from rq.index.encoders.torch_encoder import Embedder\n"
        "a = Embedder('all-MiniLM-L6-v2'); b = Embedder('sentence-transformers/all-MiniLM-L6-v2')\n"
        "assert a.model_id == b.model_id and a.model_id.startswith('all-MiniLM-L6-v2@'), a.model_id\n"
        "assert a.dim == 384 and a.max_pieces == 254\n"
        "assert a.count_pieces(['hello world']) == [2]\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


# --------------------------------------------------------------------------- vector index


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vector_index_search_save_reload(tmp_path, kind):
    vectors = unit_vectors(400)
    ids = np.arange(400, dtype=np.int64) * 7 + 1000  # rq's ids, not positions
    index = VectorIndex.build(vectors, ids, kind=kind, meta={"model_id": "m@1"})
    assert index.kind == kind and index.ntotal == 400 and index.dim == 32
    queries = vectors[:20] + 0.01
    D, I = index.search(queries, 5)
    assert I.dtype == np.int64 and D.dtype == np.float32 and I.shape == (20, 5)
    exact = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ vectors.T, axis=1)[:, :5]
    if kind == "flat":
        assert (I == ids[exact]).all()
    else:  # approximate, but a small graph finds the nearest neighbour
        assert (I[:, 0] == ids[exact[:, 0]]).mean() >= 0.95
    path = tmp_path / "vectors.faiss"
    index.save(path)
    again = VectorIndex.load(path, dim=32)
    assert again.kind == kind and again.ntotal == 400 and again.meta == {"model_id": "m@1"}
    D2, I2 = again.search(queries, 5)
    assert (I2 == I).all() and np.array_equal(D2, D)


def test_vector_index_pads_and_chooses_kind():
    vectors = unit_vectors(3)
    index = VectorIndex.build(vectors, np.array([5, 6, 7]), kind="auto", hnsw_above=10)
    assert index.kind == "flat"
    D, I = index.search(vectors[0], 5)  # one vector is one query
    assert I.shape == (1, 5) and list(I[0, 3:]) == [-1, -1] and np.isneginf(D[0, 3:]).all()
    assert I[0, 0] == 5
    assert VectorIndex.build(unit_vectors(11), np.arange(11), hnsw_above=10).kind == "hnsw"
    with pytest.raises(IndexMismatchError):
        index.search(unit_vectors(1, dim=16), 1)


def test_vector_index_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "v.faiss"
    VectorIndex.build(unit_vectors(10), np.arange(10)).save(path)
    VectorIndex.build(unit_vectors(20), np.arange(20)).save(path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.faiss"]

    def crash(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        VectorIndex.build(unit_vectors(30), np.arange(30)).save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.faiss"]  # no temp file left
    assert VectorIndex.load(path).ntotal == 20  # the old index is intact


def test_vector_index_refuses_truncated_or_corrupt_files(tmp_path):
    path = tmp_path / "v.faiss"
    VectorIndex.build(unit_vectors(50), np.arange(50)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        VectorIndex.load(path)
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(RqError):
        VectorIndex.load(path)
    path.write_bytes(b"")
    with pytest.raises(RqError):
        VectorIndex.load(path)
    path.write_bytes(data)
    with pytest.raises(IndexMismatchError):
        VectorIndex.load(path, dim=384)
    with pytest.raises(ArchiveError):
        VectorIndex.load(tmp_path / "missing.faiss")


# --------------------------------------------------------------------------- keyword index


DOCS = [
    "Reading parquet files is fast; we read the data and write parquet back.",
    "Use pd.read_parquet to load a Parquet file into a DataFrame.",
    "Vector search libraries compare embeddings with inner products.",
    "FAISS builds HNSW graphs for approximate nearest neighbour search.",
    "The cat sat on the mat and read a book about searching.",
]


def test_keyword_finds_rare_exact_terms_first():
    index = KeywordIndex.build(DOCS, np.arange(10, 15))
    ids, scores = index.search("read_parquet", 3)
    assert ids[0] == 11 and scores[0] > 0
    ids, _ = index.search("faiss", 3)
    assert list(ids) == [13]
    ids, scores = index.search("how do I read parquet", 5)
    assert set(ids[:2]) == {10, 11} and (np.diff(scores) <= 0).all()
    ids, scores = index.search("zebra", 3)
    assert len(ids) == 0 and len(scores) == 0


def test_tokenizer_keeps_names_and_words():
    tokens = Tokenizer(stopwords=True, stem=False)("Call pd.read_parquet() with IL-6 and the FAISS index")
    for expected in ("pd.read_parquet", "read_parquet", "read", "parquet", "il-6", "faiss"):
        assert expected in tokens
    assert "the" not in tokens and "with" not in tokens


def test_keyword_index_save_reload(tmp_path):
    index = KeywordIndex.build(DOCS, np.arange(10, 15))
    folder = tmp_path / "keyword"
    index.save(folder)
    index.save(folder)  # a second save replaces the first generation
    assert sorted(p.name for p in folder.iterdir()) == ["CURRENT", "gen-2"]
    again = KeywordIndex.load(folder)
    for query in ("read_parquet", "nearest neighbour search", "cat book"):
        a, b = index.search(query, 5), again.search(query, 5)
        assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    assert [list(again.search(q, 2)[0]) for q in ["faiss", "zebra"]] == [[13], []]
    with pytest.raises(ArchiveError):
        KeywordIndex.load(tmp_path / "nothing")


def test_empty_keyword_index(tmp_path):
    index = KeywordIndex.build([], np.zeros(0, np.int64))
    assert len(index.search("anything", 3)[0]) == 0
    index.save(tmp_path / "k")
    assert len(KeywordIndex.load(tmp_path / "k")) == 0


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_keyword_and_resource_files_raise_archive_errors(tmp_path, damage):
    """Whatever numpy, zipfile or json make of a damaged file, the caller gets an ArchiveError
    (which search answers by rebuilding), never a BadZipFile or EOFError traceback."""
    from rq.index.resources import load_resource_vectors, save_resource_vectors

    def spoil(path):
        data = path.read_bytes()
        path.write_bytes({"truncate": data[: len(data) // 2], "garbage": bytes(i * 7 % 256 for i in range(len(data))),
                          "empty": b""}[damage])

    rows = [("a" * 40, 0, "text", "x", "h0"), ("b" * 40, 0, "text", "y", "h1")]
    save_resource_vectors(tmp_path / "resources.npz", rows, unit_vectors(2), {"a" * 40: unit_vectors(1)[0],
                                                                             "b" * 40: unit_vectors(1)[0]}, 7)
    assert load_resource_vectors(tmp_path, 7)[0] == ["a" * 40, "b" * 40]
    spoil(tmp_path / "resources.npz")
    with pytest.raises(ArchiveError, match="resources.npz"):
        load_resource_vectors(tmp_path, 7, with_owner=True)

    for name in ("ids.npy", "rq-keyword.json", "indptr.csc.index.npy", "vocab.index.json"):
        folder = tmp_path / f"keyword-{name}"
        KeywordIndex.build(DOCS, np.arange(5)).save(folder)
        spoil(folder / "gen-1" / name)
        with pytest.raises(ArchiveError, match="keyword index"):
            KeywordIndex.load(folder)


# --------------------------------------------------------------------------- fusion


def test_convex_fusion_tmm_by_hand():
    dense = (np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1]))
    keyword = (np.array([3, 4]), np.array([10.0, 5.0]))
    ids, scores = fuse(dense, keyword, method="convex", norm="tmm", alpha=0.5)
    # dense: (s + 1) / 1.9; keyword: s / 10; a missing id takes its list's lowest value.
    d = {1: 1.9 / 1.9, 2: 1.5 / 1.9, 3: 1.1 / 1.9, 4: 1.1 / 1.9}
    k = {1: 0.5, 2: 0.5, 3: 1.0, 4: 0.5}
    expected = {i: 0.5 * d[i] + 0.5 * k[i] for i in d}
    assert list(ids) == sorted(expected, key=lambda i: -expected[i])
    assert np.allclose(scores, [expected[i] for i in ids])


def test_convex_fusion_minmax_and_alpha_extremes():
    dense = (np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1]))
    keyword = (np.array([3, 4]), np.array([10.0, 5.0]))
    ids, scores = fuse(dense, keyword, norm="minmax", alpha=0.5)
    expected = {1: 0.5 * 1 + 0.5 * 0, 2: 0.5 * 0.5 + 0, 3: 0 + 0.5 * 1, 4: 0 + 0}
    assert np.allclose(scores, [expected[i] for i in ids])
    assert list(ids[:2]) == [1, 3]  # equal scores keep first appearance, dense list first
    assert list(fuse(dense, keyword, alpha=1.0)[0][:3]) == [1, 2, 3]
    # alpha 0: keyword only; 4 (keyword's lowest) ties with the ids keyword did not return.
    ids, scores = fuse(dense, keyword, alpha=0.0)
    assert ids[0] == 3 and np.allclose(scores[1:], 0.5)


def test_rrf_fusion_by_hand():
    dense = (np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1]))
    keyword = (np.array([3, 4]), np.array([10.0, 5.0]))
    ids, scores = fuse(dense, keyword, method="rrf", rrf_k=60, alpha=0.5)
    expected = {1: 0.5 / 61, 2: 0.5 / 62, 3: 0.5 / 63 + 0.5 / 61, 4: 0.5 / 62}
    assert list(ids) == [3, 1, 2, 4]
    assert np.allclose(scores, [expected[i] for i in ids])


def test_fusion_ignores_padding_and_handles_empty_lists():
    ids, _ = fuse((np.array([7, -1]), np.array([0.5, -np.inf])), (np.zeros(0), np.zeros(0)))
    assert list(ids) == [7]
    ids, scores = fuse((np.zeros(0), np.zeros(0)), (np.zeros(0), np.zeros(0)))
    assert len(ids) == 0 and len(scores) == 0


def test_aggregate_max_passage_ties_by_first():
    passage_ids = np.array([4, 0, 1, 3, 2])
    scores = np.array([0.7, 0.9, 0.7, 0.2, 0.7])
    owner = np.array([10, 10, 11, 12, 12])  # passage -> resource
    res, best_scores, best_passages = aggregate(passage_ids, scores, owner)
    # Passages 4, 1 and 2 tie at 0.7: passage 4 (resource 12) came first, then passage 1
    # (resource 10, already placed by passage 0), then passage 2 (resource 11).
    assert list(res) == [10, 12, 11]
    assert np.allclose(best_scores, [0.9, 0.7, 0.7])
    assert list(best_passages) == [0, 4, 2]
    res_dict, _, _ = aggregate(passage_ids, scores, {i: int(r) for i, r in enumerate(owner)})
    assert list(res_dict) == list(res)


# --------------------------------------------------------------------------- end to end


class HashEmbedder:
    """Fake embedder for plumbing: bag of hashed words, unit length."""

    dim = 64

    def encode(self, texts, batch_size=32, progress=None):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_hybrid_plumbing_with_a_fake_embedder():
    titles = ["Parquet guide", "Vector search", "Cats"]
    texts = [DOCS[0] + "\n\n" + DOCS[1], DOCS[2] + " " + DOCS[3], DOCS[4]]
    passages, owner = [], []
    for r, (title, text) in enumerate(zip(titles, texts)):
        for p in split_passages(title, text, 12, 3):
            passages.append(p)
            owner.append(r)
    owner = np.array(owner)
    embedder = HashEmbedder()
    vectors = VectorIndex.build(embedder.encode(passages), np.arange(len(passages)))
    keyword = KeywordIndex.build(passages, np.arange(len(passages)))
    query = "read_parquet"
    D, I = vectors.search(embedder.encode([query]), 10)
    fused = fuse((I[0], D[0]), keyword.search(query, 10), alpha=0.5)
    resources, _, best = aggregate(*fused, owner)
    assert resources[0] == 0 and "read_parquet" in passages[best[0]]


# --------------------------------------------------------------------------- the real model


def test_real_model_vectors_are_unit_float32(model):
    texts = ["short", "a somewhat longer sentence about protein folding", SENTENCE * 3]
    vectors = model.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384) and model.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Length-sorted batching must hand the vectors back in input order.
    one_by_one = np.vstack([model.encode([t]) for t in texts])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    assert model.encode([]).shape == (0, 384)


def test_real_model_ranks_a_paraphrase_first(model):
    passage = "Physicians recommend regular exercise to lower the risk of heart disease."
    query = "doctors say working out often keeps your cardiac health good"
    stop = {"to", "the", "of", "your", "say", "keeps", "good", "often"}
    assert not (set(passage.lower().strip(".").split()) - stop) & (set(query.split()) - stop)
    distractors = [
        "Boil the pasta in salted water for nine minutes before draining it.",
        "The central bank raised interest rates to curb rising inflation.",
        "The striker scored twice in the second half of the football match.",
        "Lava flowed down the volcano's slopes after the eruption began.",
        "Python lists keep their elements in insertion order.",
        "Regular maintenance lowers the risk of engine failure in old cars.",
    ]
    corpus = distractors[:3] + [passage] + distractors[3:]
    index = VectorIndex.build(model.encode(corpus), np.arange(len(corpus)))
    _, I = index.search(model.encode([query]), 3)
    assert I[0, 0] == 3


def test_a_saved_keyword_index_scores_exactly_as_bm25s_without_importing_it(tmp_path):
    import random
    import subprocess
    import sys

    import bm25s

    rng = random.Random(7)
    words = [f"w{i}" for i in range(300)] + ["recsys", "parquet", "latency", "the", "of"]
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 60))) for _ in range(400)]
    index = KeywordIndex.build(docs, np.arange(400) * 3)
    index.save(tmp_path / "k")
    queries = ["recsys latency", "w1 w1 w2 parquet", "w299 of the", "nothing-here", "w5"]
    reloaded = KeywordIndex.load(tmp_path / "k")
    assert not isinstance(reloaded._bm25, bm25s.BM25)
    for query in queries:
        np.testing.assert_allclose(reloaded.score_all(query), index.score_all(query), rtol=1e-6, atol=1e-6)
        assert reloaded.search(query, 10)[0].tolist() == index.search(query, 10)[0].tolist()
    code = ("import sys; import numpy as np; from rq.index.keyword import KeywordIndex; "
            f"k = KeywordIndex.load({str(tmp_path / 'k')!r}); print(k.search('recsys latency', 3)[0].tolist()); "
            "print(sorted(m for m in ('bm25s', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == str(index.search("recsys latency", 3)[0].tolist()) and out[1] == "[]"
