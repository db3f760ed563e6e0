"""How many CPUs rq may use: threads of its numeric libraries, the CPUs of a Ray of its own."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (os.cpu_count counts the machine's, affinity aside)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
