"""What one ingest run stores: each fetch result as it arrives, in its own transaction.

A failure is a fetch record; a page answered 200 is extracted (unless its body is the one
already archived), vetted for a soft 404 (rq.ingest.soft404) and stored with its document.
Two things can make a result wait instead of being stored at once:

* a page that needs its host's made-up sibling waits for that probe (its body is archived
  already; only its extracted text is held), and is judged and stored when the probe answers;
* a name-lookup failure waits until the run reaches some server (rq.ingest.offline): a run
  that reaches none records those links as ``offline``, not dead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from rq.archive.db import Archive, sha256_hex
from rq.archive.records import OFFLINE, SOFT_404, FetchRecord
from rq.extract.extract import EXTRACTOR_VERSION
from rq.ingest.changes import note_change
from rq.ingest.offline import OfflineWatch
from rq.ingest.soft404 import SoftNotFound, Waiting
from rq.settings import Settings


@dataclass
class IngestSummary:
    queue: str
    index: str
    resources: int = 0
    added: int = 0
    removed: int = 0
    fresh: int = 0  # skipped: fetched recently
    fetched: int = 0  # new or changed content, extracted
    unchanged: int = 0  # 304 or identical body: nothing extracted
    reextracted: int = 0  # archived bodies extracted again because rq's extractor improved
    not_web: int = 0
    failed: Counter = field(default_factory=Counter)
    no_text: int = 0
    failures: list[dict] = field(default_factory=list)
    offline: int = 0  # links not checked because the machine looked offline (not counted as failed)
    offline_detail: str = ""
    changed_since_read: int = 0  # pages marked read whose text changed in this run (see rq.ingest.changes)
    changes: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    engine: str = "local"  # where pages were fetched and extracted: local, or ray (a Ray cluster)

    @property
    def did_something(self) -> bool:
        return self.resources == 0 or bool(self.fetched or self.unchanged or self.fresh or self.not_web
                                                   or self.reextracted)

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["failed"] = dict(self.failed)
        return data


@dataclass
class _Page:
    """A page answered 200, extracted (or found unchanged), not judged yet. No body: it is archived."""

    record: FetchRecord
    final_url: str
    kind: str | None
    text: str
    doc: object | None  # the new Extracted document; None when the body is the archived one
    previous: object | None  # the archived document row, if any


class RunStore:
    """Stores one ingest run's results; see the module's doc for what waits and why."""

    def __init__(self, archive: Archive, pool, settings: Settings, summary: IngestSummary, policy: str) -> None:
        self.archive, self.pool, self.settings, self.summary, self.policy = archive, pool, settings, summary, policy
        self.checker = SoftNotFound(settings, pool)
        self.watch = OfflineWatch()
        self.waiting: dict[str, list[_Page]] = {}  # by origin: pages waiting for its made-up sibling

    def take(self, result) -> object | None:
        """Store a link's result (or hold it, see above); returns a probe's FetchRequest to start, if any."""
        if result.outcome == "failed":
            for ready in self.watch.see(result):
                self._failure(self._record(ready, None))
            return None
        for ready in self.watch.see(result)[:-1]:  # name-lookup failures released by this connection
            self._failure(self._record(ready, None))
        if result.outcome == "not_modified":
            previous = self.archive.document(result.request.key)
            self.archive.add_fetch(self._record(result, previous["body_sha"] if previous else None))
            self.summary.unchanged += 1
            return None
        return self._page(result)

    def probed(self, result) -> None:
        """A made-up sibling answered: judge and store the pages that waited for it."""
        for page in self.waiting.pop(self.checker.probed(result), []):
            self._conclude(page, self.checker.sibling(page.final_url, page.text))

    @property
    def pages_waiting(self) -> int:
        return sum(len(pages) for pages in self.waiting.values())

    def finish(self) -> None:
        """End of the run: record held name-lookup failures (as ``offline`` if the run never
        connected), and store any page still waiting as it is (no probe answer to judge it by)."""
        offline = self.watch.offline()
        if offline:
            self.summary.offline_detail = self.watch.detail()
        for result in self.watch.held:
            record = self._record(result, None)
            if offline:
                self.archive.add_fetch(replace(record, reason=OFFLINE, detail=self.summary.offline_detail))
                self.summary.offline += 1
            else:
                self._failure(record)
        self.watch.held = []
        for pages in self.waiting.values():
            for page in pages:
                self._conclude(page, None)
        self.waiting = {}

    # -- one page ----------------------------------------------------------------------------

    def _page(self, result) -> object | None:
        resource_id = result.request.key
        body_sha = self.archive.put_body(result.body)
        previous = self.archive.document(resource_id)
        if previous is not None and previous["body_sha"] == body_sha:
            doc, kind, text, title, charset = None, previous["kind"], previous["text"], previous["title"], \
                previous["charset"]
        else:
            doc = self.pool.extract(result.body, result.content_type, result.final_url or result.request.url,
                                    self.settings)
            kind, text, title, charset = doc.kind, doc.text, doc.title, doc.charset
        verdict = self.checker.check(result, kind, text, title, charset)
        page = _Page(self._record(result, body_sha), result.final_url or result.request.url, kind, text, doc,
                     previous)
        if isinstance(verdict, Waiting):
            self.waiting.setdefault(verdict.origin, []).append(page)
            return verdict.request
        self._conclude(page, verdict)
        return None

    def _conclude(self, page: _Page, verdict: str | None) -> None:
        record = page.record
        if verdict:
            # A page answered 200 that is really "not found": a failed fetch whose body stays
            # archived (fetches.body_sha), while the resource keeps its last good document.
            self._failure(replace(record, outcome="failed", reason=SOFT_404, detail=verdict))
            return
        if page.doc is None:
            self.archive.add_fetch(record)
            self.summary.unchanged += 1
            return
        doc = page.doc
        with self.archive.transaction():
            self.archive.put_document(record.resource_id, record.body_sha, doc, record, EXTRACTOR_VERSION)
            text_sha = sha256_hex(doc.text.encode("utf-8", "surrogatepass"))
            score = note_change(self.archive, record.resource_id, page.previous, doc.text, text_sha,
                                record.body_sha)
        self.summary.fetched += 1
        if score is not None:
            self.summary.changed_since_read += 1
            self.summary.changes.append({"id": record.resource_id, "url": record.url,
                                         "similarity": round(score, 3)})
        if not doc.text.strip():
            self.summary.no_text += 1

    # -- records -----------------------------------------------------------------------------

    def _failure(self, record: FetchRecord) -> None:
        self.archive.add_fetch(record)
        self.summary.failed[record.reason] += 1
        self.summary.failures.append({"id": record.resource_id, "url": record.url, "reason": record.reason,
                                      "detail": record.detail})

    def _record(self, result, body_sha: str | None) -> FetchRecord:
        return FetchRecord(
            resource_id=result.request.key, url=result.request.url, at=result.fetched_at,
            outcome=result.outcome, reason=result.reason, detail=result.detail,
            http_status=result.http_status, final_url=result.final_url, content_type=result.content_type,
            etag=result.etag, last_modified=result.last_modified, body_sha=body_sha,
            bytes=len(result.body) if result.body is not None else None,
            attempts=result.attempts, elapsed=result.elapsed, policy=self.policy,
        )
