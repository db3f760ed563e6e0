"""Where exported models live: one ONNX export per model per machine, shared by every index.

An export takes 12-20 s and 142 MB, so it is made once, in the user's cache
(``$XDG_CACHE_HOME/rq/models/<model>@<fingerprint>/``, or the ``model_cache`` setting),
and every queue's index uses it; each index's manifest records the export it was built
with. An export is written under a lock beside its folder, so two `rq index` runs on two
queues at once export once. Every file is checked against the export's sidecar before
use, so a damaged or half-written export is refused, never served.

Index folders of earlier rq versions held their own export in ``onnx/``: it is still
used while the shared one is missing, and `rq index` removes it.
"""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rq.errors import ArchiveError, DiskFullError, RqError
from rq.files import is_disk_full
from rq.index.encoders.model import (
    BUNDLED,
    BUNDLED_NAME,
    model_fingerprint,
    resolve_model,
)
from rq.index.encoders.onnx_encoder import OnnxEmbedder
from rq.index.encoders.sidecar import SIDECAR
from rq.paths import model_cache
from rq.settings import Settings

LEGACY_DIR = "onnx"  # inside an index folder, before exports were shared
Notice = Callable[[str], None]


def export_key(model_name: str) -> str:
    """The export's folder name: the model's name (made safe for a path) and its fingerprint."""
    name = BUNDLED_NAME if model_name in BUNDLED else Path(model_name).name or "model"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return f"{safe}@{model_fingerprint(resolve_model(model_name))}"


def export_dir(settings: Settings) -> Path:
    return model_cache(settings) / export_key(settings.model)


def legacy_dir(index_dir: Path) -> Path:
    return Path(index_dir) / LEGACY_DIR


def load_export(folder: Path, settings: Settings, bulk: str | None = None) -> OnnxEmbedder | None:
    """The encoder of the export in ``folder``; None when there is none. Raises ArchiveError
    when one is there but cannot serve (damaged, of another model version)."""
    if not (Path(folder) / SIDECAR).is_file():
        return None
    return OnnxEmbedder(folder, settings.model, threads=settings.threads, batch_size=settings.embed_batch_size,
                        bulk=bulk or settings.embed_bulk)


@contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    import fcntl

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fh = open(folder.parent / f".{folder.name}.lock", "a+b")
    except OSError as exc:
        raise RqError(f"cannot use the model cache {folder.parent} ({exc.strerror}); "
                      "set model_cache (RQ_MODEL_CACHE) to a folder you can write") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def export_once(settings: Settings, notice: Notice | None = None) -> OnnxEmbedder:
    """The machine's export of the model with the graph ``embed_bulk`` asks for, made now if it
    is missing, damaged or lacks that graph. Needs torch, transformers and onnx to export."""
    from rq.index.encoders.onnx_export import export_onnx

    folder = export_dir(settings)
    with _export_lock(folder):
        # Another process may have exported while this one waited for the lock.
        try:
            fast = load_export(folder, settings)
        except ArchiveError:
            fast = None
        if fast is not None and fast.bulk == settings.embed_bulk:
            return fast
        if notice:
            notice(f"exporting the embedding model to ONNX for fast start-up (once per machine, into {folder})")
        try:
            export_onnx(resolve_model(settings.model), folder, quantize=settings.embed_bulk == "int8")
        except OSError as exc:  # an RqError: the build goes on with sentence-transformers, saying why
            if is_disk_full(exc):
                raise DiskFullError("the ONNX export of the model", folder.parent) from None
            raise RqError(f"cannot write the model export in {folder} ({exc.strerror or exc})") from None
        fast = load_export(folder, settings)
    if fast is None:
        raise RqError(f"{folder}: the export left no {SIDECAR}")
    return fast


def remove_legacy_export(index_dir: Path, notice: Notice | None = None) -> None:
    """Delete an index folder's own export from before exports were shared (call it under the
    index's writer lock)."""
    folder = legacy_dir(index_dir)
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        if notice and not folder.exists():
            notice(f"removed this index's own copy of the model export ({folder}); "
                   "every index now shares one per machine")
