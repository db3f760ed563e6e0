"""The warm engine behind `rq serve`: one queue's index, encoder and parsed queue held in memory.

Every answer is made by the same core function the command line calls (rq.rank.search.search_with,
rq.rank.suggest.nextread, rq.report...), so the API's JSON is the CLI's --json. The engine watches
the queue file, the archive and the index manifest by their modification times: a changed queue
is parsed again at once, so read state is current in the very next answer, and new or changed
links are indexed in a background thread while the old index keeps answering; the new one is
swapped in when ready.

One lock serialises the answers: they share one SQLite connection and one FAISS index, and on a
two-core machine running them side by side would not be faster.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rq.settings import Settings

POLL_S = 1.0  # how often the watcher looks at the files when no request comes


class WarmEngine:
    def __init__(self, settings: Settings, log: Callable[[str], None], poll: float = POLL_S):
        from rq.archive.queue_cache import keep_in_memory
        from rq.rank.engine import SearchEngine

        # next, related, items, show... each open the queue: parsed once per change, not per answer.
        keep_in_memory()
        self.settings = settings
        self.log = log
        self._lock = threading.RLock()
        self.search_engine = SearchEngine(settings, log)
        # Said once, at start; an answer carries only what happened while making it.
        self.search_engine.notices.clear()
        self.embedder = self.search_engine.embedder
        self.location = self.search_engine.location
        # The first query pays for lazy loads (tokenizer, BM25 tables): paid here, not by a person.
        self.search_engine.rank("warm up")
        self._seen = self._stamps()
        self._job: threading.Thread | None = None
        self.reindexing = False
        self.changes = 0  # how many times the files changed under the engine (pages show it)
        self._cache: dict = {}  # slow answers (clusters, the map) per state of the files
        self._stop = threading.Event()
        self._poll = poll
        self._watcher = threading.Thread(target=self._watch, name="rq-watch", daemon=True)
        self._watcher.start()

    # ------------------------------------------------------------------ watching

    def _stamps(self) -> tuple:
        """Modification time and size of the files an answer depends on."""
        index_dir = self.location.index_dir
        stamps = []
        for path in (self.location.queue_path, index_dir / "archive.sqlite", index_dir / "archive.sqlite-wal",
                     index_dir / "manifest.json"):
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.fresh()
            except Exception as exc:  # the watcher must outlive a bad moment (a half-saved file)
                self.log(f"watching the queue: {exc}")

    def fresh(self) -> None:
        """Take in what changed since the last look: read state now, the index in the background."""
        if self._stamps() == self._seen:
            return
        with self._lock:
            stamps = self._stamps()
            if stamps == self._seen:
                return
            self._seen = stamps
            self.changes += 1
            self._cache.clear()
            self._reread()

    def _reread(self) -> None:
        from rq.archive.session import open_to_read
        from rq.index.build import model_id, staleness
        from rq.index.manifest import read_manifest

        location, queue, archive = open_to_read(self.settings)
        try:
            reason = staleness(location, queue, archive, self.settings, model_id(self.settings, self.embedder))
        finally:
            archive.close()
        # Ranking reads resources (and their read state) from this queue: a tick shows at once.
        self.search_engine.queue = queue
        loaded = self.search_engine.loaded.manifest.generation
        on_disk = read_manifest(location.index_dir).generation if reason is None else None
        if reason is not None or on_disk != loaded:
            self._reindex_in_background(reason)

    def _reindex_in_background(self, reason: str | None) -> None:
        if self._job is not None and self._job.is_alive():
            return  # the running job re-checks when it ends
        self.reindexing = True
        self._job = threading.Thread(target=self._reindex, args=(reason,), name="rq-reindex", daemon=True)
        self._job.start()

    def _reindex(self, reason: str | None) -> None:
        from rq.index.build import build_index
        from rq.rank.engine import SearchEngine

        try:
            if reason:
                self.log(f"{reason}: re-indexing in the background")
                build_index(self.settings, embedder=self.embedder, notice=self.log)
            fresh = SearchEngine(self.settings, self.log, embedder=self.embedder)
            fresh.notices.clear()
            with self._lock:
                old, self.search_engine = self.search_engine, fresh
                self._cache.clear()
                self._seen = None  # look again: the queue may have changed while this ran
            old.close()
            self.log("index reloaded")
        except Exception as exc:
            self.log(f"re-indexing failed, the previous index keeps answering: {exc}")
        finally:
            self.reindexing = False

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait for a background re-index to end (tests and benchmarks)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.fresh()
            job = self._job
            if job is None or not job.is_alive():
                if self._stamps() == self._seen:
                    return True
            else:
                job.join(max(0.0, end - time.monotonic()))
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        job = self._job
        if job is not None:
            job.join(timeout=60)
        with self._lock:
            self.search_engine.close()

    # ------------------------------------------------------------------ answers

    def _answer(self, make: Callable[[], object]):
        self.fresh()
        with self._lock:
            return make()

    def search(self, query: str, k: int = 10, mode: str = "hybrid", section: str | None = None,
               read: bool | None = None, kind: str | None = None) -> dict:
        from rq.rank.search import Filters, search_with

        filters = Filters(section=section, read=read, kind=kind)
        return self._answer(lambda: search_with(self.search_engine, query, k, mode, filters).as_dict())

    def next(self, n: int = 5, section: str | None = None) -> dict:
        from rq.rank.suggest.nextread import next_reads

        return self._answer(lambda: next_reads(self.settings, n=n, section=section,
                                               embedder=self.embedder).as_dict())

    def related(self, ref: str, n: int = 5, as_text: bool = False) -> dict:
        from rq.rank.suggest.nextread import related_to

        return self._answer(lambda: related_to(self.settings, ref, n=n, as_text=as_text,
                                               embedder=self.embedder).as_dict())

    def sections(self) -> list[str]:
        """The queue's sections that hold resources, for the search filter."""
        return self._answer(lambda: sorted({r.section for r in self.search_engine.queue.resources if r.section}))

    def items(self, section: str | None = None, unread: bool = False, failed: bool = False,
              n: int | None = None) -> list[dict]:
        from rq.report.status import load_views, select

        def make():
            _, parsed, views = load_views(self.settings)
            chosen = select(parsed, views, section=section, unread=unread, failed=failed)
            return [v.as_dict() for v in (chosen[:n] if n else chosen)]
        return self._answer(make)

    def item(self, ref: str, chars: int = 800) -> dict:
        from rq.report.resource import resource_detail

        return self._answer(lambda: resource_detail(self.settings, ref, chars))

    def status(self) -> dict:
        from rq.report.status import load_views, summarize

        return self._answer(lambda: summarize(*load_views(self.settings)))

    def health(self) -> dict:
        from rq.report.health import health_report

        return self._answer(lambda: health_report(self.settings))

    def clusters(self, k: int | str = "auto") -> dict:
        from rq.rank.topics.report import cluster_report

        return self._cached(("clusters", k), lambda: cluster_report(self.settings, k, embedder=self.embedder).as_dict())

    def map_html(self) -> str:
        from rq.rank.topics.report import write_collection_map

        def make() -> str:
            with tempfile.TemporaryDirectory(prefix="rq-map-") as folder:
                out = Path(folder) / "map.html"
                write_collection_map(self.settings, out, embedder=self.embedder)
                return out.read_text(encoding="utf-8")
        return self._cached(("map",), make)

    def _cached(self, key: tuple, make: Callable[[], object]):
        """Clusters and the map take seconds: kept until the files change."""
        def cached():
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]
        return self._answer(cached)

    def mark(self, ref: str, state: str) -> tuple[dict, list[str]]:
        """`rq done` / `rq todo`: the same byte-exact edit; the answer, and its warnings."""
        from rq.archive.marks import mark, marked

        def make():
            result = mark(self.settings, ref, state)
            return marked(result), list(result.warnings)
        answer = self._answer(make)
        self.fresh()  # the next answer sees the new state, without waiting for the watcher
        return answer
