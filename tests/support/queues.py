"""Small Markdown queue files, written the way a reader writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def queue_text(items: Iterable[tuple], title: str = "Test queue", section: str = "Links") -> str:
    """``# title``, ``## section``, then one checklist line per item: ``(name, url)``,
    ``(name, url, read)`` or ``(name, url, read, note)``."""
    lines = [f"# {title}", "", f"## {section}"]
    for name, url, *rest in items:
        read, note = (list(rest) + [False, ""])[:2]
        lines.append(f"* [{'x' if read else ' '}] [{name}]({url})" + (f" - {note}" if note else ""))
    return "\n".join(lines) + "\n"


def write_queue(path: Path, items: Iterable[tuple], title: str = "Test queue", section: str = "Links") -> Path:
    """Write ``queue_text(items, title, section)`` to ``path``; returns ``path``."""
    path.write_text(queue_text(items, title, section))
    return path
