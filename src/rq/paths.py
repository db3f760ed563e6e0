"""Which queue file and which index folder a command works on, and where shared models live.

One index folder serves one queue. With no ``--index``: the embedded default
queue uses the checkout's ``index/`` when rq runs from a source checkout, else
a folder under the user's data directory; any other queue gets its own folder
there, named after the file and a hash of its absolute path. Nothing is ever
written inside the installed package.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from rq.settings import Settings

EMBEDDED_NAME = "resources-queue.md"


@dataclass(frozen=True)
class Location:
    queue_path: Path
    queue_key: str  # what the archive records as its owner
    index_dir: Path
    embedded: bool


def embedded_queue_path() -> Path:
    from importlib import resources  # here: a command given --queue does not pay its import

    return Path(str(resources.files("rq") / "data" / EMBEDDED_NAME))


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "rq"


def model_cache(settings: Settings) -> Path:
    """Where models exported for fast start-up live: one copy per machine, shared by every index."""
    if settings.model_cache is not None:
        return settings.model_cache.expanduser().absolute()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rq" / "models"


def checkout_index_dir() -> Path | None:
    """The repo's ``index/`` when rq runs from a source checkout (src/rq/ two levels below it)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "index").is_dir() and (root / "src" / "rq").is_dir():
        return root / "index"
    return None


def locate(settings: Settings) -> Location:
    if settings.queue is None:
        queue_path, key, embedded = embedded_queue_path(), f"embedded:{EMBEDDED_NAME}", True
        default_index = checkout_index_dir() or data_home() / "default"
    else:
        queue_path = settings.queue.expanduser().absolute()
        key, embedded = str(queue_path.resolve()), False
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
        default_index = data_home() / "indexes" / f"{queue_path.stem}-{digest}"
    index_dir = settings.index.expanduser().absolute() if settings.index else default_index
    return Location(queue_path, key, index_dir, embedded)
