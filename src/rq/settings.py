"""One Settings object: flags > RQ_* environment > TOML files > packaged defaults.

TOML files, later ones winning: ``configs/rq.toml`` under the current directory,
then the user's ``$XDG_CONFIG_HOME/rq/config.toml``, then the file named by
``RQ_CONFIG``. Every field can be set in any layer under its own name; the
environment uses ``RQ_`` plus the upper-cased name (``RQ_FETCH_CONCURRENCY=4``).

Every value is checked when the Settings are built, against the field's type and the
rule in ``RULES`` (allowed values or a range): a bad value fails at once, before any
work, with one line that names the setting, the value, where it came from and what
would do.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from rq import __version__
from rq.errors import ConfigError

# Allowed values of the choice settings; the parts that act on them import these names.
FUSIONS = ("convex", "rrf")
FUSION_NORMS = ("tmm", "minmax", "zscore", "absolute")
FUSION_LEVELS = ("resource", "passage")
VECTOR_INDEXES = ("auto", "flat", "hnsw", "ivfpq")
EMBED_DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("local", "ray")
EMBED_BACKENDS = ("onnx", "torch")
EMBED_BULK = ("int8", "fp32")
RECOMMEND_METHODS = ("centroid", "maxsim", "contrast", "svm")  # or several joined by "+"


@dataclass(frozen=True)
class Settings:
    queue: Path | None = None  # None: the embedded default queue
    index: Path | None = None  # None: derived from the queue (see paths.py)
    model_cache: Path | None = None  # exported models, shared by every index; None: $XDG_CACHE_HOME/rq/models

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
    # Soft-404 check: one made-up address per host and ingest run (only for hosts that served an HTML
    # page the page's own words do not already decide), to catch sites answering 200 to anything. On
    # by default: such sites are common and their error page would be archived and indexed as the
    # page; the cost is one small extra request per host per run, made concurrently with the rest.
    probe_soft_404: bool = True

    # extraction
    pdf_max_pages: int = 300
    extract_timeout: float = 60.0
    extract_memory_mb: int = 2048  # 0: no limit

    # passages, embedding, index
    model: str = "all-MiniLM-L6-v2"
    chunk_words: int = 128  # best hybrid nDCG@10 on SciFact train (benchmarks/RESULTS.md)
    chunk_overlap_words: int = 32
    embed_batch_size: int = 32
    # Passages kept per resource, from the page's beginning. 500 passages of 128 words (32 shared
    # with the next) hold ~48,000 words, a whole book; past that a page is a dump (a log, a data
    # file, a site in one page) whose beginning says what it is, and each further 500 passages
    # cost ~20 s of embedding on two cores (a 23 MB page made 28,000 passages, 7+ min).
    max_passages_per_resource: int = 500
    # onnx: queries and passages through ONNX Runtime (no torch in a search; the model is
    # exported once per machine); torch: sentence-transformers for both, the exact and slower path.
    embed_backend: str = "onnx"
    # Passages on the onnx backend: int8 is 1.5-2.5x torch's throughput (by CPU) for -0.003 nDCG@10 on
    # SciFact (benchmarks/RESULTS.md); fp32 gives vectors equal to torch's.
    embed_bulk: str = "int8"
    vector_index: str = "auto"  # auto | flat | hnsw | ivfpq
    hnsw_above: int = 200_000  # passages: exact search is faster below this (benchmarks/RESULTS.md)
    # Passages past which auto compresses the vectors (IVF+PQ, ~40 B each, memory-mapped, re-ranked
    # by exact vectors): flat or HNSW vectors of 5M passages take ~9 GB of RAM (rq.index.vectors).
    compressed_above: int = 5_000_000
    # Where passages are embedded: auto takes a CUDA GPU when torch sees one, else the CPU default;
    # cuda asked for without one falls back to the CPU and says so.
    embed_device: str = "auto"
    # Where ingest fetches and extracts and where index embeds: local (this process and its
    # workers) or ray (Ray Data stages on a Ray cluster: the `scale` extra). Either way the results
    # land in the same archive and index.
    engine: str = "local"
    # The Ray cluster: "" starts a private one on this machine (or joins RAY_ADDRESS when set),
    # "auto" joins the one `ray start` runs on this machine, HOST:PORT joins that head node.
    ray_address: str = ""
    ray_workers: int = 0  # embedding actors and fetch tasks at once; 0: one per CPU of the cluster
    fusion: str = "convex"  # convex | rrf
    fusion_norm: str = "tmm"  # tmm | minmax | zscore | absolute (convex only)
    hybrid_alpha: float = 0.875  # weight of the dense score; chosen on SciFact train (with dense windows)
    threads: int = 0  # 0: let rq pick
    # Search settings below were each tried on SciFact train (benchmarks/RESULTS.md, the sweep
    # table); the defaults are what won there.
    # Dense side on windows of this many words (a quarter shared) cut inside each passage; a passage
    # scores its best window. 0: each passage embedded whole. SciFact train +0.010 nDCG@10 with
    # alpha 0.875 (benchmarks/RESULTS.md), for ~2.5 windows embedded per passage.
    dense_window_words: int = 64
    fusion_level: str = "resource"  # resource: each ranker's passages roll up to resources, then fuse; passage: fuse, then roll up
    fusion_depth: int = 0  # resources (or passages) of each ranker that enter fusion; 0: all it scored
    keyword_title_weight: int = 1  # BM25 counts a passage's title line this many times (a title field weight)
    doc_weight: float = 0.0  # dense: share of a resource's score from its whole-resource vector, beside its best passage
    prf_docs: int = 5  # pseudo-relevance feedback: the first pass's top resources taken as relevant
    prf_terms: int = 10  # RM3: expansion terms taken from them
    rm3_weight: float = 0.0  # RM3 (keyword side): weight of the expansion terms against the query's; 0: off
    rocchio_weight: float = 0.0  # Rocchio (dense side): weight of their passages' mean vector; 0: off

    # next / related (chosen on six real lists: benchmarks/bench_recommend.py)
    recommend_method: str = "svm"
    mmr_lambda: float = 0.3  # 1.0: no diversity re-ranking
    read_half_life_days: float = 60.0  # a read this old counts half as much as one today
    # A suggestion whose page is this alike (cosine of page vectors) to a read page is the same story: marked
    # and ranked after new material; `rq related` marks it. Chosen on labelled pairs: benchmarks/bench_near_dup.py.
    near_duplicate_cosine: float = 0.80

    # rq serve: where the warm engine listens. Any address but loopback needs serve_token, and
    # every request must then carry it (rq.serve.security).
    serve_host: str = "127.0.0.1"
    serve_port: int = 8765  # 0: any free port (the engine file in the index folder says which)
    serve_token: str = ""

    def __post_init__(self) -> None:
        for name in _FIELDS:
            _check(name, getattr(self, name), "Settings()")
        _check_pair(self.__dict__, {})

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    combinable: bool = False  # several values joined by "+" (e.g. "svm+maxsim")

    def allows(self, value: Any) -> bool:
        parts = value.split("+") if self.combinable else [value]
        return all(p.strip() in self.values for p in parts) and bool(value)

    def describe(self, noun: str = "") -> str:
        text = "one of " + ", ".join(self.values)
        return text + ", or several joined by '+'" if self.combinable else text


@dataclass(frozen=True)
class Range:
    low: float
    high: float = math.inf
    low_open: bool = False  # low itself not allowed

    def allows(self, value: Any) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high  # NaN fails both

    def describe(self, noun: str = "number") -> str:
        if self.high == math.inf:
            return f"a {noun} above {self.low:g}" if self.low_open else f"a {noun} of at least {self.low:g}"
        return f"a {noun} from {self.low:g} to {self.high:g}"


_POSITIVE = Range(0, low_open=True)
_AT_LEAST_ONE = Range(1)
_NOT_NEGATIVE = Range(0)
RULES: dict[str, Choice | Range] = {
    "fetch_concurrency": _AT_LEAST_ONE, "fetch_per_host": _AT_LEAST_ONE, "fetch_host_delay": _NOT_NEGATIVE,
    "connect_timeout": _POSITIVE, "read_timeout": _POSITIVE, "total_timeout": _POSITIVE,
    "max_bytes": _AT_LEAST_ONE, "max_redirects": _NOT_NEGATIVE, "retries": _NOT_NEGATIVE,
    "backoff": _NOT_NEGATIVE, "retry_after_max": _NOT_NEGATIVE, "freshness_days": _NOT_NEGATIVE,
    "pdf_max_pages": _AT_LEAST_ONE, "extract_timeout": _POSITIVE, "extract_memory_mb": _NOT_NEGATIVE,
    "chunk_words": Range(16), "chunk_overlap_words": _NOT_NEGATIVE, "embed_batch_size": _AT_LEAST_ONE,
    "max_passages_per_resource": _AT_LEAST_ONE,
    "embed_backend": Choice(EMBED_BACKENDS), "embed_bulk": Choice(EMBED_BULK),
    "vector_index": Choice(VECTOR_INDEXES), "hnsw_above": _NOT_NEGATIVE,
    "compressed_above": _NOT_NEGATIVE, "embed_device": Choice(EMBED_DEVICES),
    "engine": Choice(ENGINES), "ray_workers": _NOT_NEGATIVE,
    "fusion": Choice(FUSIONS), "fusion_norm": Choice(FUSION_NORMS), "hybrid_alpha": Range(0, 1),
    "threads": _NOT_NEGATIVE, "fusion_level": Choice(FUSION_LEVELS), "fusion_depth": _NOT_NEGATIVE,
    "keyword_title_weight": Range(1, 10), "dense_window_words": _NOT_NEGATIVE, "doc_weight": Range(0, 1),
    "prf_docs": Range(1, 100),
    "prf_terms": Range(1, 100), "rm3_weight": Range(0, 1), "rocchio_weight": Range(0, 4),
    "recommend_method": Choice(RECOMMEND_METHODS, combinable=True),
    "mmr_lambda": Range(0, 1), "read_half_life_days": _POSITIVE,
    # Below 0.5 two different articles on one topic are common (bench_near_dup.py); 1: exact copies only.
    "near_duplicate_cosine": Range(0.5, 1),
    "serve_port": Range(0, 65535),
}
_KIND = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}
_FIELDS = {f.name: f for f in fields(Settings)}


def _problem(name: str, value: Any, wanted: str, source: str) -> ConfigError:
    return ConfigError(f"setting {name}: cannot use {value!r} ({wanted}; from {source})")


def _wanted(name: str) -> str:
    """What a value of setting ``name`` must be, in words."""
    annotation = str(_FIELDS[name].type)
    rule = RULES.get(name)
    if rule is not None:
        return rule.describe("whole number" if annotation == "int" else "number")
    return _KIND.get(annotation, "a list of names" if annotation.startswith("tuple") else "text")


def _check(name: str, value: Any, source: str) -> None:
    rule = RULES.get(name)
    if rule is not None and value is not None and not rule.allows(value):
        raise _problem(name, value, _wanted(name), source)


def _check_pair(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Rules between two settings; ``values`` holds every setting, defaults included."""
    window = values["dense_window_words"]
    if 0 < window < 16:
        raise _problem("dense_window_words", window, "0 (off) or at least 16",
                       sources.get("dense_window_words", "Settings()"))
    address = values["ray_address"]
    if address not in ("", "auto") and not _RAY_ADDRESS.fullmatch(address):
        raise _problem("ray_address", address, "empty (a Ray of rq's own), auto, or HOST:PORT of a Ray head node",
                       sources.get("ray_address", "Settings()"))
    words, overlap = values["chunk_words"], values["chunk_overlap_words"]
    if overlap >= words:
        raise _problem("chunk_overlap_words", overlap, f"less than chunk_words, {words}",
                       sources.get("chunk_overlap_words", sources.get("chunk_words", "Settings()")))


