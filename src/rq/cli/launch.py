"""The `rq` program's entry point: a running engine answers first, then the full command line.

`rq search`, `next`, `related` and `show` ask `rq serve` when one runs for this queue and index
(rq.cli.remote), before typer or anything heavy is imported; every other command, and those
four when no engine answers, go to rq.cli.app.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("search", "next", "related", "show"):
        from rq.cli.remote import answer

        try:
            code = answer(argv)
        except KeyboardInterrupt:
            sys.stderr.write("rq: interrupted\n")
            sys.exit(130)
        except Exception:  # the engine path is an optimisation: anything odd goes in-process,
            code = None  # where every error is handled and said in one line
        if code is not None:
            sys.stdout.flush()
            sys.exit(code)
    from rq.cli.app import main as full

    full()
