"""The one place that decides which encoder a command uses: ONNX Runtime or sentence-transformers.

``embed_backend = "onnx"`` (the default) encodes queries and passages through the machine's
shared ONNX export (rq.index.encoders.store) and never imports torch; while there is no
usable export, sentence-transformers serves instead (marked ``fallback``) and says why.
``embed_backend = "torch"`` keeps sentence-transformers for everything, the exact and slower
path. ``embed_bulk`` picks the graph for passages: "int8" or "fp32".
"""

from __future__ import annotations

from typing import Callable

from rq.errors import ArchiveError, RqError
from rq.index.encoders.onnx_encoder import OnnxEmbedder
from rq.index.encoders.store import export_dir, export_once, legacy_dir, load_export
from rq.paths import locate
from rq.settings import Settings

Notice = Callable[[str], None]


def embed_device(settings: Settings, notice: Notice | None = None) -> str:
    """"cpu" or "cuda": where passages would be embedded. Only the device files are looked at, so
    a machine without an NVIDIA GPU never imports torch to find out. ``cuda`` asked for with no
    GPU falls back to the CPU and says so. (The CUDA torch fp16 path is not built yet: on a GPU
    this still answers "cuda" but the CPU encoders are used.)"""
    from pathlib import Path

    visible = Path("/dev/nvidiactl").exists()
    if settings.embed_device == "cuda" and not visible:
        if notice:
            notice("embed_device is cuda but no CUDA GPU is visible: embedding on the CPU")
        return "cpu"
    return "cuda" if settings.embed_device != "cpu" and visible else "cpu"


def make_embedder(settings: Settings, notice: Notice | None = None):
    """The encoder a read command should use, saying on ``notice`` why when it is not the fast one."""
    if settings.embed_backend == "onnx":
        fast = _find_export(settings, notice)
        if fast is not None:
            return fast
    embedder = torch_embedder(settings)
    embedder.fallback = settings.embed_backend == "onnx"
    return embedder


def _find_export(settings: Settings, notice: Notice | None) -> OnnxEmbedder | None:
    """The shared export, else this index's own export from an earlier rq; None (with a notice)
    when neither can serve."""
    problem = None
    for folder in (export_dir(settings), legacy_dir(locate(settings).index_dir)):
        try:
            fast = load_export(folder, settings)
        except ArchiveError as exc:
            problem = problem or exc
            continue
        if fast is not None:
            return fast
    if notice:
        if problem is not None:
            notice(f"{problem}; using sentence-transformers meanwhile (slower start)")
        else:
            notice("no ONNX export of the model on this machine yet: using sentence-transformers "
                   "(slower start); `rq index` makes one")
    return None


def torch_embedder(settings: Settings):
    from rq.index.encoders.torch_encoder import Embedder

    return Embedder(settings.model, threads=settings.threads, batch_size=settings.embed_batch_size)


def embedder_for_build(settings: Settings, embedder=None, notice: Notice | None = None):
    """The encoder an index build should use: the shared ONNX export (made now if missing) on the
    onnx backend, else sentence-transformers. An embedder the caller chose itself (tests,
    benchmarks) is returned as given, unless it is make_embedder's fallback or an ONNX encoder
    of the wrong bulk precision."""
    embed_device(settings, notice)
    if settings.embed_backend != "onnx":
        return embedder if embedder is not None else torch_embedder(settings)
    chosen = embedder is not None and not getattr(embedder, "fallback", False)
    if chosen and (not isinstance(embedder, OnnxEmbedder) or embedder.bulk == settings.embed_bulk):
        return embedder
    try:
        return export_once(settings, notice)
    except RqError as exc:
        if notice:
            notice(f"no ONNX export ({exc}); sentence-transformers stays in use")
        return embedder if embedder is not None else torch_embedder(settings)
