"""Sentence embeddings through ONNX Runtime, so a search in a new process never imports torch.

``rq index`` exports the sentence-transformers model once into the index folder
(``onnx/``): one graph from (input_ids, attention_mask, token_type_ids) straight
to the pooled, L2-normalised sentence vector, and a JSON sidecar holding the
sha256 of every graph file, the fingerprint of the model folder it came from and
the tokenizer settings. Loading it takes numpy, onnxruntime and tokenizers only
(about 0.1 s of imports, against 4-5 s for torch and sentence-transformers).

Two graphs are written: ``fp32`` (attention, layer norm and GELU fused by ONNX
Runtime's BERT optimiser; agrees with sentence-transformers to cosine > 0.9999;
always used for queries) and, when asked for, ``int8`` (matrix-product weights
dynamically quantised per channel; for passages: 2.5x torch's throughput on SciFact
abstracts at an nDCG@10 cost of 0.002, see benchmarks/bench_speed.py). Each graph's
weights sit in a .data file that ONNX Runtime maps into memory. Exporting needs torch,
transformers and onnx (seconds, once per index folder).

``make_embedder`` and ``ensure_export`` are what rq.index.build calls; ``vectors_key`` and
``lookup_vectors`` keep int8 passage vectors apart from exact ones in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rq.errors import ArchiveError, ConfigError, RqError

Progress = Callable[[int, int], None]

EXPORT_DIR = "onnx"  # inside the index folder
SIDECAR = "encoder.json"
FORMAT = 1
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"
BULK_PRECISIONS = ("fp32", "int8")
# Intra-op threads for one query (capped by the usable CPUs). Measured on 2 cores with SciFact
# queries (benchmarks/bench_speed.py): 1 thread p50 6.8 ms / p99 12.4 ms, 2 threads 4.7 / 9.8 ms,
# with busy-waiting off so an idle query session leaves the cores alone. More threads than two
# only add hand-over cost for a few dozen tokens.
QUERY_THREADS = 2


# --------------------------------------------------------------------------- model description


def _st_layout(model_path: Path) -> dict:
    """What the sentence-transformers folder computes: transformer folder, pooling, normalisation,
    tokenizer settings. Raises RqError for module stacks the export does not reproduce."""
    modules_file = model_path / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else [
        {"type": "sentence_transformers.models.Transformer", "path": ""},
        {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
    ]
    transformer = pooling = None
    normalize = False
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        if kind == "Transformer" and transformer is None:
            transformer = model_path / module.get("path", "")
        elif kind == "Pooling" and pooling is None:
            pooling = model_path / module.get("path", "")
        elif kind == "Normalize":
            normalize = True
        else:
            raise RqError(f"model {model_path}: module {module['type']} has no ONNX export in rq")
    if transformer is None:
        raise RqError(f"model {model_path}: no transformer module to export")
    mode = "mean"
    if pooling is not None and (pooling / "config.json").is_file():
        config = json.loads((pooling / "config.json").read_text())
        modes = [m for m in ("cls_token", "mean_tokens", "max_tokens") if config.get(f"pooling_mode_{m}")]
        other = [k for k, v in config.items() if k.startswith("pooling_mode_") and v
                 and k.removeprefix("pooling_mode_") not in ("cls_token", "mean_tokens", "max_tokens")]
        if len(modes) != 1 or other:
            raise RqError(f"model {model_path}: pooling {config} has no ONNX export in rq")
        mode = {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}[modes[0]]
    st_config = {}
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        if (transformer / name).is_file():
            st_config = json.loads((transformer / name).read_text())
            break
    hf_config = json.loads((transformer / "config.json").read_text())
    max_length = int(st_config.get("max_seq_length") or 512)
    max_length = min(max_length, int(hf_config.get("max_position_embeddings", max_length)))
    tokenizer = json.loads((transformer / "tokenizer.json").read_text())
    return {
        "transformer": transformer,
        "pooling": mode,
        # rq's Embedder always asks sentence-transformers for unit vectors, so the graph always
        # normalises, whether or not the folder has a Normalize module.
        "normalize": True,
        "has_normalize_module": normalize,
        "max_length": max_length,
        "do_lower_case": bool(st_config.get("do_lower_case", False)),
        "tokenizer_lowercase": _normalizer_lowercases(tokenizer.get("normalizer")),
        "pad_id": _pad_id(tokenizer),
        "dim": int(hf_config["hidden_size"]),
    }


def _normalizer_lowercases(normalizer) -> bool:
    if not normalizer:
        return False
    if normalizer.get("type") == "Sequence":
        return any(_normalizer_lowercases(n) for n in normalizer.get("normalizers", []))
    return bool(normalizer.get("lowercase")) or normalizer.get("type") == "Lowercase"


def _pad_id(tokenizer: dict) -> int:
    padding = tokenizer.get("padding") or {}
    if "pad_id" in padding:
        return int(padding["pad_id"])
    for token in tokenizer.get("added_tokens", []):
        if token.get("content") in ("[PAD]", "<pad>"):
            return int(token["id"])
    return 0


# --------------------------------------------------------------------------- export


def export_onnx(model_path: Path, out_dir: Path, quantize: bool = True, optimize: bool = True) -> Path:
    """Export the sentence-transformers model in ``model_path`` into ``out_dir``; the fp32 graph's path.

    Each graph is a small .onnx file plus its weights in a .data file beside it, which
    ONNX Runtime maps into memory instead of parsing (session start 0.04 s instead of
    0.15 s). Every file of one export carries a fresh token in its name, and the sidecar,
    which names them and holds their sha256, is replaced last and atomically: a reader
    sees the old export or the new one, never a mix, and a run killed midway leaves only
    stray files that the next export removes.
    """
    with _quiet_libraries():
        return _export(Path(model_path), Path(out_dir), quantize, optimize)


@contextlib.contextmanager
def _quiet_libraries():
    """The exporter's libraries print progress bars and configure the root logger (after which
    every DEBUG record of bm25s and others would reach stderr): silence both, then restore."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    bars = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        yield
    finally:
        root.setLevel(level)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        if bars is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = bars


