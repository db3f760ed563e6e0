"""Sentence embeddings through ONNX Runtime, so a search in a new process never imports torch.

An ``OnnxEmbedder`` loads an export made by rq.index.encoders.onnx_export: numpy,
onnxruntime and tokenizers only (about 0.1 s of imports, against 4-5 s for torch and
sentence-transformers). Queries always go through the fp32 graph; ``bulk`` picks the
graph for many texts ("int8": 1.5-2.5x torch's throughput, by CPU, for -0.003 nDCG@10 on SciFact).
Every file is checked against the export's sidecar before it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rq.errors import ArchiveError, RqError
from rq.index.encoders.batches import encode_in_batches
from rq.index.encoders.model import (
    BUNDLED,
    BUNDLED_NAME,
    load_tokenizer,
    model_fingerprint,
    piece_counts,
    resolve_model,
)
from rq.index.encoders.sidecar import (
    INT8_RECIPE,
    OUTPUT,
    read_sidecar,
    sha256_file,
    stamp,
)
from rq.threads import usable_cpus

Progress = Callable[[int, int], None]

BULK_PRECISIONS = ("fp32", "int8")
# Intra-op threads for one query (capped by the usable CPUs). Measured on 2 cores with SciFact
# queries (benchmarks/bench_speed.py): 1 thread p50 6.8 ms / p99 12.4 ms, 2 threads 4.7 / 9.8 ms,
# with busy-waiting off so an idle query session leaves the cores alone. More threads than two
# only add hand-over cost for a few dozen tokens.
QUERY_THREADS = 2


class OnnxEmbedder:
    """Encodes texts like rq.index.encoders.torch_encoder.Embedder, with onnxruntime and tokenizers alone.

    ``model_id`` is the one rq.index.encoders.torch_encoder.Embedder gives for the same model folder, so indexes and
    embedding caches built by either serve both. Queries always go through the fp32 graph;
    ``bulk`` chooses the graph ``encode`` uses for many texts.
    """

    def __init__(self, export_dir: Path, model_name: str = "all-MiniLM-L6-v2", threads: int = 0,
                 batch_size: int = 32, bulk: str = "fp32", query_threads: int = QUERY_THREADS):
        if bulk not in BULK_PRECISIONS:
            raise RqError(f"bulk precision {bulk!r}: use one of {', '.join(BULK_PRECISIONS)}")
        self.export_dir = Path(export_dir)
        self.export_key = self.export_dir.name  # what an index's manifest records it was built with
        sidecar = read_sidecar(self.export_dir)
        if sidecar is None:
            raise ArchiveError(f"{self.export_dir}: no ONNX export of the model here")
        self.sidecar = sidecar
        self.name = BUNDLED_NAME if model_name in BUNDLED else model_name
        self.path = resolve_model(model_name)
        fingerprint = model_fingerprint(self.path)
        if sidecar.get("model_fingerprint") != fingerprint:
            raise ArchiveError(f"{self.export_dir}: the ONNX export is of another version of {self.name} "
                               f"({sidecar.get('model_fingerprint')}, now {fingerprint}); "
                               "`rq index` exports it again")
        self._model_id = f"{self.name}@{fingerprint}"
        if bulk == "int8" and ("int8" not in sidecar["files"] or sidecar.get("int8_recipe") != INT8_RECIPE):
            bulk = "fp32"
        self.bulk = bulk
        self.threads = threads or usable_cpus()
        self.query_threads = min(query_threads or QUERY_THREADS, self.threads)
        self.batch_size = batch_size
        settings = sidecar["tokenizer"]
        self._max_length = int(settings["max_length"])
        self._lower = bool(settings.get("do_lower_case"))
        self._pad_id = int(settings.get("pad_id", 0))
        self._tokenizer_file = self.path / settings.get("file", "tokenizer.json")
        self._tokenizer = None  # truncating, for the model
        self._counter = None  # not truncating, for count_pieces
        self._sessions: dict[tuple[str, int], object] = {}
        # The query graph's checksum is verified now, so a damaged export shows at load time,
        # where the caller can still fall back.
        self._verified: dict[str, tuple] = {}
        self._verify("fp32")

    # -- the surface rq.index.encoders.torch_encoder.Embedder offers

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def cache_key(self) -> str:
        """Key for cached passage vectors: int8 ones are kept apart from exact ones (torch or
        fp32 ONNX, which agree to 1e-4), so choosing the exact path later embeds again."""
        return self._model_id if self.bulk == "fp32" else f"{self._model_id}+int8"

    @property
    def dim(self) -> int:
        return int(self.sidecar["dim"])

    @property
    def max_pieces(self) -> int:
        return self._max_length - 2

    def count_pieces(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded (as the torch encoder counts them)."""
        if self._counter is None:
            self._counter = load_tokenizer(self._tokenizer_file)
        return piece_counts(self._counter, texts)

    def encode(self, texts: Sequence[str], batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        """Vectors of ``texts`` in their order, float32, shape (n, dim), unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        session = self._session(self.bulk, self.threads)
        encodings = self._tokenize(texts)
        return encode_in_batches(_longest_first(encodings), batch_size, self.dim,
                                 lambda idx: self._run(session, [encodings[i] for i in idx]), progress)

    def batch_order(self, texts: Sequence[str]) -> np.ndarray:
        """The order encode() runs ``texts`` in, cut into batches of batch_size: which texts share a
        batch matters to the int8 graph (its activations are quantised per batch), so a run that
        spreads the work (rq.index.encoders.on_ray) forms the very same batches."""
        return _longest_first(self._tokenize(list(texts)))

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, shape (dim,), through the fp32 graph on ``query_threads`` threads."""
        session = self._session("fp32", self.query_threads)
        return self._run(session, self._tokenize([text]))[0]

    # -- internals

    def _tokenize(self, texts: list[str]):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self._tokenizer_file, self._max_length)
        texts = [t.strip() for t in texts]
        if self._lower:
            texts = [t.lower() for t in texts]
        return self._tokenizer.encode_batch(texts)

    def _run(self, session, encodings) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        vectors = session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        vectors = np.asarray(vectors, dtype=np.float32)
        # The graph normalises already; this keeps unit length exact in float32.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _verify(self, kind: str) -> None:
        """Check the sizes and sha256 of a graph and its weights against the sidecar.

        The sha256 is computed again only when a file is no longer the one the export wrote
        (another inode, size or mtime: copied, restored, edited): files of an export are never
        rewritten in place, and hashing the 90 MB of fp32 weights would add 75 ms to every
        cold search."""
        stamps = []
        for role in ("graph", "data"):
            entry = self.sidecar["files"][kind][role]
            path = self.export_dir / entry["file"]
            try:
                stat = path.stat()
                if stat.st_size != entry["bytes"]:
                    raise ArchiveError(f"{path}: ONNX export is truncated ({stat.st_size} of {entry['bytes']} "
                                       "bytes); `rq index` exports it again")
                if list(stamp(stat)) == entry.get("stamp"):
                    stamps.append(stamp(stat))
                    continue
                digest = sha256_file(path)
            except OSError as exc:
                raise ArchiveError(f"{path}: ONNX export unreadable ({exc.strerror or exc}); "
                                   "`rq index` exports it again") from None
            if digest != entry["sha256"]:
                raise ArchiveError(f"{path}: ONNX export fails its checksum; `rq index` exports it again")
            stamps.append(stamp(stat))
        self._verified[kind] = tuple(stamps)

    def _session(self, kind: str, threads: int):
        key = (kind, threads)
        session = self._sessions.get(key)
        if session is not None:
            return session
        import onnxruntime as ort

        files = self.sidecar["files"][kind]
        graph = self.export_dir / files["graph"]["file"]
        data = self.export_dir / files["data"]["file"]
        # Files of an export are never rewritten in place (a new export gets new names), so
        # the same inode, size and mtime as at verification mean the same bytes.
        try:
            now = (stamp(graph.stat()), stamp(data.stat()))
        except OSError:
            now = None
        if self._verified.get(kind) != now:
            self._verify(kind)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if threads > 1 and (kind, threads) == ("fp32", self.query_threads):
            # A query session idles between calls: no busy-waiting worker on a shared core.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            # By path: ONNX Runtime maps the weights file into memory rather than copying it.
            session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ArchiveError(f"{graph}: ONNX Runtime cannot load the export ({str(exc).splitlines()[0]}); "
                               "`rq index` exports it again") from None
        self._sessions[key] = session
        return session


def _longest_first(encodings) -> np.ndarray:
    """Text numbers by word pieces, longest first, ties in input order (texts of similar length
    share a batch, so little compute goes to padding)."""
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    return np.argsort(-lengths, kind="stable")
