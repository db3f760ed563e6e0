"""The engine file, and asking a running engine: the standard library only.

`rq serve` writes ``serve.json`` into the index folder it serves (mode 0600): its address, a
secret and a fingerprint of the settings it answers with. `rq search`, `rq next`, `rq related`
and `rq show` read it before they import anything heavy; when an engine answers for the same
queue and settings within the time limit, its answer is theirs, and otherwise they work
in-process. This module must import nothing but the standard library and rq's base modules:
its import cost is what a command pays on the fast path.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import urllib.parse
from dataclasses import fields
from pathlib import Path

ENGINE_FILE = "serve.json"
SECRET_HEADER = "X-Rq-Secret"
# An engine must say it is alive within 200 ms (issue 15), or the command works in-process.
# Its "alive" is answered on the server's event loop, apart from the engine's work, so a
# running engine says it even while it answers others. The answer itself may then take as
# long as the work does (a `next` on 5,000 items fits an SVM: ~0.4 s warm, ~2 s in-process),
# up to ANSWER_LIMIT_S, past which the engine counts as stuck.
ALIVE_WITHIN_S = 0.2
ANSWER_LIMIT_S = 30.0
# Settings that say where and how the engine listens: they do not change an answer.
_NOT_ANSWER_SETTINGS = {"queue", "index", "serve_host", "serve_port", "serve_token"}


class Unavailable(Exception):
    """No engine answered; the message says why (shown with -v)."""


def engine_file(index_dir: Path) -> Path:
    return Path(index_dir) / ENGINE_FILE


def fingerprint(settings) -> str:
    """A digest of every setting that can change an answer: an engine started with other
    settings (another model, another fusion weight) must not answer for this command."""
    values = [(f.name, repr(getattr(settings, f.name))) for f in fields(settings)
              if f.name not in _NOT_ANSWER_SETTINGS]
    return hashlib.sha256(repr(values).encode("utf-8")).hexdigest()[:16]


def new_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def write_engine_file(index_dir: Path, info: dict) -> Path:
    """Write the engine file readable and writable by the user only: it holds the secret."""
    path = engine_file(index_dir)
    temp = path.with_name(f".{ENGINE_FILE}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, json.dumps(info).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(temp, path)
    return path


def remove_engine_file(index_dir: Path, secret: str) -> None:
    """Remove the engine file if it is still this engine's (another may have started since)."""
    path = engine_file(index_dir)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("secret") == secret:
            path.unlink()
    except (OSError, ValueError):
        pass


def read_engine_file(index_dir: Path) -> dict:
    path = engine_file(index_dir)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Unavailable("no engine runs for this index (start one with `rq serve`)") from None
    except (OSError, ValueError) as exc:
        raise Unavailable(f"the engine file {path} cannot be read ({exc})") from None
    if not isinstance(info, dict) or not {"host", "port", "secret"} <= set(info):
        raise Unavailable(f"the engine file {path} is not one rq serve wrote")
    return info


def ask(index_dir: Path, queue_key: str, settings_digest: str, path: str, params: dict,
        alive_within: float = ALIVE_WITHIN_S, limit: float = ANSWER_LIMIT_S) -> tuple[int, object]:
    """GET ``path`` with ``params`` from the engine serving ``index_dir``: (HTTP status, JSON).
    Raises Unavailable when there is none, it serves another queue or other settings, it does
    not say it is alive within ``alive_within`` seconds, it is re-indexing, or its answer does
    not come within ``limit``."""
    info = read_engine_file(index_dir)
    if info.get("queue") != queue_key:
        raise Unavailable("the engine for this index folder serves another queue")
    if info.get("settings") != settings_digest:
        raise Unavailable("the engine runs with other settings than this command")
    status, alive = _get(info, "/api/alive", {}, alive_within)
    if status != 200 or not isinstance(alive, dict):
        raise Unavailable(f"the engine answered HTTP {status} when asked whether it is alive")
    if alive.get("reindexing"):
        # The command would index first and answer with the new links; the engine answers
        # from the index it has until its own re-index ends.
        raise Unavailable("the engine is re-indexing")
    return _get(info, path, params, limit)


def _get(info: dict, path: str, params: dict, within: float) -> tuple[int, object]:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    host, port = info["host"], int(info["port"])
    request = (f"GET {path}?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n{SECRET_HEADER}: {info['secret']}\r\n"
               "Accept: application/json\r\nConnection: close\r\n\r\n").encode()
    try:
        status, body = _exchange(host, port, request, time.monotonic() + within)
    except TimeoutError:
        raise Unavailable(f"the engine at {host}:{port} did not answer within {within * 1000:.0f} ms") from None
    except (OSError, ValueError) as exc:
        raise Unavailable(f"the engine at {host}:{port} did not answer ({exc})") from None
    try:
        return status, json.loads(body)
    except ValueError:
        raise Unavailable(f"the engine answered {status} without JSON") from None


def _exchange(host: str, port: int, request: bytes, deadline: float) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection, read to its end before ``deadline``.
    (http.client would cost a third of this path's import time, for its email parser and ssl.)"""
    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        return remaining

    with socket.create_connection((host, port), timeout=left()) as sock:
        sock.sendall(request)
        data = b""
        while True:
            sock.settimeout(left())
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("an incomplete answer")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "chunked" in headers.get("transfer-encoding", ""):
        body = _unchunked(body)
    return status, body


def _unchunked(body: bytes) -> bytes:
    out, at = b"", 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return out
        out += body[end + 2:end + 2 + size]
        at = end + 2 + size + 2