def _export(model_path: Path, out_dir: Path, quantize: bool, optimize: bool) -> Path:
    import secrets
    import shutil
    import tempfile

    from rq.index.encoders.torch_encoder import model_fingerprint
    from rq.files import atomic_write_bytes, fsync_dir, fsync_file

    layout = _st_layout(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        raw = work / "raw.onnx"
        versions = _trace(layout, raw)
        graphs = {"fp32": work / "fp32.onnx"}
        if optimize:
            _optimize(raw, graphs["fp32"], layout)
        else:
            os.replace(raw, graphs["fp32"])
        if quantize:
            graphs["int8"] = work / "int8.onnx"
            _quantize(graphs["fp32"], graphs["int8"])
        token = secrets.token_hex(6)
        entries = {}
        for kind, inline in graphs.items():
            graph, data = _split_weights(inline, work, f"encoder-{token}.{kind}")
            entry = {}
            # Weights first, graph after: a graph under its final name always finds its weights.
            for role, path in (("data", data), ("graph", graph)):
                os.chmod(path, _new_file_mode())
                fsync_file(path)
                final = out_dir / path.name
                os.replace(path, final)
                stat = final.stat()
                entry[role] = {"file": final.name, "sha256": _sha256_file(final), "bytes": stat.st_size,
                               "stamp": list(_stamp(stat))}
            entries[kind] = entry
        fsync_dir(out_dir)
        sidecar = {
            "format": FORMAT,
            "model_fingerprint": model_fingerprint(model_path),
            "source": str(model_path),
            "dim": layout["dim"],
            "pooling": layout["pooling"],
            "normalize": layout["normalize"],
            "tokenizer": {
                "file": layout["transformer"].relative_to(model_path).joinpath("tokenizer.json").as_posix(),
                "max_length": layout["max_length"],  # word pieces, [CLS] and [SEP] included
                "truncation": "longest_first",
                "lowercase": layout["tokenizer_lowercase"],  # done by tokenizer.json's normaliser
                "do_lower_case": layout["do_lower_case"],  # sentence-transformers lowercases first
                "pad_id": layout["pad_id"],
            },
            "inputs": list(INPUTS),
            "output": OUTPUT,
            "opset": OPSET,
            "optimized": optimize,
            "files": entries,
            "exported_with": versions,
            "export_seconds": round(time.monotonic() - started, 2),
            "exported_at": time.time(),
        }
        atomic_write_bytes(out_dir / SIDECAR, json.dumps(sidecar, indent=2).encode())
        keep = {e["file"] for entry in entries.values() for e in entry.values()}
        for stale in out_dir.glob("encoder-*"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / entries["fp32"]["graph"]["file"]


def _split_weights(inline: Path, folder: Path, stem: str) -> tuple[Path, Path]:
    """Rewrite a one-file graph as ``stem``.onnx (structure) and ``stem``.data (weights)."""
    import onnx

    model = onnx.load(str(inline))
    graph = folder / f"{stem}.onnx"
    onnx.save_model(model, str(graph), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{stem}.data", size_threshold=1024)
    inline.unlink()
    return graph, folder / f"{stem}.data"


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _trace(layout: dict, target: Path) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    try:
        import onnx  # noqa: F401  (torch's exporter needs it to write the file)
    except ImportError:
        raise RqError("exporting the model to ONNX needs the onnx package (pip install onnx)") from None

    # The eager attention traces into plain MatMul/Softmax nodes that ONNX Runtime's
    # transformer optimiser fuses into one Attention node per layer.
    model = AutoModel.from_pretrained(str(layout["transformer"]), local_files_only=True,
                                      attn_implementation="eager").eval()
    pooling = layout["pooling"]

    class Sentence(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                pooled = hidden[:, 0]
            elif pooling == "max":
                pooled = (hidden + (mask - 1.0) * 1e9).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    wrapper = Sentence(model)
    # Two rows of different lengths, so no shape is baked in as a constant.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    axes[OUTPUT] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (ids, mask, torch.zeros_like(ids)), str(target), input_names=list(INPUTS),
                          output_names=[OUTPUT], dynamic_axes=axes, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)
    import onnxruntime
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__}


def _optimize(source: Path, target: Path, layout: dict) -> None:
    """Fuse attention, layer norm and GELU with ONNX Runtime's BERT optimiser (still fp32)."""
    import logging

    from onnxruntime.transformers import optimizer

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    hidden = layout["dim"]
    config = json.loads((layout["transformer"] / "config.json").read_text())
    model = optimizer.optimize_model(str(source), model_type="bert", num_heads=int(config["num_attention_heads"]),
                                     hidden_size=hidden, opt_level=1, use_gpu=False)
    model.save_model_to_file(str(target))


def _quantize(source: Path, target: Path) -> None:
    """int8 weights for every MatMul, per output channel; activations quantised on the fly."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)
    # The fused Attention nodes are outside ONNX's shape inference; their outputs are float.
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --------------------------------------------------------------------------- loading and encoding


def read_sidecar(export_dir: Path) -> dict | None:
    """The export's description, None when there is no export; ArchiveError when it is damaged."""
    path = Path(export_dir) / SIDECAR
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path}: ONNX export description unreadable ({exc}); "
                           "`rq index` exports it again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "fp32" not in data.get("files", {}):
        raise ArchiveError(f"{path}: ONNX export of another format; `rq index` exports it again")
    return data


class OnnxEmbedder:
    """Encodes texts like rq.index.encoders.torch_encoder.Embedder, with onnxruntime and tokenizers alone.

    ``model_id`` is the one rq.index.encoders.torch_encoder.Embedder gives for the same model folder, so indexes and
    embedding caches built by either serve both. Queries always go through the fp32 graph;
    ``bulk`` chooses the graph ``encode`` uses for many texts.
    """

    def __init__(self, export_dir: Path, model_name: str = "all-MiniLM-L6-v2", threads: int = 0,
                 batch_size: int = 32, bulk: str = "fp32", query_threads: int = QUERY_THREADS):
        from rq.index.encoders.torch_encoder import _BUNDLED, _BUNDLED_NAME, model_fingerprint, resolve_model
        from rq.index.vectors import usable_cpus

        if bulk not in BULK_PRECISIONS:
            raise RqError(f"bulk precision {bulk!r}: use one of {', '.join(BULK_PRECISIONS)}")
        self.export_dir = Path(export_dir)
        sidecar = read_sidecar(self.export_dir)
        if sidecar is None:
            raise ArchiveError(f"{self.export_dir}: no ONNX export of the model here")
        self.sidecar = sidecar
        self.name = _BUNDLED_NAME if model_name in _BUNDLED else model_name
        self.path = resolve_model(model_name)
        fingerprint = model_fingerprint(self.path)
        if sidecar.get("model_fingerprint") != fingerprint:
            raise ArchiveError(f"{self.export_dir}: the ONNX export is of another version of {self.name} "
                               f"({sidecar.get('model_fingerprint')}, now {fingerprint}); "
                               "`rq index` exports it again")
        self._model_id = f"{self.name}@{fingerprint}"
        if bulk == "int8" and "int8" not in sidecar["files"]:
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
        """Word pieces per text, special tokens excluded (rq.index.encoders.torch_encoder.Embedder counts the same way)."""
        if self._counter is None:
            self._counter = self._load_tokenizer(truncate=False)
        encodings = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def encode(self, texts: Sequence[str], batch_size: int | None = None,
               progress: Progress | None = None) -> np.ndarray:
        """Vectors of ``texts`` in their order, float32, shape (n, dim), unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or self.batch_size
        session = self._session(self.bulk, self.threads)
        encodings = self._tokenize(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        # Texts of similar length share a batch, so little compute goes to padding; longest
        # first, so the run's peak memory shows in its first batch.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._run(session, [encodings[i] for i in idx])
            done += len(idx)
            if progress is not None:
                progress(done, len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, shape (dim,), through the fp32 graph on ``query_threads`` threads."""
        session = self._session("fp32", self.query_threads)
        return self._run(session, self._tokenize([text]))[0]

    # -- internals

    def _load_tokenizer(self, truncate: bool):
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(self._tokenizer_file))
        except Exception as exc:  # tokenizers raises its own Exception type
            raise ArchiveError(f"{self._tokenizer_file}: cannot load the tokenizer ({exc})") from None
        # tokenizer.json may carry its own truncation and fixed padding (128 for all-MiniLM-L6-v2);
        # sentence-transformers overrides both, and so do we.
        tokenizer.no_padding()
        if truncate:
            tokenizer.enable_truncation(self._max_length, strategy="longest_first")
        else:
            tokenizer.no_truncation()
        return tokenizer

    def _tokenize(self, texts: list[str]):
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer(truncate=True)
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
                if list(_stamp(stat)) == entry.get("stamp"):
                    stamps.append(_stamp(stat))
                    continue
                digest = _sha256_file(path)
            except OSError as exc:
                raise ArchiveError(f"{path}: ONNX export unreadable ({exc.strerror or exc}); "
                                   "`rq index` exports it again") from None
            if digest != entry["sha256"]:
                raise ArchiveError(f"{path}: ONNX export fails its checksum; `rq index` exports it again")
            stamps.append(_stamp(stat))
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
            now = (_stamp(graph.stat()), _stamp(data.stat()))
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


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def export_dir_for(index_dir: Path) -> Path:
    return Path(index_dir) / EXPORT_DIR


