"""Shared by the benchmarks: an embedding cache on disk, so tuning runs embed a corpus once."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np


def embed_cached(embedder, texts: list[str], out: Path, label: str, prefix: str = "emb") -> np.ndarray:
    """Vectors of ``texts`` from ``out/<prefix>-<model>-<hash>.npy``, embedding them on a miss."""
    digest = hashlib.sha256("\x1e".join([embedder.model_id, *texts]).encode()).hexdigest()[:16]
    npy = out / f"{prefix}-{embedder.model_id.replace('/', '_')}-{digest}.npy"
    if npy.exists():
        return np.load(npy)
    print(f"  embedding {len(texts)} texts for {label} (cached as {npy.name}) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    vectors = embedder.encode(texts)
    print(f"    {len(texts) / (time.perf_counter() - start):.0f} texts/s", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, npy)
    return vectors


def proc_status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status ("VmRSS": now, "VmHWM": peak), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")
