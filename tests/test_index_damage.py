"""The index folder when things go wrong: damaged files, a read-only folder, a full disk.

Each derived file (vectors.faiss, resources.npz, manifest.json, the keyword postings) is
truncated, has a byte flipped in place, or is replaced by a file that is valid on its own but
not the one the index was built with. Then a search must still answer as before and say the
index was damaged, and `rq index` must rebuild it instead of calling it up to date.

A folder that cannot be written still answers every read command, while `rq ingest` and
`rq index` say in one line that they cannot write it. A write that finds no room (a real
full tmpfs when this machine lets a test mount one, and a file size limit everywhere) ends
in one line, and leaves an archive and an index that still answer.
"""

import json
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.http import static
from support.routes import WORDS, page
from rq.errors import ArchiveError
from rq.index import integrity
from rq.index.build import build_index, staleness
from rq.index.manifest import read_manifest
from rq.ingest.pipeline import ingest
from rq.rank.search import search
from rq.settings import Settings

pytestmark = pytest.mark.slow

PAGES = {
    "gpu": ("Writing fast CUDA kernels",
            ["Coalesced global memory access and shared memory tiling dominate kernel throughput.",
             "Warp divergence wastes lanes; keep branches uniform within a warp of thirty-two threads."]),
    "garden": ("Growing tomatoes on a balcony",
               ["Tomato plants want six hours of sun, deep pots and steady watering.",
                "Pinch out side shoots on cordon varieties and tie the stem to a cane."]),
    "db": ("Choosing indexes for a relational database",
           ["A B-tree index speeds up range scans, while a hash index only helps equality lookups.",
            "Composite indexes must list the most selective column first."]),
    "parquet": ("Loading columnar files with the xq toolkit",
                ["The function xq_read_parquet_v2 loads a columnar file lazily.",
                 "Statistics in the footer let the reader skip row groups whose values cannot match."]),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server, embedder):
    root = tmp_path_factory.mktemp("damage")
    lines = ["# Reading", "", "## Pages"]
    for key, (title, paragraphs) in PAGES.items():
        url = http_server.route(f"/damage/{key}", static(page(title, *paragraphs, nav="", footer=None)))
        lines.append(f"* [ ] [{title}]({url})")
    queue = root / "reading.md"
    queue.write_text("\n".join(lines) + "\n")
    settings = Settings(queue=queue, index=root / "ix", allow_private=True, fetch_host_delay=0.0)
    ingest(settings)
    build_index(settings, embedder=embedder)
    return settings