def load_fast_embedder(index_dir: Path, model_name: str, threads: int = 0, batch_size: int = 32,
                       bulk: str = "fp32") -> OnnxEmbedder | None:
    """The ONNX embedder for the index in ``index_dir``; None when no export exists there.

    Raises ArchiveError when an export exists but cannot serve (damaged, another model
    version): the caller falls back to sentence-transformers and exports again.
    """
    folder = export_dir_for(index_dir)
    if not (folder / SIDECAR).is_file():
        return None
    return OnnxEmbedder(folder, model_name, threads=threads, batch_size=batch_size, bulk=bulk)


# --------------------------------------------------------------------------- choosing a path


BACKENDS = ("onnx", "torch")


def _backend(settings) -> str:
    backend = settings.embed_backend
    if backend not in BACKENDS:
        raise ConfigError(f"setting embed_backend: {backend!r} is not onnx or torch")
    return backend


def _bulk(settings) -> str:
    bulk = settings.embed_bulk
    if bulk not in BULK_PRECISIONS:
        raise ConfigError(f"setting embed_bulk: {bulk!r} is not {' or '.join(BULK_PRECISIONS)}")
    return bulk


def make_embedder(settings, notice: Callable[[str], None] | None = None):
    """The embedder a command should use: ONNX when the index folder holds a usable export,
    else sentence-transformers (marked ``fallback``), saying why on ``notice``.

    ``embed_backend = "torch"`` keeps sentence-transformers for queries and passages (the
    exact, slower path); ``embed_bulk`` picks the graph for passages ("int8" or "fp32").
    """
    from rq.paths import locate

    backend = _backend(settings)
    if backend == "onnx":
        try:
            fast = load_fast_embedder(locate(settings).index_dir, settings.model, threads=settings.threads,
                                      batch_size=settings.embed_batch_size, bulk=_bulk(settings))
        except ArchiveError as exc:
            fast = None
            if notice:
                notice(f"{exc}; using sentence-transformers meanwhile (slower start)")
        else:
            if fast is None and notice:
                notice("no ONNX export of the model in the index yet: using sentence-transformers "
                       "(slower start); `rq index` makes one")
        if fast is not None:
            return fast
    embedder = _torch_embedder(settings)
    embedder.fallback = backend == "onnx"
    return embedder


