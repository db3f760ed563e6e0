"""One Settings object: flags > RQ_* environment > TOML files > packaged defaults.

TOML files, later ones winning: ``configs/rq.toml`` under the current directory,
then the user's ``$XDG_CONFIG_HOME/rq/config.toml``, then the file named by
``RQ_CONFIG``. Every field can be set in any layer under its own name; the
environment uses ``RQ_`` plus the upper-cased name (``RQ_FETCH_CONCURRENCY=4``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from rq import __version__
from rq.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    queue: Path | None = None  # None: the embedded default queue
    index: Path | None = None  # None: derived from the queue (see paths.py)

    # fetching
    fetch_concurrency: int = 8
    fetch_per_host: int = 2
    fetch_host_delay: float = 1.0  # seconds between two requests to one host
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 90.0  # per link, redirects and retries included
    max_bytes: int = 25_000_000  # decoded body cap
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 0.5  # first retry wait, doubled each time, with jitter
    retry_after_max: float = 30.0
    allow_private: bool = False  # let links reach loopback/private addresses
    allow_hosts: tuple[str, ...] = ()  # hosts allowed even if private
    user_agent: str = f"rq/{__version__} (reading-queue archiver; +https://pypi.org/project/resources-queue/)"
    freshness_days: float = 7.0  # a fetch younger than this is not repeated
    refresh: bool = False

    # extraction
    pdf_max_pages: int = 300
    extract_timeout: float = 60.0
    extract_memory_mb: int = 2048

    # passages, embedding, index
    model: str = "all-MiniLM-L6-v2"
    chunk_words: int = 128  # best hybrid nDCG@10 on SciFact train (benchmarks/RESULTS.md)
    chunk_overlap_words: int = 32
    embed_batch_size: int = 32
    # onnx: queries and passages through ONNX Runtime (no torch in a search; exported at index
    # time); torch: sentence-transformers for both, the exact and slower path.
    embed_backend: str = "onnx"
    # Passages on the onnx backend: int8 is 2.5x torch's throughput for -0.002 nDCG@10 on
    # SciFact (benchmarks/RESULTS.md); fp32 gives vectors equal to torch's.
    embed_bulk: str = "int8"
    vector_index: str = "auto"  # auto | flat | hnsw
    hnsw_above: int = 200_000  # passages: exact search is faster below this (benchmarks/RESULTS.md)
    fusion: str = "convex"  # convex | rrf
    fusion_norm: str = "tmm"  # tmm | minmax | zscore (convex only)
    hybrid_alpha: float = 0.8  # weight of the dense score; chosen on SciFact train
    threads: int = 0  # 0: let rq pick

    # next / related (chosen on six real lists: benchmarks/bench_recommend.py)
    recommend_method: str = "svm"
    mmr_lambda: float = 0.3  # 1.0: no diversity re-ranking
    read_half_life_days: float = 60.0  # a read this old counts half as much as one today

    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or raise ConfigError."""
    default = getattr(Settings, name, None)
    annotation = str(_FIELDS[name].type)
    try:
        if name in ("queue", "index"):
            return None if value in (None, "") else Path(value).expanduser()
        if annotation == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if annotation.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if annotation == "int":
            return int(value)
        if annotation == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name}: cannot use {value!r} (default is {default!r})") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("rq", data)
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return table


def config_files(env: Mapping[str, str], cwd: Path) -> list[Path]:
    xdg = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidates = [cwd / "configs" / "rq.toml", xdg / "rq" / "config.toml"]
    if env.get("RQ_CONFIG"):
        candidates.append(Path(env["RQ_CONFIG"]).expanduser())
    return [p for p in candidates if p.is_file() or p == Path(env.get("RQ_CONFIG", "\0"))]


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Build Settings from every layer; flags whose value is None are treated as unset."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    values: dict[str, Any] = {}
    for path in config_files(env, cwd):
        for name, raw in _read_toml(path).items():
            value = _coerce(name, raw)
            if name in ("queue", "index") and value is not None and not value.is_absolute():
                value = (path.parent / value).resolve()  # relative to the file that says it
            values[name] = value
    for name in _FIELDS:
        key = f"RQ_{name.upper()}"
        if key in env:
            values[name] = _coerce(name, env[key])
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name}")
        values[name] = _coerce(name, raw)
    return Settings(**values)
