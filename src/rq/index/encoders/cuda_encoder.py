"""Bulk passage embeddings on a CUDA GPU: the model's transformer in fp16, large batches of texts
of similar length, and the tokenizer running ahead of the GPU in threads.

The pipeline is the model's own sentence-transformers one (modules.json: Transformer, mean
Pooling, Normalize), written out in torch so it can run in fp16 on the device: word pieces
truncated at the model's ``max_seq_length``, the mean of the token vectors over the attention
mask (computed in float32), L2 normalisation. On an H200 the GPU embeds ~9,600 SciFact
abstracts a second (issue 17), faster than one thread tokenizes them, so batches are tokenized
by a small thread pool (``tokenizers`` releases the GIL in ``encode_batch``) while the GPU
runs the batch before them. ``device`` and ``dtype`` are parameters: on the CPU in float32 the
same pipeline gives the torch encoder's vectors (cosine >= 0.9999; tests/test_cuda_encoder.py).

fp16 vectors are cached under the model id plus "+fp16" (rq.index.encoders.cache), apart from
exact ones. Single texts (queries) go through the same pipeline; rq's queries use the ONNX or
torch encoder of rq.index.encoders.factory.make_embedder, not this one. torch and transformers
are imported on the first encode, never at module import.
"""

from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from rq.errors import RqError
from rq.index.encoders.model import BUNDLED_NAME, load_tokenizer
from rq.index.encoders.torch_encoder import Embedder
from rq.threads import usable_cpus

Progress = Callable[[int, int], None]

# Texts per forward pass on the GPU. A pass over the CPU's 32 texts leaves a large GPU idle
# (launching six layers' kernels costs more than their arithmetic); at 512 texts of up to 256
# word pieces it is busy (~9,600 docs/s in fp16 on an H200, issue 17), while the activations
# (fp16, 12 heads of 256 x 256 attention per text) stay near a GB, which any CUDA GPU holds.
# Longest texts first: the first batch is the largest, so running out of memory shows at once.
GPU_BATCH = 512
# Tokenizer threads: each tokenizes a whole batch, up to AHEAD batches per thread ahead of the
# GPU (a batch of 512 ids is ~1 MB, so the queue stays small). One process tokenizes ~9,000
# SciFact abstracts a second, the GPU's own pace: a few threads keep it fed.
MAX_TOKENIZE_THREADS = 8
AHEAD = 2
# Texts handed over per call by a build (rq.index.build commits each call's vectors to the cache):
# the CPU's 512 would be a single GPU batch a call, with nothing to tokenize ahead of it; 16 batches
# are ~1 s of an H200's time, so a killed run still loses about a second.
COMMIT_EVERY = 16 * GPU_BATCH
# dtype name -> the suffix of the vector cache key ("" for vectors equal to the exact ones).
DTYPES = {"float32": "", "float16": "+fp16", "bfloat16": "+bf16"}