def _postings(index: Path) -> Path:
    keywords = index / "keywords"
    return keywords / (keywords / "CURRENT").read_text().strip() / "data.csc.index.npy"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    """Flip one byte in place, two thirds in: past any header, inside the data."""
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size * 2 // 3)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _other_vectors(path: Path) -> None:
    """A vector file that is whole and of the right generation, but not the one built."""
    from rq.index.vectors import VectorIndex

    old = VectorIndex.load(path)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(old.ntotal, old.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    VectorIndex.build(vectors, np.arange(old.ntotal), meta=old.meta).save(path)


def _other_resources(path: Path) -> None:
    """A resource-vector file that loads (same generation) but maps passages to the wrong resources."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["owner"] = arrays["owner"][::-1].copy()
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _wrong_count(path: Path) -> None:
    """What silently cut searches short: a manifest that is valid JSON with too few passages."""
    data = json.loads(path.read_text())
    data["passages"] = 3
    path.write_text(json.dumps(data))


def _zero_postings(path: Path) -> None:
    """Postings of the same shape and size, all zero: every keyword score would be 0."""
    np.save(path, np.zeros_like(np.load(path)))


DAMAGE = {
    "truncated vectors": ("vectors.faiss", lambda ix: ix / "vectors.faiss", _truncate),
    "flipped vectors": ("vectors.faiss", lambda ix: ix / "vectors.faiss", _flip),
    "replaced vectors": ("vectors.faiss", lambda ix: ix / "vectors.faiss", _other_vectors),
    "truncated resources": ("resources.npz", lambda ix: ix / "resources.npz", _truncate),
    "flipped resources": ("resources.npz", lambda ix: ix / "resources.npz", _flip),
    "replaced resources": ("resources.npz", lambda ix: ix / "resources.npz", _other_resources),
    "manifest with a wrong count": ("manifest.json", lambda ix: ix / "manifest.json", _wrong_count),
    "flipped postings": ("data.csc.index.npy", _postings, _flip),
    "zeroed postings": ("data.csc.index.npy", _postings, _zero_postings),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_index_file_is_rebuilt_with_a_notice_never_served(library, embedder, case):
    name, where, damage = DAMAGE[case]
    for mode in ("hybrid", "keyword"):
        before = search(library, "xq_read_parquet_v2 columnar", mode=mode, embedder=embedder)
        damage(where(library.index))
        after = search(library, "xq_read_parquet_v2 columnar", mode=mode, embedder=embedder)
        assert [h.title for h in after.hits] == [h.title for h in before.hits], (case, mode)
        assert [h.passage for h in after.hits] == [h.passage for h in before.hits], (case, mode)
        assert after.passages == before.passages
        assert mode == "keyword" or len(after.hits) == len(PAGES)  # every page scores in hybrid
        assert any("damaged" in n and name in n for n in after.notices), after.notices

    damage(where(library.index))
    report = build_index(library, embedder=embedder)
    assert report.built and "damaged" in report.reason and name in report.reason, report
    assert report.embedded == 0  # rebuilt from the archive's cached vectors
    assert not build_index(library, embedder=embedder).built


def test_the_command_line_rebuilds_a_truncated_resource_file(library):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = ["--queue", str(library.queue), "--index", str(library.index)]
    _truncate(library.index / "resources.npz")
    proc = subprocess.run([sys.executable, "-m", "rq", "search", "tomato plants", *args, "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["title"] == "Growing tomatoes on a balcony"
    assert "index files damaged: resources.npz" in proc.stderr and "Traceback" not in proc.stderr

    _flip(library.index / "resources.npz")
    proc = subprocess.run([sys.executable, "-m", "rq", "index", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "index built (index files damaged: resources.npz)" in proc.stderr, proc.stderr
    assert "up to date" not in proc.stderr


def test_a_copied_index_is_served_and_restamped_by_rq_index(library, embedder, tmp_path):
    copy = library.replace(index=tmp_path / "copy")
    shutil.copytree(library.index, copy.index)  # same bytes and mtimes, new inodes
    assert search(copy, "tomato plants", embedder=embedder).hits[0].title == "Growing tomatoes on a balcony"
    report = build_index(copy, embedder=embedder)
    assert not report.built  # intact: up to date, not rebuilt
    files = read_manifest(copy.index).files
    assert all(entry["stamp"][0] == os.stat(copy.index / name).st_ino for name, entry in files.items())


def test_a_stamp_is_trusted_only_when_older_than_the_manifest(tmp_path, monkeypatch):
    path = tmp_path / "postings.npy"
    path.write_bytes(b"x" * 4096)
    records = integrity.record_files(tmp_path, ["postings.npy"])
    written = path.stat().st_mtime_ns
    hashed = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: hashed.append(p) or real(p))
    integrity._HASHED.clear()

    # Stamp unchanged and older than the manifest: no hashing at all.
    assert integrity.file_problems(tmp_path, records, settled_ns=written + 1) == {}
    assert hashed == []
    # A byte changed within the same clock tick keeps size and mtime: caught only because the
    # stamp is not older than the manifest, so the file is hashed.
    _flip(path)
    os.utime(path, ns=(written, written))
    assert integrity.file_problems(tmp_path, records, settled_ns=written) == {"postings.npy": "damaged"}
    with pytest.raises(ArchiveError, match="index files damaged: postings.npy"):
        integrity.check_files(tmp_path, records, settled_ns=written)
    path.unlink()
    assert integrity.file_problems(tmp_path, records, settled_ns=written) == {"postings.npy": "missing"}


# --------------------------------------------------------------------------- a read-only folder


def _rq(*args):
    return [sys.executable, "-m", "rq", *map(str, args)]


def _read_only_runner(folder: Path):
    """Run a command for which ``folder`` cannot be written, or skip saying why that is impossible here.

    Not root: the folder and its files lose their write bits. Root writes through those, so
    there the command runs in a private mount namespace where ``folder`` is bound read-only
    (EROFS stops root too)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if os.geteuid() != 0:
        def run(args):
            modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
            try:
                for path, mode in modes.items():
                    path.chmod(mode & ~0o222)
                return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
            finally:
                for path, mode in modes.items():
                    path.chmod(mode)
        return run
    bind = f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && " \
           f"mount -o remount,bind,ro {shlex.quote(str(folder))}"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"{bind} && ! touch {shlex.quote(str(folder))}/probe"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root, and no read-only bind mount here to stop root writing ({probe.stderr.strip()})")

    def run(args):
        return subprocess.run(["unshare", "-m", "sh", "-c", f"{bind} && exec {shlex.join(args)}"],
                              capture_output=True, text=True, env=env, timeout=300)
    return run


