"""`rq clusters` and `rq map`: the collection's topics held against its sections, and a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rq.cli.options import IndexOpt, JsonOpt, QueueOpt, handles_errors, limit_opt, settings_from
from rq.cli.output import Bar, emit_json, one_line, say, stderr, stdout

KOpt = Annotated[str, typer.Option("--k", help="Number of clusters, or auto.")]


@handles_errors
def clusters(k: KOpt = "auto", limit: limit_opt("How many member titles each cluster lists (--json: all ids).") = 3,
             queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Group resources by content, name the groups, and audit the queue's own sections.

    Suggestions only: the queue file is not touched. Each cluster lists its most central
    members first (-n of them), then how many more.

    Example: rq clusters --k auto
    """
    from rq.rank.topics.report import cluster_report, parse_k

    with Bar("indexing") as bar:
        report = cluster_report(settings_from(queue=queue, index=index), parse_k(k), progress=bar)
    for notice in report.notices:
        say(notice)
    if json_out:
        emit_json(report.as_dict())
        return
    print_clusters(report, limit)


def _section(path) -> str:
    return one_line(" / ".join(path)) if path else "(before the first heading)"


def _members(members: list[tuple[str, str]], limit: int) -> str:
    """The first ``limit`` titles, most central first, then how many more."""
    shown = "; ".join(one_line(title) for _, title in members[:limit])
    rest = len(members) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")


def print_clusters(report, limit: int = 3) -> None:
    from rich.table import Table

    out, audit = stdout(), report.audit
    out.print(f"{report.clustering.k} clusters of {report.resources} resources "
              f"({report.clustering.method}; {report.clustering.how})", style="bold")
    for c in audit.clusters:
        home = f"mostly {_section(c.section)} ({c.share:.0%})" if c.section is not None else "no dominant section"
        out.print(f"  [{c.cluster}] {one_line(', '.join(c.words)) or '(unnamed)'}: {c.size} items, {home}")
        out.print(f"      {_members(report.members(c.cluster), limit)}")
    table = Table(title="sections x clusters", box=None, title_justify="left")
    table.add_column("section")
    for c in audit.clusters:
        table.add_column(str(c.cluster), justify="right")
    for row in audit.table:
        table.add_row(_section(row.section), *(str(v or "·") for v in row.counts))
    out.print(table)
    _print_audit(out, audit)


def _print_audit(out, audit) -> None:
    if audit.overlaps:
        out.print("\nsections that overlap", style="bold")
        for o in audit.overlaps:
            causes = "; ".join(one_line(c.title) for c in o.causes)
            out.print(f"  {_section(o.a)} ~ {_section(o.b)} (centroids {o.similarity:.2f}): {causes}")
    if audit.misfiled:
        out.print("\nitems that look misfiled", style="bold")
        for m in audit.misfiled:
            near = ", ".join(one_line(n.title) for n in m.best_section_neighbours)
            out.print(f"  {one_line(m.title)}: in {_section(m.section)}, closer to {_section(m.best_section)} "
                      f"({m.best_similarity:.2f} vs {m.own_similarity:.2f}; near {near})")
    if audit.thin:
        out.print("\nempty or thin sections", style="bold")
        for t in audit.thin:
            items = t.by_heading or t.by_centroid
            hint = "; ".join(f"{one_line(i.title)} (now in {_section(i.section)})" for i in items)
            out.print(f"  {_section(t.section)} ({t.kind}): {hint or 'nothing matches yet'}")
    if audit.formats:
        out.print("\nsections grouped by format, not topic", style="bold")
        for f in audit.formats:
            out.print(f"  {_section(f.section)} ({f.size} items; {one_line(f.reason)})")
            for d in f.destinations:
                where = (_section(d.section) if d.section is not None
                         else f"topic [{d.cluster}] {one_line(', '.join(d.cluster_words))}")
                out.print(f"    {one_line(d.title)} -> {where}")


@handles_errors
def map(
    out: Annotated[Path, typer.Option("--out", "-o", help="FILE.html (interactive, self-contained) or FILE.png.")],
    color: Annotated[str, typer.Option("--color", help="Colour points by section or cluster.")] = "section",
    k: Annotated[str, typer.Option("--k", help="Number of clusters to name on the map, or auto.")] = "auto",
    queue: QueueOpt = None, index: IndexOpt = None, json_out: JsonOpt = False,
) -> None:
    """Draw the collection in 2-D: one point per resource, read ones filled, clusters named.

    Example: rq map --out queue-map.html --color cluster
    """
    from rq.rank.topics.report import parse_k, write_collection_map

    with Bar("indexing") as bar:
        info = write_collection_map(settings_from(queue=queue, index=index), out, color_by=color, k=parse_k(k),
                                    progress=bar)
    for notice in info["notices"]:
        say(notice)
    if json_out:
        emit_json(info)
    else:
        stderr().print(f"map of {info['resources']} resources ({info['projection']}, {info['clusters']} clusters) "
                       f"written to {one_line(info['out'])}")
