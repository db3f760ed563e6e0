"""Crash safety: SIGKILL rq at random moments and check that nothing it leaves is half-written.

Serves ``--pages`` pages on 127.0.0.1, lists them in a queue file, then until ``--kills``
real kills runs a random one of ``rq ingest --refresh --no-index``, ``rq index``,
``rq index --rebuild``, ``rq done``/``rq todo`` and SIGKILLs it, checking the archive, the
index files and the queue file after each kill; a clean ingest + index + search ends it.
The harness, and what it checks, is tests/support/crash.py (tests/test_crash.py runs it too).

    python benchmarks/stress_crash.py [--kills 200] [--seed 1] [--pages 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness the tests use: tests/support

from support.crash import stress  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="real kills to reach")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--no-index", action="store_true", help="only ingest and done/todo (no model)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rq-crash-") as tmp:
        report = stress(args.kills, args.seed, args.pages, not args.no_index, Path(tmp),
                        log=(lambda *_: None) if args.quiet else (lambda m: print(m, flush=True)))
    print("\n".join(report.summary_lines()))
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
