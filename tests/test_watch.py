"""`rq watch`: a save of the queue file fetches and indexes the links it added, once per save
burst, without ever holding the file open; Ctrl-C ends it cleanly."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from support.http import static
from support.routes import page

FETCH_ENV = {"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}


def _rq(*args):
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **FETCH_ENV}, timeout=300)


def _wait_for(log, text: str, count: int, timeout: float = 180.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen = log.read_text(errors="replace")
        if seen.count(text) >= count:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} x{count} not seen in time:\n{log.read_text(errors='replace')[-3000:]}")


def _holds_open(pid: int, path) -> bool:
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == str(path):
                return True
        except OSError:
            continue
    return False


def test_a_save_is_fetched_and_indexed_once_and_the_file_is_never_held(tmp_path, http_server):
    first = http_server.route("/watch/first", static(page("Gardening", "Tomatoes need sun and water. " * 30,
                                                          nav="", footer=None)))
    second = http_server.route("/watch/second", static(page(
        "Lighthouse keepers", "The lighthouse keeper trimmed the lamp wick every evening at dusk. " * 30,
        nav="", footer=None)))
    queue = tmp_path / "reading.md"
    head = f"# Reading\n\n## Garden\n- [ ] [Gardening]({first})\n- [ ] [Gone](http://nonexistent.invalid/x)\n"
    queue.write_text(head)
    index = tmp_path / "ix"
    log = tmp_path / "watch.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "rq", "watch", "--queue", str(queue), "--index", str(index),
                                 "--settle", "0.5"], stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, **FETCH_ENV})
    try:
        _wait_for(log, "rq: watching", 1)
        assert not _holds_open(proc.pid, queue)
        # An editor's save as a burst: truncated, half written, then whole, 50 ms apart.
        line = f"- [ ] [Lighthouse keepers]({second})\n"
        for text in ("", head, head + line[:20], head + line):
            queue.write_text(text)
            time.sleep(0.05)
        seen = _wait_for(log, "rq: watching", 2)
        assert seen.count("rq: the queue changed") == 1, seen
        after_save = seen.split("rq: the queue changed", 1)[1]
        # Only the new link is fetched: the dead one is not tried again at every save.
        assert "1 fetched" in after_save and "0 failed" in after_save, after_save
        holds = []
        sampler = threading.Thread(target=lambda: holds.extend(_holds_open(proc.pid, queue) for _ in range(20)))
        sampler.start()
        sampler.join()
        assert not any(holds)
        found = json.loads(_rq("search", "lighthouse keeper lamp wick", "--queue", queue, "--index", index,
                               "--json").stdout)["results"]
        assert found[0]["title"] == "Lighthouse keepers" and found[0]["fetch"] == "archived"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert code == 0 and "stopped watching" in text and "Traceback" not in text, text[-2000:]


def test_the_embedded_sample_is_not_watched():
    proc = subprocess.run([sys.executable, "-m", "rq", "watch"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "RQ_QUEUE"})
    assert proc.returncode == 2 and "embedded sample queue never changes" in proc.stderr
