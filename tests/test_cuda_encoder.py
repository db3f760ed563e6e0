"""The GPU encoder's pipeline (rq.index.encoders.cuda_encoder), run here on the CPU in float32 with
the real bundled model: the torch encoder's vectors, in input order, tokenized in parallel;
and the fallback to the CPU when cuda is asked for where torch sees no GPU."""

import re
from pathlib import Path

import numpy as np
import pytest

from rq.index.encoders import factory
from rq.index.encoders.cuda_encoder import CudaEmbedder
from rq.settings import Settings

QUEUE = Path(__file__).parents[1] / "src" / "rq" / "data" / "resources-queue.md"
PASSAGES = [
    "Mean pooling averages the token vectors of a passage, counting only real word pieces.",
    "A GPU runs one large batch of similar-length texts far better than many small ones.",
    "Tokenisation in Rust releases the interpreter lock, so threads tokenise in parallel.",
    "   leading and trailing spaces are stripped first   ",
    "x",
]
# Over the model's 256 word pieces: truncated the way sentence-transformers truncates.
LONG = " ".join(["Dense retrieval embeds passages and queries into one space; "
                 "nearest neighbours by inner product are the answers."] * 30)


def texts() -> list[str]:
    # The queue's lines without their URLs (long runs of word pieces that only slow the test).
    lines = [re.sub(r"\(https?://[^)]*\)", "", line).strip() for line in QUEUE.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    # Short and long interleaved, so the length sort really reorders them.
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i < len(PASSAGES):
            mixed.append(PASSAGES[i])
    return mixed + [LONG]


@pytest.fixture(scope="module")
def cpu_pipeline():
    # One torch thread: on a shared 2-core machine two threads wait on each other (3-8x slower).
    return CudaEmbedder("all-MiniLM-L6-v2", device="cpu", dtype="float32", threads=1, tokenize_threads=2)


def test_on_the_cpu_in_float32_it_gives_the_torch_encoders_vectors_in_order(cpu_pipeline, embedder):
    sample = texts()
    assert len(sample) >= 30 and len({len(t) for t in sample}) > 20
    assert max(embedder.count_pieces(sample)) > embedder.max_pieces  # one is truncated
    # Batches of 4 with two tokenizer threads: several batches are tokenized ahead, out of order.
    cpu_pipeline.batch_size = 4
    try:
        ours = cpu_pipeline.encode(sample)
    finally:
        cpu_pipeline.batch_size = 512
    theirs = embedder.encode(sample, batch_size=8)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(sample), 384)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # In input order: each row is nearest to its own text's exact vector.
    assert ((ours @ theirs.T).argmax(axis=1) == np.arange(len(sample))).sum() >= len(sample) - 1


def test_progress_counts_every_text_and_a_small_batch_size_does_not_shrink_the_batch(cpu_pipeline):
    seen = []
    sample = texts()[:10]
    cpu_pipeline.encode(sample, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 10)]  # one batch: the encoder's 512, not the 2 asked for


def test_an_empty_list_gives_no_vectors(cpu_pipeline):
    out = cpu_pipeline.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_fp16_vectors_have_their_own_cache_key(cpu_pipeline):
    half = CudaEmbedder("all-MiniLM-L6-v2", device="cpu")
    assert half.cache_key == half.model_id + "+fp16"
    assert cpu_pipeline.cache_key == cpu_pipeline.model_id  # float32: the exact vectors


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA GPU")
def test_cuda_without_a_gpu_builds_on_the_cpu_and_says_so_once():
    said = []
    chosen = factory.embedder_for_build(Settings(embed_device="cuda", embed_backend="torch"), notice=said.append)
    assert not isinstance(chosen, CudaEmbedder)
    assert len(said) == 1 and "cuda" in said[0] and "CPU" in said[0] and "\n" not in said[0]


def test_a_visible_gpu_with_a_cpu_build_of_torch_falls_back_and_says_so(monkeypatch, tmp_path):
    problem = factory.torch_gpu_problem()
    if problem is None:
        pytest.skip("torch here sees a CUDA GPU")
    device_file = tmp_path / "nvidiactl"
    device_file.touch()
    monkeypatch.setattr(factory, "NVIDIA_DEVICE", device_file)  # as if a driver were there
    said = []
    chosen = factory.embedder_for_build(Settings(embed_device="cuda", embed_backend="torch"), notice=said.append)
    assert not isinstance(chosen, CudaEmbedder)
    assert said == [f"embed_device is cuda but {problem}: embedding on the CPU"]
    said.clear()
    assert factory.embed_device(Settings(embed_device="auto"), said.append) == "cpu" and said == []


@pytest.mark.parametrize("settings, dtype", [
    (Settings(), "float16"),  # int8 on the CPU: approximate vectors are fine, so fp16
    (Settings(embed_bulk="fp32"), "float32"),  # exact vectors asked for: exact on the GPU too
    (Settings(embed_backend="torch"), "float32"),
])
def test_a_gpu_embeds_in_fp16_unless_exact_vectors_are_asked_for(settings, dtype):
    assert factory.gpu_dtype(settings) == dtype


def test_telling_a_cpu_build_of_torch_imports_no_torch(tmp_path):
    import subprocess
    import sys

    if factory.torch_gpu_problem() is None:
        pytest.skip("torch here sees a CUDA GPU")
    (tmp_path / "nvidiactl").touch()
    code = ("import sys; from pathlib import Path; from rq.index.encoders import factory; "
            "from rq.settings import Settings; "
            f"factory.NVIDIA_DEVICE = Path({str(tmp_path / 'nvidiactl')!r}); "
            "said = []; device = factory.embed_device(Settings(embed_device='cuda'), said.append); "
            "print(device, len(said), 'torch' in sys.modules)")
    env = {"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["cpu", "1", "False"], done.stderr
