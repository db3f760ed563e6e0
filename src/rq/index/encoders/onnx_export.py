"""Export a sentence-transformers model to ONNX, once per machine (see rq.index.encoders.store).

One graph from (input_ids, attention_mask, token_type_ids) straight to the pooled,
L2-normalised sentence vector, and a JSON sidecar (rq.index.encoders.sidecar) holding
the sha256 of every file, the fingerprint of the model folder it came from and the
tokenizer settings. Two graphs are written: ``fp32`` (attention, layer norm and GELU
fused by ONNX Runtime's BERT optimiser; agrees with sentence-transformers to cosine
> 0.9999; always used for queries) and, when asked for, ``int8`` (matrix-product
weights dynamically quantised per channel, for passages). Each graph's weights sit in
a .data file that ONNX Runtime maps into memory. Exporting needs torch, transformers
and onnx (seconds, once).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from rq.errors import RqError
from rq.files import atomic_write_bytes, fsync_dir, fsync_file, new_file_mode
from rq.index.encoders.model import model_fingerprint
from rq.index.encoders.sidecar import (
    FORMAT,
    INPUTS,
    OUTPUT,
    SIDECAR,
    sha256_file,
    stamp,
)

OPSET = 17


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
                os.chmod(path, new_file_mode())
                fsync_file(path)
                final = out_dir / path.name
                os.replace(path, final)
                stat = final.stat()
                entry[role] = {"file": final.name, "sha256": sha256_file(final), "bytes": stat.st_size,
                               "stamp": list(stamp(stat))}
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
