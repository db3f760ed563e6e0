"""The ONNX fast path: vectors agree with sentence-transformers, damage is refused, no torch.

One export per module (about 6-10 s on two cores, printed with -s); the torch model is the
session-wide ``embedder`` fixture from conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rq.errors import ArchiveError
from rq.index.encoders.model import model_fingerprint, resolve_model
from rq.index.encoders.onnx_encoder import OnnxEmbedder
from rq.index.encoders.onnx_export import export_onnx
from rq.index.encoders.sidecar import SIDECAR, read_sidecar
from rq.index.encoders.store import export_key, load_export
from rq.settings import Settings

pytestmark = pytest.mark.slow

MODEL = "all-MiniLM-L6-v2"

LONG = " ".join(f"Paragraph {i} discusses retrieval-augmented generation, dense passage retrieval and "
                "BM25 baselines on the BEIR benchmark." for i in range(40))  # ~700 word pieces
LONG_TAIL = LONG + " tail that lies beyond the window and must not change the vector"

TEXTS = [
    "",
    "a",
    "?",
    "   padded with spaces and\ttabs\n",
    "real-time recsys",
    "How do I deploy a PyTorch model behind a REST API?",
    "Vector databases: FAISS, HNSW graphs and product quantisation explained",
    "ALL CAPS TITLE ABOUT MACHINE LEARNING",
    "Ünïcödé àccents: café, naïve, Straße, Ærøskøbing",
    "中文文本检索与排序",
    "日本語の文章埋め込み",
    "Русский текст о поиске",
    "نص عربي عن البحث",
    "emoji 🤖🚀 and symbols ∑∫√ ≤ ≥",
    "def encode(texts): return model(texts)  # code",
    "https://example.org/path?query=1&b=2#frag",
    "1234567890 3.14159 2026-11-26",
    "supercalifragilisticexpialidocious" * 6,
    "word " * 300,  # 300 pieces: truncated at 254
    LONG,
    LONG_TAIL,
    "Title line\nBody of the passage on the second line.\nA third line.",
    "The quick brown fox jumps over the lazy dog. " * 8,
    "Section: Recommender systems / Papers",
    "Attention is all you need",
    "Learning to rank with gradient boosted trees (LambdaMART) for e-commerce search",
    "Does vitamin D deficiency increase the risk of tuberculosis?",
    "0-dimensional biomaterials show inductive properties.",
    "MLOps: CI/CD for machine learning, feature stores & model registries",
    "x" * 5000,  # one long "word": the tokenizer's per-word cap turns it into [UNK]
]


def load_fast_embedder(folder: Path, model: str = MODEL, bulk: str = "fp32") -> OnnxEmbedder | None:
    return load_export(folder, Settings(model=model, embed_bulk=bulk))


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    """A model cache holding one export of the model, as `rq index` makes it."""
    root = tmp_path_factory.mktemp("models")
    started = time.monotonic()
    export_onnx(resolve_model(MODEL), root / export_key(MODEL))
    print(f"\nONNX export (fp32 + int8) took {time.monotonic() - started:.1f} s")
    return root


@pytest.fixture(scope="module")
def index_dir(cache_root) -> Path:
    """The export's folder."""
    return cache_root / export_key(MODEL)


@pytest.fixture(scope="module")
def fast(index_dir) -> OnnxEmbedder:
    embedder = load_fast_embedder(index_dir, MODEL)
    assert embedder is not None
    return embedder


@pytest.fixture(scope="module")
def reference(embedder) -> np.ndarray:
    return embedder.encode(TEXTS)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_same_surface_and_model_id(fast, embedder):
    assert fast.model_id == embedder.model_id  # indexes and caches stay valid across paths
    assert fast.dim == embedder.dim == 384
    assert fast.max_pieces == embedder.max_pieces == 254
    assert fast.count_pieces(TEXTS) == embedder.count_pieces(TEXTS)


