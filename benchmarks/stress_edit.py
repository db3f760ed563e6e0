"""Stress `rq done`/`rq todo` against an editor saving the same file: no editor save may be lost.

Real ``python -m rq done``/``todo`` processes, ``--parallel`` at a time, each tick or untick
their own item of one queue file while an editor process keeps saving that file: it reads
it, waits about 50 ms and writes it back with a line of its own. Half the edits race an
editor that rewrites the file in place, half one that renames a new file over it. Every
editor save must be in the final file, every rq edit must have landed (unless a later
editor save of what it had read put the old state back) or said it changed nothing, and
nothing else in the file may change. The harness, and what it checks, is
tests/support/editrace.py (tests/test_edit.py runs it small). Prints Markdown.

    python benchmarks/stress_edit.py [--edits 1000] [--parallel 8] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harness the tests use: tests/support

from support.editrace import STYLES, race, summary_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=1000, help="rq edits in all, split between the two editors")
    parser.add_argument("--parallel", type=int, default=8, help="rq processes running at once")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    reports = []
    with tempfile.TemporaryDirectory(prefix="rq-edit-race-") as tmp:
        for i, style in enumerate(STYLES):
            share = args.edits // len(STYLES) + (1 if i < args.edits % len(STYLES) else 0)
            reports.append(race(Path(tmp) / style, style, share, args.parallel, args.seed + i))
    print(f"## rq done/todo racing an editor ({args.edits} edits, {args.parallel} at a time, seed {args.seed})\n")
    print("\n".join(summary_table(reports)))
    lost = sum(len(r.lost_saves) for r in reports)
    failures = [f"{r.style}: {f}" for r in reports for f in r.failures]
    print(f"\nlost editor saves: **{lost}** (must be 0); other failures: {len(failures)}")
    for r in reports:
        if r.lost_saves:
            print(f"- {r.style}: lost saves {r.lost_saves[:20]}")
    for failure in failures[:50]:
        print(f"- FAILED {failure}")
    return 0 if lost == 0 and not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
