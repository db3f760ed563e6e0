"""A race between `rq done`/`rq todo` and an editor saving the same queue file.

A queue lists one item per edit, half of them ticked. Real ``python -m rq done`` (for an
unticked item) and ``rq todo`` (for a ticked one) processes run several at once, each on its
own item, while an editor process saves the file over and over: it reads the file, waits
about 50 ms, and writes back what it read plus one line of its own ("editor save 00017"),
either in place (truncate and write the same file, as ``open(path, "w")`` does) or by
renaming a new file over it. Then:

* every editor save must be in the final file (a lost save is rq's fault: rq must never
  overwrite what another program saved);
* every rq process must say "marked ..." or "already ..." (exit 0), or refuse in one line
  saying nothing was written (exit 1); never a traceback;
* every item must be in the state the race leaves it in: the one rq was asked for when rq
  said it marked it, unless a later editor save of what it had read before rq's write put
  the old state back. The editor knows exactly which ticks its save took out: in place it
  reads the very file it truncates, and by rename it swaps the names (renameat2), which
  hands back the file its save replaced;
* the final file is the original, item states aside, plus the editor's lines in order:
  nothing else lost, doubled or garbled, and no rq temporary file left.

``race()`` runs one editor style; benchmarks/stress_edit.py runs both, bigger, and
tests/test_edit.py runs both small.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rq.files import TMP_PREFIX, replace_keeping_old

STYLES = ("in-place", "rename")
_ITEM = re.compile(rb"^\* \[( |x)\] \[Item (\d+)\]", re.M)
_MARKER = re.compile(rb"^editor save (\d{5}) ", re.M)
_EDITOR_WAIT_S = 0.05  # between the editor's read and its save: the window rq must not write into


@dataclass
class Edit:
    item: int
    state: str  # asked for: "read" (rq done) or "unread" (rq todo)
    rc: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def outcome(self) -> str:
        if "Traceback" in self.stderr:
            return "failed"
        if self.rc == 0 and self.stdout.startswith("marked"):
            return "landed"
        if self.rc == 0 and self.stdout.startswith("already"):
            return "not changed"
        lines = self.stderr.strip().splitlines()
        if self.rc == 1 and lines and lines[-1].startswith("rq: ") and (
                "nothing was written" in lines[-1] or "was kept" in lines[-1]):
            return "refused"
        return "failed"

    @property
    def redone(self) -> bool:
        return "changed while rq was working" in self.stderr


@dataclass
class RaceReport:
    style: str
    edits: list[Edit]
    saves: int
    lost_saves: list[int]
    reverted: int  # rq ticks taken out again by an editor save of what it had read before
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(e.outcome == outcome for e in self.edits)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.lost_saves


def render(n_items: int, states: dict[int, str] | None = None) -> bytes:
    """The queue with every item in its state (the odd ones read when none is given)."""
    def box(j: int) -> str:
        state = states.get(j) if states is not None else ("read" if j % 2 else "unread")
        return {"read": "[x]", "unread": "[ ]"}.get(state, "[missing]")

    lines = ["# Edit race", "", "## Items"]
    lines += [f"* {box(j)} [Item {j}](https://race.example/{j})" for j in range(n_items)]
    lines += ["", "## Editor's lines", ""]
    return ("\n".join(lines) + "\n").encode()


def states_of(raw: bytes) -> dict[int, str]:
    return {int(m.group(2)): "read" if m.group(1) == b"x" else "unread" for m in _ITEM.finditer(raw)}


# -- the editor ---------------------------------------------------------------------------------


def _save_in_place(path: Path, data: bytes) -> bytes:
    """Truncate the file and write ``data`` into it; returns what the truncated file held."""
    while True:
        with open(path, "rb") as fh:
            seen, inode = fh.read(), os.fstat(fh.fileno()).st_ino
        fd = os.open(path, os.O_WRONLY)
        try:
            if os.fstat(fd).st_ino != inode:  # renamed over since the read: read the new file
                continue
            # Nobody else writes this file in place, so it still holds ``seen`` here.
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return seen


def _save_by_rename(path: Path, data: bytes) -> bytes:
    """Rename a new file over ``path``; returns what the file it replaced held."""
    tmp = path.with_name(f".editor-save-{os.getpid()}")
    tmp.write_bytes(data)
    replaced = replace_keeping_old(tmp, path)
    try:
        return replaced.read_bytes()
    finally:
        replaced.unlink()


def editor(path: str, style: str, seed: int, stop, log: str) -> None:
    """Save the file until ``stop`` is set; write to ``log`` the items each save reverted."""
    rng, path, saves = random.Random(seed), Path(path), []
    save = _save_in_place if style == "in-place" else _save_by_rename
    while not stop.is_set():
        read = path.read_bytes()
        time.sleep(_EDITOR_WAIT_S)
        data = read + f"editor save {len(saves) + 1:05d} ({style})\n".encode()
        seen = save(path, data)
        before, after = states_of(seen), states_of(data)
        saves.append([j for j, state in before.items() if after.get(j) != state])
        time.sleep(rng.uniform(0, 0.1))
    Path(log).write_text(json.dumps(saves))


# -- the race -----------------------------------------------------------------------------------


def _run_rq(edit: Edit, queue: Path, index: Path, env: dict) -> Edit:
    verb = "done" if edit.state == "read" else "todo"
    proc = subprocess.run([sys.executable, "-m", "rq", verb, f"https://race.example/{edit.item}",
                           "--queue", str(queue), "--index", str(index)],
                          capture_output=True, text=True, env=env, timeout=300)
    edit.rc, edit.stdout, edit.stderr = proc.returncode, proc.stdout, proc.stderr
    return edit


def race(workdir: Path, style: str, edits: int, parallel: int, seed: int) -> RaceReport:
    workdir.mkdir(parents=True, exist_ok=True)
    queue, index, log = workdir / "queue.md", workdir / "index", workdir / "editor.json"
    original = render(edits)
    queue.write_bytes(original)
    start_states = states_of(original)
    todo = [Edit(j, "unread" if start_states[j] == "read" else "read") for j in range(edits)]
    random.Random(seed).shuffle(todo)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_DATA_HOME": str(workdir / "xdg-data"),
           "XDG_CONFIG_HOME": str(workdir / "xdg-config")}
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=editor, args=(str(queue), style, seed, stop, str(log)))
    proc.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            done = list(pool.map(lambda e: _run_rq(e, queue, index, env), todo))
        seconds = time.monotonic() - started
    finally:
        stop.set()
        proc.join(timeout=60)
    report = RaceReport(style, done, 0, [], 0, seconds=seconds)
    if proc.exitcode != 0 or not log.is_file():
        report.failures.append(f"the editor process failed (exit {proc.exitcode})")
        return report
    check(report, original, queue.read_bytes(), json.loads(log.read_text()))
    leftovers = sorted(p.name for p in workdir.glob(f"{TMP_PREFIX}*"))
    if leftovers:
        report.failures.append(f"temporary files left beside the queue: {leftovers}")
    return report


def check(report: RaceReport, original: bytes, final: bytes, saves: list[list[int]]) -> None:
    """Fill in ``report``: lost saves, reverted ticks and every failure the final file shows."""
    report.saves = len(saves)
    present = [int(m.group(1)) for m in _MARKER.finditer(final)]
    report.lost_saves = sorted(set(range(1, len(saves) + 1)) - set(present))
    if present != sorted(set(present)):
        report.failures.append(f"editor lines doubled or out of order: {present[:20]}...")
    for edit in report.edits:
        if edit.outcome == "failed":
            report.failures.append(f"rq {edit.state} item {edit.item}: exit {edit.rc}: "
                                   f"{(edit.stdout + edit.stderr).strip()[-400:]}")
    reverted = {j for save in saves for j in save}
    report.reverted = sum(e.outcome == "landed" and e.item in reverted for e in report.edits)
    start, end = states_of(original), states_of(final)
    for edit in report.edits:
        landed = edit.outcome == "landed" and edit.item not in reverted
        expected = edit.state if landed else start[edit.item]
        if end.get(edit.item) != expected:
            report.failures.append(f"item {edit.item} is {end.get(edit.item)}, expected {expected} "
                                   f"(rq said: {edit.outcome})")
    rebuilt = render(len(start), end) + b"".join(
        m.group(0) for m in re.finditer(rb"^editor save \d{5} \([a-z-]+\)\n", final, re.M))
    if rebuilt != final:
        report.failures.append("the final file is not the original plus the editor's lines: something "
                               "else was lost, doubled or garbled")


def summary_table(reports: list[RaceReport]) -> list[str]:
    lines = ["| editor saves by | rq edits | landed | of them undone by a later editor save | "
             "redone on the editor's newer text | not changed | refused | failed | editor saves | "
             "lost saves | edits/s | elapsed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        lines.append(f"| {r.style} | {len(r.edits)} | {r.count('landed')} | {r.reverted} | "
                     f"{sum(e.redone for e in r.edits)} | {r.count('not changed')} | {r.count('refused')} | "
                     f"{r.count('failed')} | {r.saves} | **{len(r.lost_saves)}** | "
                     f"{len(r.edits) / r.seconds:.1f} | {r.seconds:.0f} s |")
    return lines
