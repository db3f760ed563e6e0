"""The six real reading lists under ../shared/data/lists, as bench_clusters.py and bench_audit.py use them.

Each list: its items' titles, "title\\nnote" texts (what is embedded: no section names, since the
sections are what is judged), deepest section paths (the audit's sections), top-level section
labels (the first heading level that holds items; a lone wrapper heading holding nearly every
item, such as "Main Content", is descended into), every heading, and URLs. Vectors come from
rq's own encoder factory (the shared ONNX export, int8 for bulk, as `rq index` embeds) and are
cached under --out.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from rq.queue.parse import read_queue  # noqa: E402

WRAPPER_SHARE = 0.9  # a heading holding this share of all items is a wrapper, not a topic
# Audit thresholds are chosen on these three lists and reported on the other three.
TUNE = ("awesome-production-machine-learning", "Awesome-recsys", "awesome-search")
SHORT = {"awesome-production-machine-learning": "production-ML"}


def top_level_labels(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Each item's top-level section path, descending through wrapper headings."""
    prefix: tuple[str, ...] = ()
    while True:
        below = Counter(p[len(prefix)] for p in paths if p[:len(prefix)] == prefix and len(p) > len(prefix))
        if not below:
            break
        head, count = below.most_common(1)[0]
        if count < WRAPPER_SHARE * len(paths):
            break
        prefix += (head,)
    depth = len(prefix)
    return [p[:depth + 1] if p[:depth] == prefix and len(p) > depth else (p[:depth] or ("(none)",))
            for p in paths]


def load_lists(folder: Path) -> list[dict]:
    lists = []
    for path in sorted(folder.glob("*__*.md")):
        queue = read_queue(path)
        resources = queue.resources
        leaf = [tuple(r.section_path) for r in resources]
        labels = top_level_labels(leaf)
        name = path.stem.split("__", 1)[1]
        lists.append({
            "name": name,
            "short": SHORT.get(name, name),
            "tune": name in TUNE,
            "titles": [r.title for r in resources],
            "texts": [f"{r.title}\n{r.note}".strip() for r in resources],
            "urls": [r.url for r in resources],
            "leaf": leaf,
            "headings": list(dict.fromkeys([tuple(s.path) for s in queue.sections] + leaf)),
            "labels": labels,
            "sections": sorted(set(labels), key=labels.index),
        })
    return lists


def make_embedder():
    """The encoder `rq index` uses with default settings (ONNX int8 bulk, exported once per machine)."""
    from rq.index.encoders.factory import embedder_for_build
    from rq.settings import Settings

    return embedder_for_build(Settings())


def embed_lists(embedder, lists: list[dict], out: Path) -> None:
    """Adds "vectors" (items) and "heading_vectors" (path -> vector of its heading text) to each list."""
    from rq.rank.topics.headings import heading_text

    prefix = f"topics-{getattr(embedder, 'bulk', 'torch')}"
    for ds in lists:
        ds["vectors"] = common.embed_cached(embedder, ds["texts"], out, ds["name"], prefix=prefix)
        paths = [p for p in ds["headings"] if heading_text(p)]
        vectors = common.embed_cached(embedder, [heading_text(p) for p in paths], out,
                                      f"{ds['name']} headings", prefix=prefix)
        ds["heading_vectors"] = dict(zip(paths, vectors))


def as_ints(labels: list) -> np.ndarray:
    return np.unique([repr(x) for x in labels], return_inverse=True)[1]


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def patched(module, **values):
    """Set module constants for a while (threshold sweeps); names the module lacks are removed after."""
    old = {k: getattr(module, k) for k in values if hasattr(module, k)}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k in values:
            if k in old:
                setattr(module, k, old[k])
            else:
                delattr(module, k)


def limit_threads() -> None:
    """One BLAS/OpenMP thread: on two shared cores, k-means and HDBSCAN threads only fight."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def lists_from_command_line(argv: list[str] | None, description: str):
    """What bench_clusters.py and bench_audit.py start with: their --data/--out arguments, the
    six lists loaded and embedded (cached under --out). Returns (args, embedder, lists), or
    None when the lists are not there (said on stderr)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args(argv)
    folder = args.data / "lists"
    if not folder.is_dir():
        print(f"no reading lists under {folder}; pass --data", file=sys.stderr)
        return None
    limit_threads()
    embedder = make_embedder()
    lists = load_lists(folder)
    embed_lists(embedder, lists, args.out)
    return args, embedder, lists