def test_sidecar_records_checksums_and_tokenizer(index_dir):
    sidecar = read_sidecar(index_dir)
    assert sidecar["tokenizer"]["max_length"] == 256
    assert sidecar["tokenizer"]["lowercase"] is True  # from tokenizer.json's normaliser
    assert sidecar["pooling"] == "mean" and sidecar["normalize"] is True
    assert sidecar["model_fingerprint"] == model_fingerprint(resolve_model(MODEL))
    for kind in ("fp32", "int8"):
        for role in ("graph", "data"):
            entry = sidecar["files"][kind][role]
            assert len(entry["sha256"]) == 64
            assert (index_dir / entry["file"]).stat().st_size == entry["bytes"]


def test_query_vectors_agree_with_sentence_transformers(fast, embedder):
    ours = np.stack([fast.encode_query(t) for t in TEXTS])
    theirs = np.stack([embedder.encode_query(t) for t in TEXTS])
    cos = _cos(ours, theirs)
    assert cos.min() >= 0.999, {TEXTS[i][:40]: float(cos[i]) for i in np.argsort(cos)[:3]}
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_truncation_matches(fast, embedder):
    assert embedder.count_pieces([LONG])[0] > 600
    a, b = fast.encode_query(LONG), fast.encode_query(LONG_TAIL)
    assert _cos(a, b) > 0.99999  # words past the 256-piece window do not count
    assert _cos(a, embedder.encode_query(LONG)) >= 0.999


def test_batch_encode_agrees_and_keeps_order(fast, reference):
    seen = []
    ours = fast.encode(TEXTS, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert ours.shape == reference.shape and ours.dtype == np.float32
    assert _cos(ours, reference).min() >= 0.999
    assert seen[-1] == (len(TEXTS), len(TEXTS))
    # Padding inside a batch changes nothing: batched rows equal one-at-a-time vectors.
    single = np.stack([fast.encode_query(t) for t in TEXTS])
    assert _cos(ours, single).min() >= 0.9999
    assert fast.encode([]).shape == (0, 384)


def test_int8_bulk_path_agrees_within_its_bound(index_dir, reference, fast):
    """int8 weights move vectors a little. On all 5,183 SciFact abstracts the cosine to the fp32
    vectors was >= 0.990 (mean 0.995) at an nDCG@10 cost of 0.002 (benchmarks/bench_speed.py);
    here texts of a handful of word pieces or more stay >= 0.985. Inputs of one or two pieces
    ("", "?", one [UNK]) average the rounding error over no other token and land at ~0.97, so
    they get 0.95. Both bounds still catch a broken graph: unrelated texts score < 0.5."""
    int8 = load_fast_embedder(index_dir, MODEL, bulk="int8")
    assert int8.bulk == "int8"
    ours = int8.encode(TEXTS, batch_size=8)
    cos = _cos(ours, reference)
    worst = {TEXTS[i][:40]: round(float(cos[i]), 4) for i in np.argsort(cos)[:4]}
    real = np.asarray(fast.count_pieces(TEXTS)) >= 5
    assert cos[real].min() >= 0.985, worst
    assert cos.min() >= 0.95, worst
    assert cos.mean() >= 0.99, worst
    # Queries always take the fp32 graph, whatever the bulk precision.
    assert _cos(int8.encode_query(TEXTS[5]), reference[5]) >= 0.999


def _copy_export(index_dir: Path, target: Path) -> Path:
    """The fp32 files and the sidecar (the int8 files are only checked when used), into
    ``target``/<export key>, as a model cache at ``target`` holds them."""
    src = index_dir
    dst = target / export_key(MODEL)
    dst.mkdir(parents=True)
    sidecar = read_sidecar(src)
    for role in ("graph", "data"):
        shutil.copy2(src / sidecar["files"]["fp32"][role]["file"], dst)
    shutil.copy2(src / SIDECAR, dst)
    return dst


def test_checksum_mismatch_is_refused(index_dir, tmp_path):
    dst = _copy_export(index_dir, tmp_path)
    data = dst / read_sidecar(dst)["files"]["fp32"]["data"]["file"]
    with open(data, "r+b") as fh:
        fh.seek(data.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ArchiveError, match="checksum"):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)


