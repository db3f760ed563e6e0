"""Sizes and sha256 of the derived index files, recorded in the manifest and checked on every load.

A truncated, bit-flipped or replaced file must be rebuilt, never served: FAISS, numpy and
bm25s's arrays either fail with their own exceptions or, worse, load garbage that quietly
ranks wrong. So the manifest names every file the index is made of with its size, sha256
and the (inode, size, mtime) stamp it had when written, and each load compares them.

Hashing every file on every search would cost a cold `rq search` ~0.1 s per 150 MB of
vectors, so a file whose stamp is still the recorded one is taken as unchanged: derived
files are never rewritten in place (a new file is a new inode), so another stamp means
another file. One exception: a file changed within the same clock tick as its write keeps
its mtime. A stamp is therefore trusted only when its mtime is older than the manifest's
own (written last): a later change then moves the mtime past the recorded one. Files
written in the manifest's tick (a small index, a fast disk) are hashed on each load.
"""

from __future__ import annotations

import os
from pathlib import Path

from rq.errors import ArchiveError
from rq.index.encoders.sidecar import sha256_file, stamp

# What this process has hashed already: path -> (stamp, sha256). `rq search` checks the files
# when deciding whether the index is current and again when loading it; the second is a stat.
_HASHED: dict[str, tuple[tuple[int, int, int], str]] = {}


def record_files(folder: Path, names: list[str]) -> dict[str, dict]:
    """What the manifest keeps of each file (a path relative to ``folder``): bytes, sha256, stamp."""
    records = {}
    for name in names:
        path = folder / name
        stat = path.stat()
        digest = sha256_file(path)
        _HASHED[str(path)] = (stamp(stat), digest)
        records[name] = {"bytes": stat.st_size, "sha256": digest, "stamp": list(stamp(stat))}
    return records


def file_problems(folder: Path, records: dict[str, dict], settled_ns: int) -> dict[str, str]:
    """Files that are not as recorded, each with "missing" or "damaged"; {} when all are intact.
    ``settled_ns``: the manifest's mtime (stamps older than it are trusted, see above)."""
    problems = {}
    for name, entry in records.items():
        try:
            if not _intact(folder / name, entry, settled_ns):
                problems[name] = "damaged"
        except FileNotFoundError:
            problems[name] = "missing"
        except OSError:
            problems[name] = "damaged"  # unreadable counts as damaged: it cannot be served either
    return problems


def _intact(path: Path, entry: dict, settled_ns: int) -> bool:
    stat = path.stat()
    if stat.st_size != entry["bytes"]:
        return False
    now = stamp(stat)
    if list(now) == entry["stamp"] and entry["stamp"][2] < settled_ns:
        return True
    if _HASHED.get(str(path)) == (now, entry["sha256"]):
        return True
    digest = sha256_file(path)
    _HASHED[str(path)] = (now, digest)
    return digest == entry["sha256"]


def describe(problems: dict[str, str]) -> str:
    """``{"resources.npz": "damaged"}`` -> "index files damaged: resources.npz"."""
    kinds = sorted(set(problems.values()))
    names = ", ".join(sorted(problems))
    return f"index files {' or '.join(kinds)}: {names}"


def check_files(folder: Path, records: dict[str, dict], settled_ns: int) -> None:
    """Raise ArchiveError naming the files that are missing or damaged."""
    problems = file_problems(folder, records, settled_ns)
    if problems:
        raise ArchiveError(f"{describe(problems)} (in {folder})")


def restamped(folder: Path, records: dict[str, dict]) -> dict[str, dict] | None:
    """The records with each file's stamp as it is now, or None when none moved. Call it only
    right after the files were found intact: a copied or restored index folder (new inodes)
    then stops being hashed on every load."""
    fresh = {}
    for name, entry in records.items():
        fresh[name] = {**entry, "stamp": list(stamp(os.stat(folder / name)))}
    return fresh if fresh != records else None
