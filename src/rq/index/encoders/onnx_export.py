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
from rq.index.encoders.layout import model_layout
from rq.index.encoders.model import model_fingerprint
from rq.index.encoders.sidecar import (
    FORMAT,
    INPUTS,
    INT8_RECIPE,
    OUTPUT,
    SIDECAR,
    sha256_file,
    stamp,
)

OPSET = 17


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
    import shutil
    import tempfile

    layout = model_layout(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        graphs, versions = _make_graphs(layout, work, quantize, optimize)
        entries = _publish(graphs, work, out_dir)
        sidecar = {**_description(layout, model_path), "optimized": optimize, "files": entries,
                   "int8_recipe": INT8_RECIPE if quantize else None,
                   "exported_with": versions, "export_seconds": round(time.monotonic() - started, 2),
                   "exported_at": time.time()}
        atomic_write_bytes(out_dir / SIDECAR, json.dumps(sidecar, indent=2).encode())
        _drop_stale(out_dir, entries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / entries["fp32"]["graph"]["file"]


def _make_graphs(layout: dict, work: Path, quantize: bool, optimize: bool) -> tuple[dict[str, Path], dict]:
    """The fp32 graph (and the int8 one) in ``work``, each in one file; and the library versions."""
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
    return graphs, versions


def _publish(graphs: dict[str, Path], work: Path, out_dir: Path) -> dict:
    """Move each graph into ``out_dir`` as a structure file and a weights file under a fresh
    name; returns the sidecar's ``files`` entries (name, sha256, size, stamp of each)."""
    import secrets

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
    return entries


def _description(layout: dict, model_path: Path) -> dict:
    """What the sidecar says of the model and its tokenizer, for the encoder to reproduce."""
    return {
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
    }


def _drop_stale(out_dir: Path, entries: dict) -> None:
    """Files of earlier exports (or of one a killed run left half-done): the sidecar no longer
    names them, so no reader opens them from now on."""
    keep = {e["file"] for entry in entries.values() for e in entry.values()}
    for stale in out_dir.glob("encoder-*"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)


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
    """int8 weights for the MatMuls, per output channel; activations quantised on the fly."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)
    # The fused Attention nodes are outside ONNX's shape inference; their outputs are float.
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=_kept_fp32(source),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _kept_fp32(source: Path) -> list[str]:
    """The feed-forward down-projections (intermediate -> hidden: more weight rows than columns)
    of the first two layers. On x86 CPUs without VNNI (AVX2 only) ONNX Runtime's u8 x s8 kernel
    sums pairs of products in saturating int16, and these two layers take the damage: kept in
    fp32, all-MiniLM-L6-v2's worst cosine to fp32 on tests/test_onnx_embed.py's texts goes from
    0.983 to 0.989 on such a CPU, for about 2% of int8 throughput."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    dims = {t.name: tuple(t.dims) for t in graph.initializer}
    down = [node.name for node in graph.node if node.op_type == "MatMul"
            and any(len(dims.get(name, ())) == 2 and dims[name][0] > dims[name][1] for name in node.input)]
    return down[:2]  # graph order is layer order
