"""Isolated extraction: ``ExtractorPool`` runs ``extract`` in reusable child processes
(child.py) with a wall-clock limit (``settings.extract_timeout``) and an address-space
limit (``settings.extract_memory_mb``), so one hostile or broken document (a parser
crash, a page that takes minutes, a memory blow-up) marks only that document, with the
problem "timeout", "crashed" or "too_much_memory".

``extract_isolated`` uses a default pool of up to two workers; ``close`` stops it.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading

from rq.extract.document import Extracted, problem
from rq.extract.sniff import sniff_kind
from rq.settings import Settings

_WORKER_CODE = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from rq.extract.child import main; main()"
)


class _Worker:
    """One child process started with ``python -c`` (no re-import of the caller's __main__)."""

    def __init__(self) -> None:
        self.process = None
        self.inbox = None  # we read results here
        self.outbox = None  # we send documents here
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive else None

    def start(self, startup_timeout: float) -> None:
        import json
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        self.kill()
        command = [sys.executable, "-c", _WORKER_CODE, json.dumps(sys.path), str(os.getpid())]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True
        )
        self.starts += 1
        self.process = process
        self.outbox = Connection(os.dup(process.stdin.fileno()), readable=False)
        self.inbox = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        try:
            ready = self.inbox.poll(startup_timeout) and self.inbox.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self.kill()
            raise RuntimeError(f"the extraction process did not start ({_exit_detail(code)})")

    def kill(self) -> int | None:
        """Stop the process now; returns its exit status if there was one."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            try:
                code = self.process.wait(10)
            except Exception:  # pragma: no cover - a process that survives SIGKILL
                code = None
        for conn in (self.inbox, self.outbox):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self.process = self.inbox = self.outbox = None
        return code

    def stop(self) -> None:
        if self.alive:
            try:
                self.outbox.send(None)
                self.process.wait(2)
            except Exception:
                pass
        self.kill()


def _exit_detail(code: int | None) -> str:
    if code is None:
        return "the extraction process died"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the extraction process died ({name})"
    return f"the extraction process exited with code {code}"


class ExtractorPool:
    """Up to ``size`` long-lived extraction processes, each started on first use and
    restarted only after it was killed (timeout) or died (crash, memory).

    Thread-safe: each call borrows one idle worker, waiting while all are busy.
    Use as a context manager or call ``close()`` to stop the processes.
    """

    def __init__(self, size: int = 1, startup_timeout: float = 120.0):
        if size < 1:
            raise ValueError("an ExtractorPool needs at least one worker")
        self.size = size
        self.startup_timeout = startup_timeout
        self._workers = [_Worker() for _ in range(size)]
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in reversed(self._workers):
            self._idle.put(worker)

    def __enter__(self) -> "ExtractorPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def starts(self) -> int:
        """Processes started so far (first starts and restarts)."""
        return sum(w.starts for w in self._workers)

    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [pid for pid in (w.pid for w in self._workers) if pid is not None]

    def extract(self, body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
        worker = self._idle.get()
        try:
            return self._run(worker, bytes(body), content_type, url or "", settings)
        except BaseException:
            worker.kill()  # interrupted half-way: the worker's state is unknown
            raise
        finally:
            self._idle.put(worker)

    def _run(self, worker: _Worker, body: bytes, content_type, url: str, settings: Settings) -> Extracted:
        kind = sniff_kind(body, content_type, url)
        message = (body, content_type, url, settings.pdf_max_pages, settings.extract_memory_mb)
        for attempt in (1, 2):
            if not worker.alive:
                try:
                    worker.start(self.startup_timeout)
                except (RuntimeError, OSError) as exc:
                    return problem(kind, "crashed", f"cannot run the extraction process: {exc}")
            try:
                worker.outbox.send(message)
                break
            except (OSError, EOFError, ValueError):  # it died while idle: one fresh start
                worker.kill()
                if attempt == 2:
                    return problem(kind, "crashed", "cannot send the document to the extraction process")
        del message
        timeout = settings.extract_timeout
        try:
            ready = worker.inbox.poll(timeout if timeout and timeout > 0 else None)
        except (OSError, EOFError):
            ready = True  # recv below reports the death
        if not ready:
            worker.kill()
            return problem(kind, "timeout", f"extraction took longer than {timeout:g} s and was stopped")
        try:
            status, result = worker.inbox.recv()
        except (OSError, EOFError):
            code = worker.kill()
            return problem(kind, "crashed", _exit_detail(code))
        if status == "retire":
            worker.kill()  # it is leaving anyway; reap it now so the next call starts a fresh one
        return result

    def close(self) -> None:
        """Stop every worker. The pool stays usable: workers start again on demand."""
        for worker in self._workers:
            worker.stop()


_default_pool: ExtractorPool | None = None
_default_lock = threading.Lock()


def _pool() -> ExtractorPool:
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = ExtractorPool(size=max(1, min(2, os.cpu_count() or 1)))
            atexit.register(close)
        return _default_pool


def extract_isolated(body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
    """Like ``extract`` but in a reusable child process with settings.extract_timeout and
    settings.extract_memory_mb; a crash, timeout or memory blow-up marks only this document."""
    return _pool().extract(body, content_type, url, settings)


def close() -> None:
    """Stop the default pool's worker processes (they restart if extract_isolated is called again)."""
    with _default_lock:
        pool = _default_pool
    if pool is not None:
        pool.close()