_RAY_ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9._\-]+:[0-9]{1,5}|(ray://)?\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")


def _coerce(name: str, value: Any, source: str) -> Any:
    """Turn a TOML, environment or flag value into the field's type, or raise ConfigError."""
    annotation = str(_FIELDS[name].type)
    if name in ("queue", "index", "model_cache"):
        return None if value in (None, "") else Path(value).expanduser()
    kind = annotation if annotation in _KIND else ("tuple" if annotation.startswith("tuple") else "str")
    try:
        if kind == "bool":
            return _boolean(value)
        if kind == "tuple":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer() or isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise _problem(name, value, _wanted(name), source) from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("rq", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [rq] must be a table of settings")
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
    sources: dict[str, str] = {}
    for path in config_files(env, cwd):
        for name, raw in _read_toml(path).items():
            value = _coerce(name, raw, str(path))
            if name in ("queue", "index", "model_cache") and value is not None and not value.is_absolute():
                value = (path.parent / value).resolve()  # relative to the file that says it
            values[name], sources[name] = value, str(path)
    for name in _FIELDS:
        key = f"RQ_{name.upper()}"
        if key in env:
            source = f"environment variable {key}"
            values[name], sources[name] = _coerce(name, env[key], source), source
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name}")
        source = f"flag --{name.replace('_', '-')}"
        values[name], sources[name] = _coerce(name, raw, source), source
    for name, value in values.items():
        _check(name, value, sources[name])
    _check_pair({name: values.get(name, f.default) for name, f in _FIELDS.items()}, sources)
    return Settings(**values)
