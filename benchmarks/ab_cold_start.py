"""Cold start of two installed `rq`s side by side: the same commands, alternating, in one run.

    python benchmarks/ab_cold_start.py --before /tmp/old/.venv/bin/rq --after .venv/bin/rq

Each `rq` runs in its own checkout (the folder two levels above its venv's bin/), on the
embedded default queue, whose index each builds on the first, untimed run. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "search": ["search", "real-time recsys", "-k", "5"],
    "ls": ["ls"],
    "next": ["next", "-n", "3"],
    "related": ["related", "feature stores", "--text"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the rq script of the old checkout")
    parser.add_argument("--after", type=Path, required=True, help="the rq script of the new checkout")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    sides = {"before": args.before.absolute(), "after": args.after.absolute()}
    times = {(side, name): [] for side in sides for name in COMMANDS}
    for name, cmd in COMMANDS.items():  # untimed: builds indexes, warms the page cache, shows failures
        for side, exe in sides.items():
            done = subprocess.run([str(exe), *cmd], cwd=exe.parents[2], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{side} rq {' '.join(cmd)} failed: {done.stderr[-1000:]}")
    for _ in range(args.repeat):
        for name, cmd in COMMANDS.items():
            for side, exe in sides.items():
                start = time.perf_counter()
                subprocess.run([str(exe), *cmd], cwd=exe.parents[2], env=env, capture_output=True, check=True)
                times[(side, name)].append(time.perf_counter() - start)
    print(f"load average {os.getloadavg()}, {args.repeat} starts each\n")
    print("| command | before median s | after median s |\n|---|---|---|")
    for name, cmd in COMMANDS.items():
        before, after = (statistics.median(times[(side, name)]) for side in sides)
        print(f"| `rq {' '.join(cmd)}` | {before:.3f} | {after:.3f} |")


if __name__ == "__main__":
    main()
