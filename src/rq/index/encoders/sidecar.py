"""The description an ONNX export carries of itself (``encoder.json``), and the checks on its files.

The sidecar names every file of the export with its size, sha256 and the (inode, size,
mtime) stamp it had when written; the model fingerprint it came from; and the tokenizer
settings the encoder must reproduce.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rq.errors import ArchiveError

SIDECAR = "encoder.json"
FORMAT = 1
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"
# How the int8 graph is made (onnx_export._quantize); an int8 graph of another recipe is not
# used for passages, so the next `rq index` exports again. 2: two feed-forward MatMuls kept fp32.
INT8_RECIPE = 2


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


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
