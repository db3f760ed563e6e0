"""The extraction child process (started by worker.py as ``python -c``): ``main`` warms
up the extractors, then extracts each document it is sent, under the address-space
limit it is sent with, and leaves after a memory failure or once it has grown big.

fd 0 brings ``(body, content_type, url, pdf_max_pages, memory_mb)`` tuples, fd 1 takes
``("done" | "retire", Extracted)`` back; the process leaves when its parent is gone.
"""

from __future__ import annotations

import os
import threading

from rq.extract.document import problem
from rq.extract.extract import dispatch
from rq.extract.sniff import sniff_kind

_WARM_UP_PAGE = (
    "<html><head><title>warm up</title><meta name='author' content='A. Writer'>"
    "<meta property='article:published_time' content='2020-01-02'></head><body><nav>home</nav><article>"
    + "<p>This paragraph only loads the extraction code before the first real document arrives.</p>" * 6
    + "</article><footer>footer</footer></body></html>"
)


def _set_memory_limit(memory_mb: int | None) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = resource.RLIM_INFINITY if not memory_mb or memory_mb <= 0 else int(memory_mb) * 1024 * 1024
    if hard != resource.RLIM_INFINITY and (want == resource.RLIM_INFINITY or want > hard):
        want = hard
    if want != soft:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        except (ValueError, OSError):  # some platforms (macOS) refuse address-space limits
            pass


def _proc_status_bytes(field: bytes) -> int | None:
    """A size from /proc/self/status (VmPeak: peak address space, VmRSS: resident now); None off Linux."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(field + b":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


_RETIRE_RSS = 1024 * 1024 * 1024  # a worker that grew past this (no limit set) is replaced


def _watch_parent(parent_pid: int) -> None:
    """Leave when the parent is gone (killed before it could close our pipe)."""
    import time

    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def main() -> None:
    """Child process main: fd 0 brings (document...) tuples, fd 1 takes results back.

    The protocol descriptors are moved aside so that a library printing to stdout
    cannot corrupt the stream.
    """
    import signal
    import sys
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; it kills us
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    parent = int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _worker_loop(inbox, outbox)


def _worker_loop(inbox, outbox) -> None:
    try:
        dispatch(_WARM_UP_PAGE.encode(), "text/html", "https://example.org/warm-up", 1)
        import pypdfium2  # noqa: F401
    except Exception:
        pass
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        body, content_type, url, pdf_max_pages, memory_mb = message
        del message
        limit = int(memory_mb) * 1024 * 1024 if memory_mb and memory_mb > 0 else None
        over = f"the extraction went over the {memory_mb} MB memory limit"
        _set_memory_limit(memory_mb)
        try:
            result = dispatch(body, content_type, url, pdf_max_pages)
        except MemoryError:
            result = problem(sniff_kind(body, content_type, url), "too_much_memory", over)
        del body
        peak = _proc_status_bytes(b"VmPeak") if limit else None
        if peak is not None and peak >= 0.9 * limit and result.problem in ("no_text", "crashed"):
            result = problem(result.kind, "too_much_memory", over)  # a parser gave up quietly at the limit
        elif result.problem == "too_much_memory":
            result = problem(result.kind, "too_much_memory", over)
        # Leave after a memory failure, or once grown big: the next document then gets a
        # fresh process (no leftovers, and VmPeak above stays about one document).
        if limit:
            retire = result.problem == "too_much_memory" or (peak is not None and peak >= 0.6 * limit)
        else:
            rss = _proc_status_bytes(b"VmRSS")
            retire = rss is not None and rss > _RETIRE_RSS
        _set_memory_limit(0)  # room to pickle the answer
        outbox.send(("retire" if retire else "done", result))
        if retire:
            return

