"""What a sentence-transformers model folder computes, read from its files without loading it:
the transformer folder, the pooling, normalisation and the tokenizer settings the ONNX export
must reproduce."""

from __future__ import annotations

import json
from pathlib import Path

from rq.errors import RqError


def model_layout(model_path: Path) -> dict:
    """What the sentence-transformers folder computes: transformer folder, pooling, normalisation,
    tokenizer settings. Raises RqError for module stacks the export does not reproduce."""
    transformer, pooling, normalize = _modules(model_path)
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
        "pooling": _pooling_mode(pooling, model_path),
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


def _modules(model_path: Path) -> tuple[Path, Path | None, bool]:
    """The transformer folder, the pooling folder and whether a Normalize module follows."""
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
    return transformer, pooling, normalize


def _pooling_mode(pooling: Path | None, model_path: Path) -> str:
    """"cls", "mean" or "max": the one pooling the export can reproduce, from the pooling config."""
    if pooling is None or not (pooling / "config.json").is_file():
        return "mean"
    config = json.loads((pooling / "config.json").read_text())
    modes = [m for m in ("cls_token", "mean_tokens", "max_tokens") if config.get(f"pooling_mode_{m}")]
    other = [k for k, v in config.items() if k.startswith("pooling_mode_") and v
             and k.removeprefix("pooling_mode_") not in ("cls_token", "mean_tokens", "max_tokens")]
    if len(modes) != 1 or other:
        raise RqError(f"model {model_path}: pooling {config} has no ONNX export in rq")
    return {"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}[modes[0]]


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
