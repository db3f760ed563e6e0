"""Crash safety: SIGKILL rq at random moments and check that nothing it leaves is half-written.

A local HTTP server on 127.0.0.1 serves ``pages`` pages (a third change on every
request, so re-ingests keep rewriting documents), each after a small random delay.
A queue file in a temporary folder lists them. Then, until ``kills`` real kills:
run a random one of ``rq ingest --refresh --no-index``, ``rq index``, ``rq index --rebuild``
or ``rq done``/``rq todo`` on a random item as a subprocess, SIGKILL it (half the time at
a random moment of its run, half the time a random instant after its first write is
seen), and check:

* the kill happened (return code -9; a run that finished first is not counted);
* ``PRAGMA integrity_check`` is ok; ids are not duplicated; every body a document or
  a fetch names is in ``raw/``; every file in ``raw/`` hashes to its name;
* ``manifest.json`` parses, and the vector, keyword and resource-vector files it
  implies exist and load; partial files exist only under temporary names
  (``.rq-tmp-*``, ``.<name>.*.tmp``, a ``keywords/gen-N`` that CURRENT does not name);
* the queue file's bytes are exactly the version before the command or the one it
  was asked to write: never a mix, never truncated.

At the end a clean ``rq ingest`` (which updates the index too) + ``rq index`` +
``rq search`` must succeed, with one resource row per id, every page archived and
one document per resource.

``stress()`` runs it all. benchmarks/stress_crash.py is its command line; the test suite
runs it smaller and without the index (tests/test_crash.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rq.files import TMP_PREFIX
from rq.queue.ids import resource_id

from .http import FixtureServer, static
from .queues import queue_text
from .routes import page, random_paragraphs

# "rebuild" is `rq index --rebuild`: with every vector cached it loads no model, so its kills
# land among the index file writes; a plain `rq index` after an ingest embeds the changed pages.
FULL_WEIGHTS = {"ingest": 0.40, "mark": 0.35, "index": 0.15, "rebuild": 0.10}
LIGHT_WEIGHTS = {"ingest": 0.5, "mark": 0.5}
QUERY = "feature pipeline latency"
_VECTOR_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # rq.index.vectors.write_atomic's temporary names
_INDEX_FILES = ("manifest.json", "vectors.faiss", "resources.npz")


# -- the site and the queue ------------------------------------------------------------------


def serve_pages(server: FixtureServer, n: int, seed: int, prefix: str = "/crash") -> list[str]:
    """Register ``n`` pages; every third one changes on each request. Returns their URLs."""
    rng = random.Random(seed)
    urls = []
    for i in range(n):
        fixed = random_paragraphs(rng, 6, 50)
        dynamic = i % 3 == 0
        pool = [random_paragraphs(rng, 1, 50) for _ in range(12)]

        def handle(req, i=i, fixed=fixed, dynamic=dynamic, pool=pool):
            local = random.Random()
            time.sleep(local.uniform(0.0, 0.1))
            body = fixed + ("".join(local.sample(pool, 4)) if dynamic else "")
            static(page(f"Crash page {i}", html=body, nav="", footer=None))(req)

        urls.append(server.route(f"{prefix}/{i}", handle))
    return urls


def render_queue(urls: list[str], read: set[str]) -> bytes:
    items = [(f"Crash page {i}", u, resource_id(u) in read, f"note {i}") for i, u in enumerate(urls)]
    return queue_text(items, "Crash queue", "Pages").encode()


# -- checks ----------------------------------------------------------------------------------


def _is_temp(path: Path) -> bool:
    return path.name.startswith(TMP_PREFIX) or bool(_VECTOR_TMP.match(path.name))


def check_index_folder(index: Path) -> tuple[list[str], Counter]:
    """Problems found in the index folder, and the temporary files lying there by kind."""
    problems: list[str] = []
    temps: Counter = Counter()
    db = index / "archive.sqlite"
    if not db.exists():
        return problems, temps
    conn = sqlite3.connect(db, timeout=30)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            problems.append(f"integrity_check: {result}")
        for table, key in (("resources", "id"), ("documents", "resource_id")):
            total, distinct = conn.execute(f"SELECT COUNT(*), COUNT(DISTINCT {key}) FROM {table}").fetchone()
            if total != distinct:
                problems.append(f"{table}: {total} rows for {distinct} ids")
        shas = {r[0] for r in conn.execute("SELECT body_sha FROM documents UNION SELECT body_sha FROM fetches "
                                           "WHERE body_sha IS NOT NULL")}
    finally:
        conn.close()
    for sha in shas:
        if not (index / "raw" / sha[:2] / sha).is_file():
            problems.append(f"body {sha[:12]} is referenced but not in raw/")
    raw = index / "raw"
    if raw.is_dir():
        for path in raw.rglob("*"):
            if path.is_dir():
                continue
            if _is_temp(path):
                temps["raw temp"] += 1
            elif hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
                problems.append(f"raw/{path.parent.name}/{path.name[:12]}… does not hash to its name")
    problems += _check_derived(index, temps)
    for path in index.iterdir():
        if path.is_file() and _is_temp(path):
            temps["index temp"] += 1
        elif path.name not in {"archive.sqlite", "archive.sqlite-wal", "archive.sqlite-shm", ".lock", "raw",
                               "keywords", "queue-parse.json", *_INDEX_FILES}:
            problems.append(f"unexpected file in the index folder: {path.name}")
    return problems, temps


def _check_derived(index: Path, temps: Counter) -> list[str]:
    problems: list[str] = []
    manifest = None
    if (index / "manifest.json").exists():
        from rq.errors import ArchiveError
        from rq.index.manifest import read_manifest
        try:
            manifest = read_manifest(index)
        except ArchiveError as exc:
            problems.append(f"manifest.json does not parse or fails its checksum: {exc}")
    if (index / "vectors.faiss").exists():
        from rq.index.vectors import VectorIndex
        try:
            VectorIndex.load(index / "vectors.faiss")
        except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
            problems.append(f"vectors.faiss does not load: {exc}")
    elif manifest is not None:
        problems.append("manifest.json exists but vectors.faiss does not")
    if (index / "resources.npz").exists():
        import numpy as np
        try:
            with np.load(index / "resources.npz") as data:
                data["ids"], data["vectors"], int(data["generation"])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"resources.npz does not load: {exc}")
    elif manifest is not None:
        problems.append("manifest.json exists but resources.npz does not")
    keywords = index / "keywords"
    if (keywords / "CURRENT").exists():
        from rq.index.keyword import KeywordIndex
        try:
            KeywordIndex.load(keywords)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"keywords do not load: {exc}")
        current = (keywords / "CURRENT").read_text().strip()
        for path in keywords.iterdir():
            if path.is_dir() and path.name != current:
                temps["keyword generation not yet current"] += 1
            elif path.is_file() and _is_temp(path):
                temps["keywords temp"] += 1
    elif manifest is not None:
        problems.append("manifest.json exists but keywords/CURRENT does not")
    return problems


def fingerprint(index: Path, queue: Path) -> tuple:
    """What a command may change: used to tell a kill mid-work from a kill before any write."""
    db = index / "archive.sqlite"
    counts: tuple = ()
    if db.exists():
        conn = sqlite3.connect(db, timeout=30)
        try:
            counts = tuple(conn.execute(
                "SELECT (SELECT COUNT(*) FROM fetches), (SELECT COUNT(*) FROM read_events), "
                "(SELECT COUNT(*) FROM embeddings), (SELECT value FROM meta WHERE key = 'generation'), "
                "(SELECT COUNT(*) FROM resources)").fetchone())
        finally:
            conn.close()
    manifest = index / "manifest.json"
    return counts, manifest.stat().st_mtime_ns if manifest.exists() else None, queue.read_bytes()


# -- the harness -----------------------------------------------------------------------------


@dataclass
class Report:
    attempts: int = 0
    kills: int = 0
    attempted_by_command: Counter = field(default_factory=Counter)
    kills_by_command: Counter = field(default_factory=Counter)
    finished_first_by_command: Counter = field(default_factory=Counter)
    kills_mid_work: int = 0  # the killed command had already written something
    mid_work_by_command: Counter = field(default_factory=Counter)
    kills_by_mode: Counter = field(default_factory=Counter)
    temps_after_kills: Counter = field(default_factory=Counter)  # checks after a kill that found temp files
    queue_new_after_kill: int = 0  # a killed done/todo whose edit had landed
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    temps: Counter = field(default_factory=Counter)  # temporary files seen at the end
    queue_temps: int = 0
    final: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        lines = [f"kills attempted: {self.attempts}, real kills (exit -9): {self.kills}, "
                 f"finished before the kill: {self.attempts - self.kills}",
                 f"real kills that hit a command mid-work (after its first write): {self.kills_mid_work}",
                 f"kills by timing: {dict(self.kills_by_mode)}"]
        for command in sorted(self.attempted_by_command):
            lines.append(f"  {command:<7} attempted {self.attempted_by_command[command]:>4}, "
                         f"killed {self.kills_by_command[command]:>4} "
                         f"({self.mid_work_by_command[command]} mid-work), "
                         f"finished first {self.finished_first_by_command[command]:>3}")
        lines.append(f"killed done/todo whose edit had already landed: {self.queue_new_after_kill}")
        lines.append(f"checks passed: {self.checks - len(self.failures)} of {self.checks}")
        lines.append(f"checks after a kill that found temporary files (allowed; swept by the next writer): "
                     f"{dict(self.temps_after_kills) or 'none'}")
        lines.append(f"temporary files left at the end: {dict(self.temps) or 'none'}; "
                     f"in the queue's folder: {self.queue_temps}")
        for key, value in self.final.items():
            lines.append(f"final {key}: {value}")
        lines.append(f"wall time: {self.seconds:.0f} s")
        lines += [f"FAILED: {f}" for f in self.failures]
        return lines


class Harness:
    def __init__(self, workdir: Path, urls: list[str], seed: int, weights: dict[str, float],
                 log=print) -> None:
        self.dir = workdir
        self.queue = workdir / "queue.md"
        self.index = workdir / "index"
        self.urls = urls
        self.ids = [resource_id(u) for u in urls]
        self.read: set[str] = set()
        self.rng = random.Random(seed)
        self.weights = weights
        self.log = log
        self.report = Report()
        self.durations: dict[str, list[float]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}
        self.env.update(RQ_ALLOW_PRIVATE="1", RQ_FETCH_HOST_DELAY="0", RQ_FETCH_PER_HOST="4",
                        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                        XDG_CONFIG_HOME=str(workdir / "xdg-config"), XDG_DATA_HOME=str(workdir / "xdg-data"))
        self.queue.write_bytes(render_queue(urls, self.read))

    # -- commands
    def argv(self, command: str, ident: str | None = None) -> list[str]:
        where = ["--queue", str(self.queue), "--index", str(self.index)]
        if command == "ingest":  # the index step of `rq ingest` is exercised by `rq index`
            return ["ingest", "--refresh", "--no-index", *where]
        if command == "index":
            return ["index", *where]
        if command == "rebuild":
            return ["index", "--rebuild", *where]
        if command == "search":
            return ["search", QUERY, "-k", "5", "--json", *where]
        return [command, ident, *where]

    def start(self, args: list[str], out=subprocess.PIPE, err=subprocess.PIPE) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rq", *args], env=self.env, cwd=self.dir,
                                stdout=out, stderr=err, start_new_session=True)

    def run_to_end(self, args: list[str], timeout: float = 900, key: str | None = None) -> subprocess.CompletedProcess:
        started = time.monotonic()
        proc = self.start(args)
        out, err = proc.communicate(timeout=timeout)
        self.durations.setdefault(key or args[0], []).append(time.monotonic() - started)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def _reap_group(self, pgid: int) -> None:
        """Wait for what the killed command started (the extraction worker leaves when its
        parent dies); stop it if it lingers. Only this process group, which we started."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- one round
    def pick(self) -> tuple[str, str | None, bytes | None]:
        """(command, id, the queue bytes the command would write or None)."""
        names = list(self.weights)
        kind = self.rng.choices(names, [self.weights[n] for n in names])[0]
        if kind != "mark":
            return kind, None, None
        ident = self.rng.choice(self.ids)
        if ident in self.read:
            return "todo", ident, render_queue(self.urls, self.read - {ident})
        return "done", ident, render_queue(self.urls, self.read | {ident})

    def reference(self, command: str) -> float:
        known = self.durations.get(command) or self.durations.get("done") or [1.0]
        return known[-1]

    def _first_write(self, proc: subprocess.Popen, before: tuple, until: float) -> bool:
        """Poll until the command has changed the archive, the index files or the queue."""
        while proc.poll() is None and time.monotonic() < until:
            if fingerprint(self.index, self.queue) != before:
                return True
            time.sleep(0.01)
        return False

    def kill_delay(self, command: str) -> float:
        """Anywhere in the command's run time as measured in the warm-up (the last run there,
        in the state the rounds see: after a --refresh that changed pages). Not updated from
        later runs: only short ones finish before their kill, which would drag the estimate
        down. rq index writes only after loading the model and embedding, so its kills are
        drawn from the later part of its run."""
        low = 0.3 if command in ("index", "rebuild") else 0.0
        return self.rng.uniform(low, 1.1) * self.reference(command)

    def round(self) -> None:
        command, ident, new_queue = self.pick()
        before_queue = self.queue.read_bytes()
        before = fingerprint(self.index, self.queue)
        delay = self.kill_delay(command)
        # Half the kills at a random moment of the run; half shortly after the command's first
        # write is seen (rq index spends most of its run loading the model and embedding, so
        # random moments rarely catch it among its file writes).
        mode = "after first write" if self.rng.random() < 0.5 else "random moment"
        started = time.monotonic()
        with tempfile.TemporaryFile() as errfile:  # a file, not a pipe: a full pipe would stall the command
            proc = self.start(self.argv(command, ident), out=subprocess.DEVNULL, err=errfile)
            if mode == "random moment":
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    pass
            elif self._first_write(proc, before, started + 3 * self.reference(command) + 5):
                # rq index writes its passages, vectors, keywords and manifest within ~0.3 s.
                time.sleep(self.rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            elapsed = time.monotonic() - started
            self._reap_group(proc.pid)
            errfile.seek(0)
            err = errfile.read()
        report = self.report
        report.attempts += 1
        report.attempted_by_command[command] += 1
        killed = proc.returncode == -signal.SIGKILL
        if killed:
            report.kills += 1
            report.kills_by_command[command] += 1
            report.kills_by_mode[mode] += 1
            if fingerprint(self.index, self.queue) != before:
                report.kills_mid_work += 1
                report.mid_work_by_command[command] += 1
        else:
            report.finished_first_by_command[command] += 1
            if proc.returncode not in (0,):
                self.fail(f"{command} finished with exit {proc.returncode}: {err.decode(errors='replace')[-300:]}")
        self.check_queue(command, ident, before_queue, new_queue, killed, proc.returncode)
        temps = self.check_folder(f"after {command} ({'killed' if killed else 'finished'} at {elapsed:.2f}s)")
        if killed:
            for kind in temps:
                report.temps_after_kills[kind] += 1
            if any(p.name.startswith(TMP_PREFIX) for p in self.dir.iterdir()):
                report.temps_after_kills["queue folder temp"] += 1
        self.log(f"{report.attempts:>4} {command:<6} {'KILLED' if killed else 'finished'} after {elapsed:5.2f}s "
                 f"(kills {report.kills})")

    def fail(self, message: str) -> None:
        self.report.failures.append(message)
        self.log("FAILED: " + message)

    def check_queue(self, command: str, ident: str | None, before: bytes, new: bytes | None,
                    killed: bool, code: int | None) -> None:
        self.report.checks += 1
        now = self.queue.read_bytes()
        if now == before:
            if new is not None and not killed:
                self.fail(f"{command} {ident} exited {code} but the queue file was not changed")
            return
        if new is not None and now == new:
            self.read = (self.read | {ident}) if command == "done" else (self.read - {ident})
            if killed:
                self.report.queue_new_after_kill += 1
            return
        self.fail(f"queue file after {command}: {len(now)} bytes, neither the old ({len(before)}) "
                  f"nor the new version ({len(new) if new else '-'})")
        self.queue.write_bytes(before)  # carry on from a known state

    def check_folder(self, when: str) -> Counter:
        self.report.checks += 1
        problems, temps = check_index_folder(self.index)
        for problem in problems:
            self.fail(f"{when}: {problem}")
        return temps

    # -- the whole run
    def warm_up(self, commands: list[str]) -> None:
        """Run each command once to the end: it fills the archive and times the commands."""
        for command in commands:
            ident = self.ids[0] if command in ("done", "todo") else None
            proc = self.run_to_end(self.argv(command, ident), key=command)
            if proc.returncode != 0:
                self.fail(f"warm-up {command} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-400:]}")
            if command == "done":
                self.read.add(ident)
            if command == "todo":
                self.read.discard(ident)
        self.check_queue("warm-up", None, render_queue(self.urls, self.read), None, False, 0)

    def run(self, kills: int, max_attempts: int) -> Report:
        while self.report.kills < kills and self.report.attempts < max_attempts:
            self.round()
        if self.report.kills < kills:
            self.fail(f"only {self.report.kills} real kills in {self.report.attempts} attempts")
        return self.report

    def finish(self, with_index: bool) -> None:
        """A clean run after all the kills must work and leave a complete, unduplicated archive."""
        report = self.report
        steps = [["ingest", "--queue", str(self.queue), "--index", str(self.index)]
                 + ([] if with_index else ["--no-index"])]
        if with_index:
            steps += [self.argv("index"), self.argv("search")]
        for args in steps:
            proc = self.run_to_end(args)
            report.checks += 1
            if proc.returncode != 0:
                self.fail(f"clean {args[0]} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-400:]}")
            elif args[0] == "search":
                hits = json.loads(proc.stdout)["results"]
                report.final["search hits"] = len(hits)
                if not hits:
                    self.fail("clean search found nothing")
        self.check_folder("after the clean run")
        conn = sqlite3.connect(self.index / "archive.sqlite")
        try:
            rows, ids = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM resources").fetchone()
            docs, doc_ids, with_text = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT resource_id), SUM(LENGTH(text) > 0) FROM documents").fetchone()
        finally:
            conn.close()
        report.checks += 3
        report.final.update(resources=f"{rows} rows, {ids} ids", documents=f"{docs} ({with_text} with text)")
        if rows != ids or ids != len(self.urls):
            self.fail(f"resources: {rows} rows, {ids} distinct ids, {len(self.urls)} pages")
        if docs != doc_ids or docs != len(self.urls) or with_text != len(self.urls):
            self.fail(f"documents: {docs} rows, {doc_ids} resources, {with_text} with text, {len(self.urls)} pages")
        report.checks += 1
        if self.queue.read_bytes() != render_queue(self.urls, self.read):
            self.fail("the queue file does not match the read state the harness expects")
        _, report.temps = check_index_folder(self.index)
        report.queue_temps = sum(1 for p in self.dir.iterdir() if p.name.startswith(TMP_PREFIX))


def stress(kills: int, seed: int, pages: int, with_index: bool, workdir: Path,
           server: FixtureServer | None = None, log=print, max_attempts: int | None = None) -> Report:
    """The whole harness: serve, warm up, kill ``kills`` times, finish cleanly. Returns the report."""
    started = time.monotonic()
    own = server is None
    server = server or FixtureServer().start()
    try:
        urls = serve_pages(server, pages, seed, prefix=f"/crash-{seed}")
        harness = Harness(workdir, urls, seed, FULL_WEIGHTS if with_index else LIGHT_WEIGHTS, log)
        # Twice each: the second runs are timed in the state the rounds see (pages changed since
        # the last run, the embedding cache warm).
        warm = ["ingest", "done", "todo"] + (["index", "rebuild"] if with_index else [])
        harness.warm_up(warm + warm)
        harness.run(kills, max_attempts or 4 * kills)
        harness.finish(with_index)
    finally:
        if own:
            server.stop()
    harness.report.seconds = time.monotonic() - started
    return harness.report

