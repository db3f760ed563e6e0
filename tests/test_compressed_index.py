"""The compressed (IVF + PQ) vector index: recall against exact search, save and reload,
the memory-mapped load, damage, and the settings that pick it.

Real FAISS on seeded, clustered numpy vectors (like FAISS's own tests): numpy in, (D, I) out.
"""

import json

import numpy as np
import pytest

from rq.errors import ArchiveError, ConfigError
from rq.index import integrity
from rq.index.compressed import recall_at, side
from rq.index.vectors import MIN_COMPRESSED, VectorIndex
from rq.settings import Settings

# 64 dimensions, not the model's 384, keep training quick on a 2-core CI machine; the code path
# is the same (8 sub-quantisers of 8 dimensions here, 32 of 12 at 384).
N, DIM, K = 20_000, 64, 10


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 200 centres, like passages around topics."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, DIM)).astype(np.float32)
    points = centres[rng.integers(0, 200, n)] + rng.normal(0, 0.6, (n, DIM)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    vectors = clustered(N, 7)
    # Queries: stored vectors moved by noise as long as themselves (cosine ~0.7 to where they came
    # from), the way a query lands near passages on its topic without being one.
    rng = np.random.default_rng(8)
    queries = vectors[rng.choice(N, 100, replace=False)] + rng.normal(0, DIM ** -0.5, (100, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = VectorIndex.build(vectors, np.arange(N), kind="flat", threads=1)
    return vectors, queries, exact.search(queries, K)


@pytest.fixture(scope="module")
def built(data, tmp_path_factory):
    vectors, _, _ = data
    index = VectorIndex.build(vectors, np.arange(N), kind="ivfpq", threads=1, meta={"generation": 3})
    path = tmp_path_factory.mktemp("ivfpq") / "vectors.faiss"
    index.save(path)
    return index, path


def test_the_compressed_index_finds_the_exact_top_10_after_reranking(data, built):
    _, queries, (D_exact, I_exact) = data
    index, _ = built
    assert index.kind == "ivfpq" and index.ntotal == N
    assert index.recall >= 0.95 and index.nprobe >= 1  # what the build measured when choosing nprobe
    D, I = index.search(queries, K)
    assert D.shape == I.shape == (100, K) and D.dtype == np.float32 and I.dtype == np.int64
    assert recall_at(I, I_exact) >= 0.95
    # Re-ranked scores are exact inner products, in descending order.
    np.testing.assert_allclose(D[:, 0], np.einsum("ij,ij->i", queries, data[0][I[:, 0]]), rtol=1e-5)
    assert np.all(np.diff(D, axis=1) <= 1e-6)


def test_save_and_reload_give_identical_results_from_memory_mapped_files(data, built):
    _, queries, _ = data
    index, path = built
    loaded = VectorIndex.load(path, dim=DIM, threads=1)
    assert loaded.kind == "ivfpq" and loaded.nprobe == index.nprobe and loaded.meta == {"generation": 3}
    # The exact vectors are a read-only map of the .npy file, not a copy in memory.
    assert isinstance(loaded._exact, np.memmap) and not loaded._exact.flags.writeable
    for one in (queries, queries[:1]):
        D0, I0 = index.search(one, K)
        D1, I1 = loaded.search(one, K)
        np.testing.assert_array_equal(I0, I1)
        np.testing.assert_array_equal(D0, D1)
    np.testing.assert_array_equal(loaded.vectors_of(np.array([5, 17])), data[0][[5, 17]])
    assert loaded.matrix() is None  # no all-vectors matrix: callers take the search path
    # The map is advised for random reads (MADV_RANDOM); advice on an array with no map is a no-op.
    from rq.index.compressed import _random_access

    _random_access(np.zeros(3, np.float32))
    _random_access(loaded._exact)
    np.testing.assert_array_equal(loaded.vectors_of(np.array([N - 1])), data[0][[N - 1]])
    header = json.loads(path.read_bytes()[14:].decode(errors="ignore").split("\n")[0][: path.stat().st_size])
    assert header["payload_bytes"] == 0 and set(header["parts"]) == {".ivf", ".npy"}
    # Code bytes + an 8-byte id a vector in the FAISS file (40 at 384 dims), plus small quantisers.
    assert side(path, ".ivf").stat().st_size < N * 16 + 1_000_000


def test_the_faiss_file_opens_with_the_mmap_flag_and_answers(data, built):
    import faiss

    index, path = built
    raw = faiss.read_index(str(side(path, ".ivf")), faiss.IO_FLAG_MMAP)
    invlists = faiss.extract_index_ivf(raw).invlists
    # Mapped inverted lists are FAISS's on-disk kind, not lists read into memory.
    assert type(faiss.downcast_InvertedLists(invlists)).__name__ == "OnDiskInvertedLists"
    faiss.extract_index_ivf(raw).nprobe = index.nprobe
    _, I = raw.search(data[1][:5], K)
    assert (I >= 0).all()


def test_the_build_trains_a_plain_ivfpq_and_reports_each_step(data):
    import faiss

    from rq.index.compressed import build_ivfpq

    vectors = data[0][:MIN_COMPRESSED]
    timings = {}
    index, nprobe, _ = build_ivfpq(vectors, threads=1, shard_rows=4_000, timings=timings)
    # No OPQ rotation and no polysemous training: both cost minutes at d=384 and buy nothing the
    # exact re-ranking does not (benchmarks/RESULTS.md, issue 17).
    inner = faiss.downcast_index(index)
    assert type(inner).__name__ == "IndexIVFPQ" and not inner.do_polysemous_training
    assert len(timings["shard_s"]) == 3 and timings["nprobe"] == nprobe  # 10,000 rows in shards of 4,000
    assert timings["train_s"] > 0 and timings["train_rows"] == MIN_COMPRESSED and timings["nprobe_s"] > 0


@pytest.mark.parametrize("part", [".ivf", ".npy"])
def test_a_damaged_part_is_refused_on_load_and_by_the_manifest_checks(built, tmp_path, part):
    _, path = built
    copy = tmp_path / "vectors.faiss"
    for suffix in ("", ".ivf", ".npy"):
        side(copy, suffix).write_bytes(side(path, suffix).read_bytes())
    names = [copy.name + s for s in ("", ".ivf", ".npy")]
    records = integrity.record_files(tmp_path, names)
    target = side(copy, part)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in place: same size, caught by the sha256
    target.write_bytes(bytes(data))
    assert integrity.file_problems(tmp_path, records, settled_ns=0) == {target.name: "damaged"}
    target.write_bytes(bytes(data[: len(data) // 2]))  # truncated: refused by the load itself
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        VectorIndex.load(copy, dim=DIM)
    target.unlink()
    with pytest.raises(ArchiveError, match="missing"):
        VectorIndex.load(copy, dim=DIM)


def test_auto_picks_the_compressed_kind_only_past_compressed_above():
    vectors = clustered(MIN_COMPRESSED + 1, 3)
    ids = np.arange(len(vectors))
    assert VectorIndex.build(vectors, ids, compressed_above=len(vectors), threads=1).kind == "flat"
    small = VectorIndex.build(vectors[:500], ids[:500], kind="ivfpq", threads=1)
    assert small.kind == "flat"  # too few vectors to train PQ: exact search, not a crash
    with pytest.raises(ValueError, match="0..n-1"):
        VectorIndex.build(vectors, ids + 1, kind="ivfpq", threads=1)


def test_the_settings_name_and_validate_the_compressed_kind():
    assert Settings().compressed_above == 5_000_000 and Settings().vector_index == "auto"
    assert Settings(vector_index="ivfpq").vector_index == "ivfpq"
    with pytest.raises(ConfigError, match="compressed_above"):
        Settings(compressed_above=-1)
    with pytest.raises(ConfigError, match="vector_index"):
        Settings(vector_index="pq")
