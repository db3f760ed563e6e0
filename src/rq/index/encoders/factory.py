"""The one place that decides which encoder a command uses: ONNX Runtime or sentence-transformers.

``embed_backend = "onnx"`` (the default) encodes queries and passages through the machine's
shared ONNX export (rq.index.encoders.store) and never imports torch; while there is no
usable export, sentence-transformers serves instead (marked ``fallback``) and says why.
``embed_backend = "torch"`` keeps sentence-transformers for everything, the exact and slower
path. ``embed_bulk`` picks the graph for passages: "int8" or "fp32".
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rq.errors import ArchiveError, RqError
from rq.index.encoders.cache import wants_exact
from rq.index.encoders.onnx_encoder import OnnxEmbedder
from rq.index.encoders.store import export_dir, export_once, legacy_dir, load_export
from rq.paths import locate
from rq.settings import Settings

Notice = Callable[[str], None]


# The NVIDIA driver's control device: present on a machine with an NVIDIA GPU and its driver.
NVIDIA_DEVICE = Path("/dev/nvidiactl")


def embed_device(settings: Settings, notice: Notice | None = None) -> str:
    """"cpu" or "cuda": where an index build embeds passages. "cuda" when ``embed_device`` is
    auto or cuda, an NVIDIA GPU is visible (its driver's device file) and the installed torch is
    a CUDA build that sees it (``torch.cuda.is_available()``); then builds embed on it in fp16
    (rq.index.encoders.cuda_encoder). The device file is looked at first, so a machine without
    an NVIDIA GPU never imports torch to find out, and a CPU build of torch is told by its
    version file without importing it. ``cuda`` asked for where any of that fails falls back to
    the CPU and says so in one line; ``auto`` falls back silently."""
    if settings.embed_device == "cpu":
        return "cpu"
    asked = settings.embed_device == "cuda"
    if not NVIDIA_DEVICE.exists():
        if asked and notice:
            notice("embed_device is cuda but no CUDA GPU is visible: embedding on the CPU")
        return "cpu"
    problem = torch_gpu_problem()
    if problem is None:
        return "cuda"
    if asked and notice:
        notice(f"embed_device is cuda but {problem}: embedding on the CPU")
    return "cpu"


def torch_gpu_problem() -> str | None:
    """Why torch here cannot embed on a CUDA GPU (None: it can). Reads torch's version file
    first: a CPU build (the default install's) is told without importing torch."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return "torch is not installed"
    try:
        version = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        version = ""
    found = re.search(r"^cuda\b[^=\n]*=\s*(.+)$", version, re.MULTILINE)
    if found and found.group(1).strip() == "None":
        build = re.search(r"^__version__\b[^=\n]*=\s*['\"]([^'\"]+)", version, re.MULTILINE)
        return f"torch here is a CPU build ({build.group(1) if build else 'no CUDA'})"
    import torch

    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA GPU"
    return None


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
    """The encoder an index build should use: on a CUDA GPU (embed_device), the GPU encoder (fp16,
    or float32 where exact vectors are asked for: gpu_dtype); else the shared ONNX export (made
    now if missing) on the onnx backend, else sentence-transformers. The export is made on a GPU
    too: searches encode queries with it. An embedder the caller chose itself (tests,
    benchmarks) is returned as given, unless it is make_embedder's fallback or an ONNX encoder
    of the wrong bulk precision."""
    device = embed_device(settings, notice)
    cpu = _cpu_embedder_for_build(settings, embedder, notice)
    chosen = embedder is not None and not getattr(embedder, "fallback", False)
    if device != "cuda" or chosen:
        return cpu
    from rq.index.encoders.cuda_encoder import CudaEmbedder

    try:
        gpu = CudaEmbedder(settings.model, device="cuda", dtype=gpu_dtype(settings), threads=settings.threads)
    except RqError as exc:
        if notice:
            notice(f"{exc}: embedding on the CPU")
        return cpu
    gpu.export_key = getattr(cpu, "export_key", "")  # the export searches of this index use
    return gpu


def gpu_dtype(settings: Settings) -> str:
    """float16 on a GPU, unless the settings ask for exact passage vectors (the torch backend, or
    ``embed_bulk = "fp32"``): then float32, whose vectors are the CPU's and share their cache key."""
    return "float32" if wants_exact(settings) else "float16"


def _cpu_embedder_for_build(settings: Settings, embedder, notice: Notice | None):
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
