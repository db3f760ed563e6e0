"""How `rq search` prints its hits: apart from the command (rq.cli.find) so that an answer from a
running `rq serve` is printed without importing typer (rq.cli.remote)."""

from __future__ import annotations

from rq.cli.output import one_line, plain, state_mark, stdout


def print_hits(response, filtered: bool = False) -> None:
    from rich.text import Text

    out = stdout()
    if not response.hits:
        out.print(f"no results for '{one_line(response.query)}'" + (" with these filters" if filtered else "")
                  + "; try other words, or --mode keyword for exact terms")
        return
    if not response.strong:
        out.print(f"no strong match for '{one_line(response.query)}'; the closest:")
    for hit in response.hits:
        head = Text(f"{hit.rank:>2}. ", style="bold")
        head.append(one_line(hit.title), style="bold")
        head.append(f"  {state_mark(hit.state)} {hit.short_id}  {hit.relevance:>3} {hit.band}", style="dim")
        out.print(head)
        fetch = hit.fetch + (f": {hit.reason}" if hit.reason else "")
        if not hit.has_text:
            fetch += "; matched on title/note/section only"
        out.print(f"    {one_line(hit.section) or '(no section)'} | {one_line(fetch)} | {one_line(hit.url)}",
                  style="dim")
        if hit.passage:
            # The sentences of the page that carry the query (rq.rank.snippets), or the queue's
            # note when the page's text is not archived, labelled so it is not taken for the page.
            label = "note: " if hit.passage_source == "meta" else ""
            out.print(_highlighted("    " + label, hit.passage, hit.highlights))


def _highlighted(indent: str, passage: str, spans: list[tuple[int, int]]):
    """The snippet as plain text with the query's words in bold yellow; made piece by piece,
    since making text plain can change its length. The snippet is on one line already, and the
    spaces between pieces must stay."""
    from rich.text import Text

    shown = Text(indent)
    at = 0
    for start, end in spans:
        shown.append(plain(passage[at:start]))
        shown.append(plain(passage[start:end]), style="bold yellow")
        at = end
    shown.append(plain(passage[at:]))
    return shown
