"""`rq search`, `rq next` and `rq related`: finding what to read."""

from __future__ import annotations

from typing import Annotated

import typer

from rq.cli.hits import print_hits
from rq.cli.options import (
    IndexOpt,
    JsonOpt,
    QueueOpt,
    VerboseOpt,
    handles_errors,
    limit_opt,
    settings_from,
)
from rq.cli.output import Bar, clip, emit_json, one_line, say, state_mark, stdout
from rq.errors import UsageError


@handles_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.")],
    n: limit_opt("How many resources to show (-k works too).", "-k") = 10,
    section: Annotated[str | None, typer.Option(
        "--section", "-s", help="Only sections whose path contains this text.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only resources not marked read.")] = False,
    read: Annotated[bool, typer.Option("--read", help="Only resources marked read.")] = False,
    kind: Annotated[str | None, typer.Option("--type", help="Only html or pdf documents.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid (default), dense or keyword.")] = "hybrid",
    queue: QueueOpt = None,
    index: IndexOpt = None,
    model: Annotated[str | None, typer.Option("--model", help="Embedding model the index was built with.")] = None,
    json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Find resources by what their pages say, with the passage that matched.

    Each result shows its relevance: the estimated chance (0-100) that it is relevant, from how
    close its best passage is in meaning and how many of the query's words that passage holds,
    calibrated on a benchmark of scientific abstracts (SciFact train); strong 50+, fair 20-49,
    weak below 20. When no result is strong the list says so first. --json adds the raw scores:
    dense (cosine), keyword (BM25), keyword_share (of the most the query could score), covered
    (share of the query's words in the passage), fused (what the order comes from).

    Example: rq search "real-time recsys" -n 5 --unread
    """
    from rq.rank.search import Filters
    from rq.rank.search import search as run_search

    if unread and read:
        raise UsageError("--read and --unread exclude each other")
    if kind is not None and kind not in ("html", "pdf"):
        raise UsageError("--type takes html or pdf")
    settings = settings_from(queue=queue, index=index, model=model)
    filters = Filters(section=section, read=True if read else (False if unread else None), kind=kind)
    with Bar("indexing") as bar:
        response = run_search(settings, query, k=n, mode=mode, filters=filters, notice=say, progress=bar)
    if json_out:
        emit_json(response.as_dict())
        return
    print_hits(response, filtered=bool(section or read or unread or kind))


@handles_errors
def next(
    n: limit_opt("How many suggestions.") = 5,
    section: Annotated[str | None, typer.Option(
        "--section", "-s", help="Only sections whose path contains this text.")] = None,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Which unread resource to read next, and why: learned from what you marked read.

    Each suggestion shows where it stands among your unread items: "top 3%" means only 3% of
    them score as high or higher for what you have read. --json keeps the raw score too. A page
    that tells the same story as one you read (page cosine of at least near_duplicate_cosine,
    0.80) is marked "same story as" and comes after new material; when nothing you read is much
    like a suggestion, it says the evidence is weak.

    Example: rq next -n 3 --section MLOps
    """
    from rq.rank.suggest.nextread import next_reads

    with Bar("indexing") as bar:
        answer = next_reads(settings_from(queue=queue, index=index), n=n, section=section, progress=bar)
    print_answer(answer, json_out)


@handles_errors
def related(
    ref: Annotated[str, typer.Argument(help="A resource id (or prefix), a URL from the queue, or free text.")],
    n: limit_opt("How many resources.") = 5,
    text: Annotated[bool, typer.Option("--text", help="Treat REF as text even if it looks like an id.")] = False,
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False, verbose: VerboseOpt = False,
) -> None:
    """Resources nearest to one of yours, or to a piece of text, with the passages that link them.

    Each result shows its similarity: the cosine (0 to 1) between the two resources' vectors;
    a result whose page tells the same story as the resource's own is marked so.

    Example: rq related 6de98d1b   or   rq related "feature stores for online inference"
    """
    from rq.rank.suggest.nextread import related_to

    with Bar("indexing") as bar:
        answer = related_to(settings_from(queue=queue, index=index), ref, n=n, as_text=text, progress=bar)
    print_answer(answer, json_out)


def print_answer(answer, json_out: bool) -> None:
    from rich.text import Text

    for notice in answer.notices:
        say(notice)
    if json_out:
        emit_json(answer.as_dict())
        return
    out = stdout()
    if answer.fallback:
        say(f"{answer.fallback} (a fallback: mark items read with `rq done ID` to teach it)")
    if not answer.suggestions:
        out.print("nothing to show: the queue has no other resources")
    for s in answer.suggestions:
        head = Text(f"{s.rank:>2}. ", style="bold")
        head.append(one_line(s.title), style="bold")
        standing = (f"top {s.top_percent}%" if s.top_percent is not None
                    else "" if answer.fallback else f"similarity {s.score:.2f}")
        head.append(f"  {state_mark(s.state)} {s.short_id}  {standing}".rstrip(), style="dim")
        out.print(head)
        out.print(f"    {one_line(s.section) or '(no section)'} | {one_line(s.url)}", style="dim")
        if s.same_story_as:
            # Said first: a repeat of something read is the one thing about it that matters.
            story = s.same_story_as
            after = ", so it comes after new material" if s.evidence else ""
            out.print(f"    same story as {one_line(story.title)} ({story.short_id}, {story.similarity:.2f}){after}",
                      style="bold")
        if s.evidence == "weak":
            closest = max(s.because, key=lambda b: b.similarity, default=None)
            what = (f"the closest thing you read, {one_line(closest.title)} ({closest.similarity:.2f}), is barely "
                    "like it" if closest else "nothing you read is like it")
            out.print(f"    weak evidence: {what}; this pick rests on little and says more about what is left "
                      "unread than about your taste (mark more items read to sharpen it)")
        elif s.because:
            out.print("    because you read: "
                      + "; ".join(f"{one_line(b.title)} ({b.similarity:.2f})" for b in s.because))
        if s.pair:
            out.print(f"    this: \"{clip(s.pair.mine)}\"", style="italic")
            out.print(f"    that: \"{clip(s.pair.theirs)}\"", style="italic")