class CudaEmbedder(Embedder):
    """Encodes texts to unit-length float32 vectors like rq.index.encoders.torch_encoder.Embedder,
    with the model's transformer on ``device`` in ``dtype`` ("float16" by default; "float32"
    gives exact vectors). Same model id, count_pieces and max_pieces as that encoder."""

    def __init__(self, name: str = BUNDLED_NAME, device: str = "cuda", dtype: str = "float16",
                 threads: int = 0, batch_size: int = GPU_BATCH, tokenize_threads: int = 0):
        if dtype not in DTYPES:
            raise RqError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        super().__init__(name, threads=threads, batch_size=batch_size)
        self.device = device
        self.dtype = dtype
        self.tokenize_threads = tokenize_threads or min(MAX_TOKENIZE_THREADS, usable_cpus())
        check_pipeline(self.path)
        config = _read_json(self.path / "sentence_bert_config.json")
        self.max_length = int(config.get("max_seq_length", 256))  # word pieces, special tokens included
        self._lower = bool(config.get("do_lower_case"))
        self._pad_id = 0
        self._net = None
        self._truncating = None

    commit_every = COMMIT_EVERY

    @property
    def cache_key(self) -> str:
        """Key for cached passage vectors: fp16 (or bf16) ones are kept apart from exact ones."""
        return self.model_id + DTYPES[self.dtype]

    @property
    def net(self):
        """The transformer (transformers AutoModel) on ``device`` in ``dtype``, loaded on first use."""
        if self._net is None:
            self._net = self._load_net()
        return self._net

    def encode(self, texts: Sequence[str], batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        """Vectors of ``texts`` in their order, float32, shape (n, dim), unit length. A
        ``batch_size`` below the encoder's own (512) does not lower it: an index build passes the
        CPU's ``embed_batch_size`` (32), and batches that small leave a GPU idle."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = max(batch_size or 0, self.batch_size)
        net = self.net
        import torch

        threads = torch.get_num_threads()
        if self.device == "cpu":  # this encoder's threads while it runs, the process's own after
            torch.set_num_threads(self.threads)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0

        def collect(idx: np.ndarray, vectors) -> None:
            nonlocal done
            out[idx] = vectors.cpu().numpy()  # waits for this batch on the device
            done += len(idx)
            if progress is not None:
                progress(done, len(texts))

        try:
            launched = None
            for idx, ids, mask in self.tokenized(texts, order, size):
                # A batch is launched before the one before it is copied back, so the GPU has the
                # next batch queued while this thread waits: it never idles between batches.
                current = (idx, self._forward(net, ids, mask))
                if launched is not None:
                    collect(*launched)
                launched = current
            if launched is not None:
                collect(*launched)
        finally:
            torch.set_num_threads(threads)
        return out

    def tokenized(self, texts: Sequence[str], order: Sequence[int],
                  size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(text numbers, ids, attention mask) of each batch of ``size`` texts taken in ``order``,
        ids and mask int64 padded to the batch's longest text. Up to ``AHEAD`` batches per thread
        are tokenized ahead of the one handed out, so the caller's GPU work overlaps them."""
        self._tokenizer_for_model()  # loaded once here, before the threads share it
        batches = iter([np.asarray(order[s:s + size]) for s in range(0, len(order), size)])
        with ThreadPoolExecutor(self.tokenize_threads, thread_name_prefix="rq-tokenize") as pool:
            pending: deque = deque()

            def submit() -> None:
                batch = next(batches, None)
                if batch is not None:
                    pending.append((batch, pool.submit(self._tokenize, [texts[i] for i in batch])))

            for _ in range(self.tokenize_threads * AHEAD):
                submit()
            while pending:
                batch, future = pending.popleft()
                submit()
                ids, mask = future.result()
                yield batch, ids, mask

    # -- internals

    def _tokenizer_for_model(self):
        if self._truncating is None:
            self._truncating = load_tokenizer(self.path / "tokenizer.json", self.max_length)
            # Padded positions are masked out, so any id would do; the tokenizer's own keeps the
            # inputs what sentence-transformers builds.
            self._pad_id = self._truncating.token_to_id(_pad_token(self.path)) or 0
        return self._truncating

    def _tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """What sentence-transformers' Transformer module feeds the model: texts stripped (and
        lowercased when its config says so), word pieces with special tokens, truncated."""
        texts = [t.strip() for t in texts]
        if self._lower:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer_for_model().encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        return ids, mask

    def _forward(self, net, ids: np.ndarray, mask: np.ndarray):
        """The batch's vectors as a float32 tensor on the device (launched; on a GPU not yet
        computed): mean pooling over the attention mask, then L2 normalisation, as the model's
        1_Pooling (mean tokens) and 2_Normalize modules do; pooled in float32."""
        import torch

        with torch.inference_mode():
            ids_t = torch.from_numpy(ids).to(self.device, non_blocking=True)
            mask_t = torch.from_numpy(mask).to(self.device, non_blocking=True)
            hidden = net(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
            weights = mask_t.unsqueeze(-1).to(torch.float32)
            summed = (hidden.to(torch.float32) * weights).sum(dim=1)
            mean = summed / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    def _load_net(self):
        # The model is local; these make sure no library goes looking for an update online.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            net = AutoModel.from_pretrained(str(self.path), local_files_only=True)
            return net.to(device=self.device, dtype=getattr(torch, self.dtype)).eval()
        except (OSError, ValueError, RuntimeError) as exc:
            raise RqError(f"model {self.name}: cannot load on {self.device} in {self.dtype} "
                          f"({str(exc).splitlines()[0] if str(exc) else exc})") from None


def check_pipeline(path: Path) -> None:
    """Refuse (RqError) a model whose sentence-transformers pipeline is not the one written out
    here: Transformer, then Pooling by the mean of the tokens alone, then Normalize."""
    modules = _read_json(path / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules] if isinstance(modules, list) else []
    pooling = _read_json(path / "1_Pooling" / "config.json")
    pooling = pooling if isinstance(pooling, dict) else {}
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise RqError(f"model at {path}: the GPU encoder does Transformer, mean pooling and Normalize only "
                      f"(this model: {', '.join(kinds) or 'no modules.json'}; pooling {', '.join(modes) or '?'})")


def _read_json(path: Path):
    """A JSON file's content; {} when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _pad_token(path: Path) -> str:
    token = _read_json(path / "special_tokens_map.json").get("pad_token", "[PAD]")
    return str(token.get("content", "[PAD]") if isinstance(token, dict) else token)
