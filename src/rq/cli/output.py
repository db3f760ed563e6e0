"""Everything the command line writes goes through here: data to stdout, the rest to stderr.

Text that comes from outside (a queue, a page, a server, a person) is printed as plain
text: never read as console markup, and with terminal control characters (escape
sequences, BEL, bidi overrides) shown as visible escapes instead of acted upon.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rq.words import scrub

# C0 controls but tab and newline, DEL, C1 controls, and the bidi embeddings, overrides and
# isolates that can make a terminal show text in another order than it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: Any) -> str:
    """``text`` as a string a terminal shows as it is: control characters become visible escapes,
    and bytes that were not UTF-8 (lone surrogates) the replacement character."""
    text = scrub(str(text))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def one_line(text: Any) -> str:
    """``plain`` text on one line (a message, a title): newlines become spaces."""
    return " ".join(plain(text).split())


def stdout():
    from rich.console import Console

    # Piped output keeps one resource per line instead of wrapping at 80 columns.
    width = None if sys.stdout.isatty() else 400
    return Console(soft_wrap=True, highlight=False, markup=False, emoji=False, width=width)


def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def say(message: str) -> None:
    """A notice or warning on stderr, prefixed with ``rq:``."""
    stderr().print(f"rq: {one_line(message)}")


def emit_json(data: Any) -> None:
    """The one way --json output is written."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def report_failure(message: str, code: int, as_json: bool) -> None:
    """What ends a failed command: one line on stderr, and with --json one object on stdout too,
    so that a script can always parse stdout."""
    stderr().print(f"rq: {one_line(message)}")
    if as_json:
        emit_json({"error": {"code": code, "message": one_line(message)}})


def state_mark(state: str | None, checkbox: bool = True) -> str:
    """[x] read, [ ] unread, and " · " for an item listed without a checkbox (unread too)."""
    if not checkbox and state != "read":
        return " · "
    return {"read": "[x]", "unread": "[ ]"}.get(state or "", " · ")


def clip(text: str, limit: int = 160) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def when(ts) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else "never"


class Bar:
    """A progress bar on stderr with time left, driven by the core's progress(done, total, what)."""

    def __init__(self, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        # markup=False: "what" is often a URL, and a URL may hold "[/x]".
        self.progress = Progress(TextColumn(label, markup=False), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("left", markup=False), TimeRemainingColumn(),
                                 TextColumn("{task.fields[what]}", markup=False), console=stderr(),
                                 transient=False)
        self.task = None

    def __enter__(self) -> Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int, what: str = "") -> None:
        if self.task is None:
            self.task = self.progress.add_task("", total=total, what="")
        self.progress.update(self.task, completed=done, total=total, what=one_line(what)[-60:])