def test_unchanged_files_skip_hashing_and_an_edit_in_place_is_caught(index_dir, tmp_path, monkeypatch):
    import rq.index.encoders.onnx_encoder as onnx_embed

    dst = _copy_export(index_dir, tmp_path)
    sidecar = read_sidecar(dst)
    for role in ("graph", "data"):  # stamp the copies as the export stamps the files it writes
        entry = sidecar["files"]["fp32"][role]
        stat = (dst / entry["file"]).stat()
        entry["stamp"] = [stat.st_ino, stat.st_size, stat.st_mtime_ns]
    (dst / SIDECAR).write_text(json.dumps(sidecar))
    hashed = []
    real = onnx_embed.sha256_file
    monkeypatch.setattr(onnx_embed, "sha256_file", lambda path: hashed.append(path) or real(path))
    load_fast_embedder(tmp_path / export_key(MODEL), MODEL)
    assert hashed == []
    data = dst / sidecar["files"]["fp32"]["data"]["file"]
    with open(data, "r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 1_000_000))  # coarse clocks
    with pytest.raises(ArchiveError, match="checksum"):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)


@pytest.mark.parametrize("role", ["graph", "data"])
def test_truncated_file_is_refused(index_dir, tmp_path, role):
    dst = _copy_export(index_dir, tmp_path)
    path = dst / read_sidecar(dst)["files"]["fp32"][role]["file"]
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 3)
    with pytest.raises(ArchiveError, match="truncated"):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)


def test_missing_file_damaged_sidecar_and_other_model_are_refused(index_dir, tmp_path):
    assert load_fast_embedder(tmp_path / "nothing here", MODEL) is None  # no export: fall back quietly
    dst = _copy_export(index_dir, tmp_path)
    sidecar = read_sidecar(dst)
    (dst / sidecar["files"]["fp32"]["data"]["file"]).unlink()
    with pytest.raises(ArchiveError):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)
    (dst / SIDECAR).write_text('{"format": 1, "fil')
    with pytest.raises(ArchiveError, match="unreadable"):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)
    sidecar["model_fingerprint"] = "000000000000"
    (dst / SIDECAR).write_text(json.dumps(sidecar))
    with pytest.raises(ArchiveError, match="another version"):
        load_fast_embedder(tmp_path / export_key(MODEL), MODEL)


def test_export_again_replaces_whole_export(index_dir, tmp_path, fast):
    dst = tmp_path / export_key(MODEL)
    dst.mkdir()
    (dst / "encoder-deadbeef0000.fp32.onnx").write_bytes(b"left by a killed run")
    graph = export_onnx(resolve_model(MODEL), dst, quantize=False)
    sidecar = read_sidecar(dst)
    assert graph.name == sidecar["files"]["fp32"]["graph"]["file"] and "int8" not in sidecar["files"]
    names = {p.name for p in dst.iterdir()}
    assert names == {SIDECAR, sidecar["files"]["fp32"]["graph"]["file"], sidecar["files"]["fp32"]["data"]["file"]}
    again = load_fast_embedder(dst, MODEL, bulk="int8")
    assert again.bulk == "fp32"  # no int8 graph exported: bulk falls back to fp32
    assert _cos(again.encode_query(TEXTS[5]), fast.encode_query(TEXTS[5])) > 0.99999


def test_fresh_process_never_imports_torch(index_dir):
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from rq.index.encoders.store import load_export
        from rq.settings import Settings
        e = load_export(Path({str(index_dir)!r}), Settings(model={MODEL!r}, embed_bulk="int8"))
        q = e.encode_query("real-time recsys")
        v = e.encode(["two passages", "to embed"])
        n = e.count_pieces(["count me"])
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        print(json.dumps({{"heavy": heavy, "model_id": e.model_id, "shape": list(v.shape), "q": q[:4].tolist()}}))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["shape"] == [2, 384]
    assert result["model_id"].startswith(f"{MODEL}@")


def _settings(cache: Path, tmp_path: Path, **extra):
    return Settings(model_cache=cache, index=tmp_path / "ix", **extra)