def _torch_embedder(settings):
    from rq.index.encoders.torch_encoder import Embedder

    return Embedder(settings.model, threads=settings.threads, batch_size=settings.embed_batch_size)


def ensure_export(index_dir: Path, settings, embedder=None, notice: Callable[[str], None] | None = None):
    """Export the model into ``index_dir`` when the onnx backend is on and the folder holds no
    usable export (seconds, once per index folder; needs torch, transformers and onnx). Call
    it under the index's writer lock. Returns the embedder a build should use: an
    OnnxEmbedder in place of None or of make_embedder's sentence-transformers fallback; an
    embedder the caller chose itself (tests, benchmarks) is returned as given, with no export.
    """
    if _backend(settings) != "onnx":
        return embedder if embedder is not None else _torch_embedder(settings)
    bulk = _bulk(settings)
    chosen = embedder is not None and not getattr(embedder, "fallback", False)
    if chosen and (not isinstance(embedder, OnnxEmbedder) or embedder.bulk == bulk):
        return embedder
    from rq.index.encoders.torch_encoder import resolve_model

    try:
        fast = load_fast_embedder(index_dir, settings.model, threads=settings.threads,
                                  batch_size=settings.embed_batch_size, bulk=bulk)
    except ArchiveError:
        fast = None
    if fast is None or fast.bulk != bulk:
        if notice:
            notice("exporting the embedding model to ONNX for fast start-up (once per index)")
        try:
            export_onnx(resolve_model(settings.model), export_dir_for(index_dir), quantize=bulk == "int8")
            fast = load_fast_embedder(index_dir, settings.model, threads=settings.threads,
                                      batch_size=settings.embed_batch_size, bulk=bulk)
        except RqError as exc:
            if notice:
                notice(f"no ONNX export ({exc}); sentence-transformers stays in use")
            return embedder if embedder is not None else _torch_embedder(settings)
    return fast


# --------------------------------------------------------------------------- the passage-vector cache


def vectors_key(embedder) -> str:
    """Cache key of the passage vectors ``embedder`` makes: its model id, plus "+int8" for the
    int8 graph (exact vectors, from torch or the fp32 graph, agree to 1e-4 and share a key)."""
    return getattr(embedder, "cache_key", None) or embedder.model_id


def lookup_vectors(archive, model_id: str, key: str, hashes: list[str]) -> dict[str, bytes]:
    """Cached vectors for ``hashes``: exact ones first (they serve every path), then for the
    rest those stored under ``key`` when that is another (int8) key."""
    found = archive.cached_vectors(model_id, hashes)
    if key != model_id:
        rest = [h for h in hashes if h not in found]
        if rest:
            found.update(archive.cached_vectors(key, rest))
    return found


def wants_exact(settings) -> bool:
    """Whether the settings ask for exact passage vectors (torch, or the fp32 graph)."""
    return _backend(settings) == "torch" or _bulk(settings) == "fp32"
