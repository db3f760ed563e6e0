"""Sentence embeddings with a local sentence-transformers model; nothing reaches a model hub.

torch and sentence_transformers take seconds to import, so they are imported on
the first encode, never at module import: commands that do not embed stay fast.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import numpy as np

from rq.errors import RqError
from rq.index.encoders.batches import encode_in_batches
from rq.index.encoders.model import (
    BUNDLED,
    BUNDLED_NAME,
    load_tokenizer,
    model_fingerprint,
    piece_counts,
    resolve_model,
)
from rq.threads import usable_cpus

Progress = Callable[[int, int], None]

class Embedder:
    """Encodes texts to L2-normalised float32 vectors with a local model, loaded on first use."""

    def __init__(self, name: str = BUNDLED_NAME, threads: int = 0, batch_size: int = 32):
        self.name = BUNDLED_NAME if name in BUNDLED else name
        self.path = resolve_model(name)
        self.threads = threads or usable_cpus()
        self.batch_size = batch_size
        self.query_threads = 1
        self._model = None
        self._tokenizer = None
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        """Stable key for embedding caches: the model name plus a fingerprint of its files."""
        if self._model_id is None:
            self._model_id = f"{self.name}@{model_fingerprint(self.path)}"
        return self._model_id

    @property
    def dim(self) -> int:
        # The pooling config states the dimension, so asking for it does not load torch.
        pooling = self.path / "1_Pooling" / "config.json"
        if self._model is None and pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        model = self.model
        # sentence-transformers 6 renamed the method; older versions only have the long name.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_pieces(self) -> int:
        """Word pieces of text the model reads, special tokens excluded."""
        config = self.path / "sentence_bert_config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("max_seq_length", 256)) - 2
        return int(self.model.max_seq_length) - 2

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        # The model is local; these make sure no library goes looking for an update online.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr tells the user nothing

        # Deliberate thread count: torch's default may count cores the process cannot use.
        torch.set_num_threads(self.threads)
        try:
            return SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise RqError(f"model {self.name}: cannot load from {self.path} ({exc})") from None

    def count_pieces(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded; uses only the fast tokenizer (no torch)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.path / "tokenizer.json")
        return piece_counts(self._tokenizer, texts)

    def encode(self, texts: Sequence[str], batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        """Vectors of ``texts`` in their order, float32, shape (n, dim), unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        model = self.model
        if len(texts) == 1:
            vector = self._encode_one(texts[0])
            if progress is not None:
                progress(1, 1)
            return vector
        return encode_in_batches(self.batch_order(texts), batch_size, self.dim, lambda idx: model.encode(
            [texts[i] for i in idx], batch_size=len(idx), convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False), progress)

    def batch_order(self, texts: Sequence[str]) -> list[int]:
        """The order encode() runs ``texts`` in, cut into batches of batch_size: longest first
        (by characters), ties in input order."""
        return sorted(range(len(texts)), key=lambda i: -len(texts[i]))

    def _encode_one(self, text: str) -> np.ndarray:
        """A single short text on one thread: splitting a ten-token forward pass across
        threads saves ~1.5 ms on an idle 2-core machine but costs 5x at the 99th
        percentile when other processes hold the cores (benchmarks/bench_retrieval.py)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(self.query_threads)
        try:
            vector = self.model.encode([text], batch_size=1, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(vector, dtype=np.float32).reshape(1, -1)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, shape (dim,)."""
        return self.encode([text])[0]
