"""Pages marked read whose text changed when ingest fetched them again.

When re-ingesting a page the reader has marked read gives new text that is not just a
trivial edit of the archived copy (similarity below ``CHANGED_BELOW``, see
rq.ingest.similarity), a row goes into the archive's ``changes`` table.
"""

from __future__ import annotations

import time

from rq.ingest.similarity import similarity

CHANGED_BELOW = 0.9  # re-fetched text of a read page less alike than this -> changed


def note_change(archive, resource_id: str, previous, new_text: str, new_text_sha: str,
                new_body_sha: str | None, at: float | None = None) -> float | None:
    """Record that a page marked read now has different text; returns the similarity when recorded.

    ``previous`` is the archived document row. Only pages whose queue state is "read",
    and only when both the old and the new text are non-empty (a page that lost its
    text is an extraction matter, not an author's edit).
    """
    if previous is None or previous["text_sha"] == new_text_sha:
        return None
    if not previous["text"].strip() or not new_text.strip():
        return None
    if archive.queue_state(resource_id) != "read":
        return None
    score = similarity(previous["text"], new_text)
    if score >= CHANGED_BELOW:
        return None
    archive.add_change(resource_id, time.time() if at is None else at, previous["text_sha"], new_text_sha,
                       previous["body_sha"], new_body_sha, round(score, 4))
    return score
