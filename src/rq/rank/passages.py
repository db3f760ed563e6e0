"""A stored passage as a person sees it: without its title line (shown above it already), and
for the queue's own passage only the note. `rq related` shows it trimmed; search hits show
sentences picked from it for the query (rq.rank.snippets)."""

from __future__ import annotations


def passage_body(text: str, source: str) -> str:
    """A stored passage without its title line; of the queue's own ("meta") passage, only the
    note (the section is shown on the hit's second line)."""
    if "\n" in text:
        text = text.split("\n", 1)[1]
    if source == "meta":
        text = "\n".join(line for line in text.split("\n") if not line.startswith("Section: "))
    return text


def display_passage(text: str, source: str, max_chars: int = 360) -> str:
    """The passage's body on one line, trimmed to a readable length."""
    text = " ".join(passage_body(text, source).split())
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"
