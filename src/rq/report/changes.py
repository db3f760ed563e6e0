"""Which pages marked read changed after they were read (from the archive's ``changes`` rows)."""

from __future__ import annotations


def changed_since_read(archive, queue) -> list[dict]:
    """Pages marked read in the queue whose text changed after they were marked read (the last
    `rq done`; an item ticked in an editor counts from when it was first seen read)."""
    read = {r.id: r for r in queue.resources if r.state == "read"}
    if not read:
        return []
    read_at = archive.last_read_times()
    found: dict[str, dict] = {}
    for row in archive.changes():
        resource = read.get(row["resource_id"])
        if resource is None or row["at"] <= read_at.get(resource.id, 0.0):
            continue
        entry = found.setdefault(resource.id, {
            "id": resource.id, "short_id": resource.short_id, "title": resource.title, "url": resource.url,
            "section": resource.section,
            "read_at": read_at.get(resource.id), "first_changed_at": row["at"], "changes": 0,
            "old_text_sha": row["old_text_sha"], "old_body_sha": row["old_body_sha"]})
        entry.update(changes=entry["changes"] + 1, changed_at=row["at"], similarity=row["similarity"],
                     new_text_sha=row["new_text_sha"], new_body_sha=row["new_body_sha"])
    order = {r.id: i for i, r in enumerate(queue.resources)}
    return sorted(found.values(), key=lambda e: order[e["id"]])