def test_make_embedder_picks_the_export_or_falls_back_with_a_notice(cache_root, index_dir, tmp_path):
    from rq.index.encoders.factory import make_embedder
    from rq.index.encoders.torch_encoder import Embedder

    said: list[str] = []
    chosen = make_embedder(_settings(cache_root, tmp_path), said.append)
    assert isinstance(chosen, OnnxEmbedder) and chosen.bulk == "int8" and said == []
    exact = make_embedder(_settings(cache_root, tmp_path, embed_backend="torch"), said.append)
    assert isinstance(exact, Embedder) and not exact.fallback and said == []
    missing = make_embedder(_settings(tmp_path / "empty", tmp_path), said.append)
    assert isinstance(missing, Embedder) and missing.fallback
    assert "no ONNX export" in said[-1]
    dst = _copy_export(index_dir, tmp_path / "damaged")
    (dst / read_sidecar(dst)["files"]["fp32"]["graph"]["file"]).write_bytes(b"not a graph")
    damaged = make_embedder(_settings(tmp_path / "damaged", tmp_path), said.append)
    assert isinstance(damaged, Embedder) and damaged.fallback and "truncated" in said[-1]


def test_the_build_exports_only_for_fallbacks(tmp_path, embedder):
    from rq.index.encoders.factory import embedder_for_build, make_embedder

    settings = _settings(tmp_path / "models", tmp_path, embed_bulk="fp32")
    # An embedder the caller chose itself is used as given, and nothing is exported.
    assert embedder_for_build(settings, embedder) is embedder
    assert not (tmp_path / "models").exists()
    said: list[str] = []
    fallback = make_embedder(settings)
    fast = embedder_for_build(settings, fallback, said.append)
    assert isinstance(fast, OnnxEmbedder) and fast.bulk == "fp32" and "exporting" in said[0]
    assert fast.model_id == embedder.model_id and fast.cache_key == embedder.model_id
    assert embedder_for_build(settings, fast) is fast  # a usable export is not made again
    assert embedder_for_build(settings, None, said.append).export_dir == fast.export_dir
    assert len(said) == 1  # ... nor by a second build
    assert [p.name for p in (tmp_path / "models").iterdir() if p.is_dir()] == [export_key(MODEL)]


def test_int8_vectors_are_cached_apart_and_exact_ones_serve_every_path(index_dir):
    from rq.index.encoders.cache import lookup_vectors, vectors_key

    int8 = load_fast_embedder(index_dir, MODEL, bulk="int8")
    fp32 = load_fast_embedder(index_dir, MODEL, bulk="fp32")
    assert vectors_key(fp32) == fp32.model_id and vectors_key(int8) == f"{int8.model_id}+int8"

    class Cache:
        def __init__(self, rows):
            self.rows = rows

        def cached_vectors(self, model, hashes):
            return {h: self.rows[(model, h)] for h in hashes if (model, h) in self.rows}

    cache = Cache({(fp32.model_id, "a"): b"exact a", (vectors_key(int8), "a"): b"int8 a",
                   (vectors_key(int8), "b"): b"int8 b"})
    assert lookup_vectors(cache, int8.model_id, vectors_key(int8), ["a", "b", "c"]) == {"a": b"exact a",
                                                                                       "b": b"int8 b"}
    assert lookup_vectors(cache, fp32.model_id, vectors_key(fp32), ["a", "b"]) == {"a": b"exact a"}


def test_an_int8_graph_of_an_older_recipe_is_not_used_for_passages(index_dir, tmp_path):
    """Exports made before two feed-forward MatMuls were kept in fp32 (AVX2-only CPUs overflow
    there) serve queries with their fp32 graph, and passages fall back to it until `rq index`
    exports again."""
    dst = _copy_export(index_dir, tmp_path)
    sidecar = read_sidecar(dst)
    sidecar["files"]["int8"] = read_sidecar(index_dir)["files"]["int8"]
    assert read_sidecar(index_dir)["int8_recipe"] == 2
    sidecar.pop("int8_recipe")
    (dst / SIDECAR).write_text(json.dumps(sidecar))
    assert load_fast_embedder(dst, MODEL, bulk="int8").bulk == "fp32"
