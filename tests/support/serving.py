"""A real `rq serve` for tests and benchmarks: a subprocess on 127.0.0.1, on a free port.

    engine = Engine.start(queue, index, env)   # waits until the engine file names its port
    httpx.get(engine.url("/api/status"))
    engine.stop()

The port comes from the engine file the server writes into the index folder (``--port 0``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass
class Engine:
    proc: subprocess.Popen
    index: Path
    info: dict
    log_path: Path

    @classmethod
    def start(cls, queue: Path | None, index: Path, env: dict | None = None, args: tuple = (),
              timeout: float = 240) -> Engine:
        engine_file = index / "serve.json"
        if engine_file.exists():
            engine_file.unlink()
        log_path = index.parent / f"{index.name}-serve.log"
        command = [sys.executable, "-m", "rq", "serve", "--port", "0", "--index", str(index), *map(str, args)]
        if queue is not None:
            command += ["--queue", str(queue)]
        log = log_path.open("w")
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"rq serve ended with {proc.returncode}: {log_path.read_text()[-2000:]}")
            if engine_file.exists():
                try:
                    info = json.loads(engine_file.read_text())
                except ValueError:
                    info = None  # caught while being written
                if info:
                    return cls(proc, index, info, log_path)
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"rq serve did not start within {timeout} s: {log_path.read_text()[-2000:]}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    def url(self, path: str) -> str:
        return self.base + path

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, how: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(how)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


HOSTILE_TEXT = 'Attackers hide <script>alert("pwned")</script> and <iframe src="http://evil.example/"></iframe> in text.'


def isolated_env(folder: Path, cache: Path) -> dict:
    """The environment the autouse fixture gives each test (tests/conftest.py), for processes a
    module-scoped fixture starts before that fixture runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}
    env.update(XDG_CONFIG_HOME=str(folder / "xdg-config"), XDG_DATA_HOME=str(folder / "xdg-data"),
               XDG_CACHE_HOME=str(cache), RQ_EMBED_BACKEND="torch", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def build_library(folder: Path, http_server, env: dict) -> tuple[Path, Path]:
    """A queue of five pages served on 127.0.0.1 (one whose text holds markup as text) and one
    dead link, ingested and indexed by `rq ingest`: (queue file, index folder)."""
    from support.http import static
    from support.routes import page

    texts = {
        "feature-stores": ("Feature stores", "A feature store keeps training and serving features consistent."),
        "real-time": ("Real-time recommendations",
                      "Real-time recommender systems update candidates per session as users click."),
        "code-review": ("Code review habits", "Good code reviews are small, prompt and kind to the author."),
        "bandits": ("Bandits for recsys", "Contextual bandits trade exploration against exploitation in recsys."),
        "hostile": ("Markup in text", HOSTILE_TEXT.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
    }
    urls = {slug: http_server.route(f"/serve/{slug}", static(page(title, *[text] * 6, nav="", footer=None)))
            for slug, (title, text) in texts.items()}
    path = folder / "reading.md"
    path.write_text("# Reading\n\n## MLOps\n"
                    f"* [ ] [Feature stores]({urls['feature-stores']}) - consistency\n"
                    "* [x] [Dead link](http://nonexistent.invalid/post)\n\n"
                    "## Recommender systems\n"
                    f"* [x] [Real-time recommendations]({urls['real-time']})\n"
                    f"* [ ] [Bandits for recsys]({urls['bandits']})\n\n"
                    "## Engineering\n"
                    f"* [ ] [Code review habits]({urls['code-review']}) - <b>bold</b> note\n"
                    f"* [ ] [Markup in text]({urls['hostile']})\n")
    index = folder / "ix"
    proc = subprocess.run([sys.executable, "-m", "rq", "ingest", "--queue", str(path), "--index", str(index)],
                          capture_output=True, text=True, timeout=600,
                          env={**env, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"})
    assert proc.returncode == 0, proc.stderr
    return path, index


@contextlib.contextmanager
def running_library(folder: Path, http_server, cache: Path) -> Iterator[tuple["Engine", Path]]:
    """build_library's queue served by a real engine for a module's tests: (engine, queue file);
    ``engine.env`` is the environment it runs in, for `rq` processes beside it. Stopped after."""
    env = isolated_env(folder, cache)
    queue, index = build_library(folder, http_server, env)
    engine = Engine.start(queue, index, env)
    engine.env = env
    try:
        yield engine, queue
    finally:
        engine.stop()


def rq_json(*args, env: dict) -> tuple[int, object]:
    """`rq ARGS --json` as a subprocess: (exit code, parsed stdout)."""
    proc = subprocess.run([sys.executable, "-m", "rq", *map(str, args), "--json"], capture_output=True, text=True,
                          timeout=300, env=env)
    return proc.returncode, json.loads(proc.stdout)