def _plant_failed_fetch_in_the_wal(db: Path, resource_id: str) -> None:
    """A writer killed after its commit: the row sits in archive.sqlite-wal, with the -shm beside it."""
    code = (f"import os, signal, sqlite3\nconn = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "conn.execute('PRAGMA wal_autocheckpoint=0')\n"
            "conn.execute(\"INSERT INTO fetches(resource_id, url, at, outcome, reason, detail) VALUES "
            f"({resource_id!r}, 'http://x.invalid/', 1e10, 'failed', 'planted', 'by a test')\")\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert (db.parent / "archive.sqlite-wal").stat().st_size > 0


def test_a_read_only_index_folder_still_answers_and_writers_say_why_they_cannot(library, embedder):
    search(library, "tomato plants", embedder=embedder)  # the index is current
    folder, queue = library.index, library.queue
    run = _read_only_runner(folder)
    where = ["--queue", queue, "--index", folder]
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    listing = run(_rq("ls", *where, "--json"))
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert {r["title"] for r in rows} == {title for title, _ in PAGES.values()}
    tomato = next(r for r in rows if r["title"].startswith("Growing tomatoes"))
    for args in (["status"], ["health"], ["show", tomato["short_id"]], ["next"], ["related", tomato["short_id"]]):
        proc = run(_rq(*args, *where, "--json"))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
        json.loads(proc.stdout)
    found = run(_rq("search", "tomato plants", *where, "--json"))
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["title"] == tomato["title"]
    for args in (["index"], ["ingest", "--no-index"]):
        proc = run(_rq(*args, *where))
        lines = [line for line in proc.stderr.splitlines() if line.startswith("rq:")]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(lines) == 1 and f"cannot write the index folder {folder}" in lines[0], proc.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before  # nothing written

    # A writer killed after a commit leaves it in the WAL: read-only readers must still see it.
    _plant_failed_fetch_in_the_wal(folder / "archive.sqlite", tomato["id"])
    listing = run(_rq("ls", *where, "--json"))
    assert listing.returncode == 0, listing.stderr
    planted = next(r for r in json.loads(listing.stdout) if r["id"] == tomato["id"])
    assert (planted["fetch"], planted["reason"]) == ("failed", "planted")


# --------------------------------------------------------------------------- a full disk

NO_ROOM = "nothing already stored was lost: free some space and run the command again"


def _one_error_line(proc, folder: Path) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rq:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and NO_ROOM in lines[0] and str(folder) in lines[0], proc.stderr
    assert "unexpected error" not in lines[0] and "cannot rollback" not in lines[0]
    return lines[0]


def test_a_file_size_limit_while_indexing_is_one_line_and_the_old_index_still_answers(
        tmp_path, http_server, embedder):
    rng = random.Random(3)
    text = [" ".join(rng.choice(WORDS) for _ in range(80)) + "." for _ in range(30)]
    url = http_server.route("/full/index", static(page("Many short passages", *text, nav="", footer=None)))
    queue = tmp_path / "reading.md"
    queue.write_text(f"# Reading\n\n## Pages\n* [ ] [Many short passages]({url})\n")
    settings = Settings(queue=queue, index=tmp_path / "ix", allow_private=True, fetch_host_delay=0.0,
                        chunk_words=24, chunk_overlap_words=4)
    ingest(settings)
    build_index(settings, embedder=embedder)
    vectors = settings.index / "vectors.faiss"
    limit = 128 * 1024
    assert vectors.stat().st_size > limit

    def limited():  # writing past `limit` bytes of any file fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RQ_CHUNK_WORDS": "24", "RQ_CHUNK_OVERLAP_WORDS": "4"}
    before = {p.name: p.read_bytes() for p in settings.index.iterdir() if p.is_file() and p.name != ".lock"}
    proc = subprocess.run(_rq("index", "--rebuild", "--queue", queue, "--index", settings.index),
                          capture_output=True, text=True, env=env, timeout=300, preexec_fn=limited)
    line = _one_error_line(proc, settings.index)
    assert "the disk is full while writing the search index" in line
    # The new files were staged and removed; the live ones and the archive never changed.
    after = {p.name: p.read_bytes() for p in settings.index.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before
    location, archive = _open(settings)
    try:
        from rq.archive.queue_cache import read_queue_cached
        current = staleness(location, read_queue_cached(queue, settings.index, remember=False), archive,
                            settings, embedder.model_id)
    finally:
        archive.close()
    assert current is None  # still whole and in step with its archive
    response = search(settings, "Many short passages", embedder=embedder)
    assert response.hits[0].title == "Many short passages" and not response.notices


def _open(settings):
    from rq.archive.db import open_archive_to_read
    from rq.paths import locate

    location = locate(settings)
    return location, open_archive_to_read(location.index_dir, location.queue_key)


def test_a_full_disk_while_ingesting_is_one_line_and_the_archive_still_answers(tmp_path, http_server):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the file size limit test covers the rest)")
    rng = random.Random(4)
    urls = [http_server.route(f"/full/small-{i}", static(page(f"Small page {i}", " ".join(
        rng.choice(WORDS) for _ in range(300)), nav="", footer=None))) for i in range(3)]
    # ~1.7 MB: its raw body fits in what is left of the disk, its text in the archive does not.
    big = http_server.route("/full/big", static(page("Big page", *[" ".join(
        rng.choice(WORDS) for _ in range(60)) for _ in range(4000)], nav="", footer=None)))
    queue = tmp_path / "reading.md"
    queue.write_text("# Reading\n\n## Pages\n" + "".join(f"* [ ] [Small page {i}]({u})\n" for i, u in enumerate(urls)))
    built = tmp_path / "built"
    ingest(Settings(queue=queue, index=built, allow_private=True, fetch_host_delay=0.0))
    with queue.open("a") as fh:
        fh.write(f"* [ ] [Big page]({big})\n")

    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    folder = disk / "ix"
    where = f"--queue {shlex.quote(str(queue))} --index {shlex.quote(str(folder))}"
    rq = shlex.join([sys.executable, "-m", "rq"])
    script = (f"mount -t tmpfs -o size=3m tmpfs {shlex.quote(str(disk))} || exit 99\n"
              f"cp -a {shlex.quote(str(built))} {shlex.quote(str(folder))}\n"
              f"{rq} ingest --no-index {where} 2>{out}/ingest.err; echo $? >{out}/ingest.rc\n"
              f"{rq} ls {where} --json >{out}/ls.json 2>{out}/ls.err\n"
              f"{rq} search 'small page' {where} --json >{out}/search.json 2>{out}/search.err\n"
              f"{shlex.quote(sys.executable)} -c \"import sqlite3; print(sqlite3.connect('{folder}/archive.sqlite')"
              f".execute('PRAGMA integrity_check').fetchone()[0])\" >{out}/integrity\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=600)
    if proc.returncode == 99:
        pytest.skip(f"no tmpfs can be mounted here ({proc.stderr.strip()})")
    ingested = subprocess.CompletedProcess([], int((out / "ingest.rc").read_text()), "",
                                           (out / "ingest.err").read_text())
    assert "the disk is full while writing the archive" in _one_error_line(ingested, folder)
    listing = {row["title"]: row["fetch"] for row in json.loads((out / "ls.json").read_text())}
    assert listing == {"Small page 0": "archived", "Small page 1": "archived", "Small page 2": "archived",
                       "Big page": "not fetched"}, (out / "ls.err").read_text()
    results = json.loads((out / "search.json").read_text())["results"]
    assert results and results[0]["title"].startswith("Small page"), (out / "search.err").read_text()
    assert (out / "integrity").read_text().strip() == "ok"
