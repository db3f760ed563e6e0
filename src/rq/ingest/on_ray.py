"""Fetch and extract on a Ray cluster (`rq ingest --engine ray`): two Ray Data stages, and the
archive written here, as a local run writes it.

* fetch: map_batches tasks, each running rq's own fetch_all (address guard, limits, retries) on a
  batch of links. Per-host politeness holds for the whole cluster, not per worker: every request
  takes its turn from one actor (``TurnBook``: at most ``fetch_per_host`` in flight per host,
  ``fetch_host_delay`` apart), whichever machine sends it.
* extract: an actor pool, each actor holding an isolated extractor process (time and memory
  limits, as locally); a body already archived for its resource is not extracted again.

This process plans the run (rq.ingest.pipeline), stores each result as it arrives (RunStore: the
same soft-404 judgement, offline detection and change notes), and fetches the soft-404 probes
itself afterwards: a few requests, one per host at most. The archive has one writer, here.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import threading
import time
import warnings
from typing import Callable, Iterator

from rq.archive.db import Archive
from rq.cluster import connect, failure_line, ray_module
from rq.errors import RqError
from rq.fetch.failures import Failure
from rq.fetch.hosts import TurnBook
from rq.ingest.store import IngestSummary, RunStore
from rq.settings import Settings

Progress = Callable[[int, int, str], None]

POLL_S = 0.05  # a request waiting for a busy host asks the cluster's turn book again this often
# Links one fetch task takes: enough for its fetch_concurrency threads to stay busy while some
# wait for their host's turn, few enough that the links spread over the workers.
LINKS_PER_TASK = 16


class ClusterGate:
    """HostGate's interface (rq.fetch.hosts) over the cluster's one TurnBook actor."""

    def __init__(self, turns) -> None:
        self.turns = turns
        self.cancelled = threading.Event()

    def ready_at(self, host: str) -> float:
        return 0.0  # the actor's clock is not ours: every host looks ready, the slot decides

    @contextlib.contextmanager
    def slot(self, host: str, deadline: float) -> Iterator[None]:
        ray = ray_module()
        while True:
            if self.cancelled.is_set():
                raise Failure("error", "cancelled")
            wait = ray.get(self.turns.start.remote(host))
            if wait == 0.0:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("timeout", f"no turn at {host} before the deadline")
            # A known wait (the host's next start) is slept whole; a busy host is asked again soon.
            self.cancelled.wait(min(left, POLL_S if wait == math.inf else wait))
        try:
            yield
        finally:
            self.turns.finish.remote(host)

    def cancel(self) -> None:
        self.cancelled.set()


def _fetch_batch(batch: dict, settings: Settings, turns) -> dict:
    """A fetch task: rq's fetch_all on these links, turns taken from the cluster's TurnBook."""
    from rq.fetch.client import fetch_all

    requests = [pickle.loads(blob) for blob in batch["request"]]
    known = dict(zip((r.key for r in requests), batch["known"]))
    results, knowns = [], []
    for result in fetch_all(requests, settings, gate=ClusterGate(turns)):
        results.append(pickle.dumps(result))
        knowns.append(known[result.request.key])
    return {"result": results, "known": knowns}


class _Extractor:
    """An extract actor: one isolated extractor process, kept for the whole run."""

    def __init__(self, settings: Settings) -> None:
        from rq.extract.worker import ExtractorPool

        self.settings = settings
        self.pool = ExtractorPool(size=1)

    def __call__(self, batch: dict) -> dict:
        docs = []
        for blob, known in zip(batch["result"], batch["known"]):
            result = pickle.loads(blob)
            doc = b""
            if result.outcome not in ("failed", "not_modified") and result.body is not None \
                    and hashlib.sha256(result.body).hexdigest() != known:
                doc = pickle.dumps(self.pool.extract(result.body, result.content_type,
                                                     result.final_url or result.request.url, self.settings))
            docs.append(doc)
        return {"result": batch["result"], "doc": docs}


class _Extracted:
    """The extractor pool RunStore calls: bodies extracted on the cluster are answered from there;
    anything else (a soft-404 probe's page, a body the cluster did not extract) by the local pool."""

    def __init__(self, local) -> None:
        self.local = local
        self.done: dict[str, object] = {}  # by body sha256

    def extract(self, body: bytes, content_type, url: str, settings: Settings):
        doc = self.done.pop(hashlib.sha256(body).hexdigest(), None)
        return doc if doc is not None else self.local.extract(body, content_type, url, settings)


def fetch_and_store(archive: Archive, requests: list, settings: Settings, summary: IngestSummary,
                    progress: Progress | None, in_queue: set[str]) -> None:
    """What rq.ingest.pipeline does locally, with fetching and extracting on the Ray cluster."""
    from rq.extract.worker import ExtractorPool
    from rq.fetch.client import fetch_all
    from rq.ingest.policy import policy_of
    from rq.ingest.reextract import reextract_stale

    total = len(requests)
    with ExtractorPool(size=1) as local:
        summary.reextracted = reextract_stale(archive, local, settings, in_queue, progress)
        if progress:
            progress(0, total, "fetching")
        pool = _Extracted(local)
        store = RunStore(archive, pool, settings, summary, policy_of(settings))
        probes: list = []
        if requests:
            cluster = connect(settings)
            for done, (result, doc) in enumerate(_run(requests, archive, settings, cluster.workers), 1):
                if doc is not None:
                    pool.done[hashlib.sha256(result.body).hexdigest()] = doc
                probe = store.take(result)
                if probe is not None:
                    probes.append(probe)
                if progress:
                    progress(done, total, result.request.url)
        if probes:
            if progress:
                progress(total, total, "checking hosts for a catch-all error page")
            for result in fetch_all(probes, settings):
                store.probed(result)
        store.finish()


def _run(requests: list, archive: Archive, settings: Settings, workers: int) -> Iterator[tuple]:
    """(FetchResult, Extracted or None) for every request from the cluster, batch by batch in queue
    order (within a batch, as the fetches finish)."""
    ray = ray_module()
    rows = []
    for request in requests:
        previous = archive.document(request.key)  # its body is not extracted again
        rows.append({"request": pickle.dumps(request), "known": previous["body_sha"] if previous is not None else ""})
    turns = ray.remote(num_cpus=0)(TurnBook).remote(settings.fetch_per_host, settings.fetch_host_delay)
    per_task = max(1, min(LINKS_PER_TASK, -(-len(rows) // workers)))  # every worker gets links
    blocks = -(-len(rows) // per_task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # see rq.index.encoders.on_ray: max_restarts=0 warns as deprecated
        plan = (ray.data.from_items(rows, override_num_blocks=blocks)
                .map_batches(_fetch_batch, fn_kwargs={"settings": settings, "turns": turns},
                             batch_size=per_task, batch_format="numpy", num_cpus=0.25,
                             compute=ray.data.TaskPoolStrategy(size=min(workers, blocks)))
                # Half a CPU each (the work is in its child process), so that the fetch tasks, a
                # quarter each, always find room beside a full pool of extractors.
                .map_batches(_Extractor, fn_constructor_args=(settings,), batch_size=1, batch_format="numpy",
                             num_cpus=0.5, max_restarts=0,
                             compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows)))))
    try:
        for row in plan.iter_rows():
            yield pickle.loads(row["result"]), (pickle.loads(row["doc"]) if row["doc"] else None)
    except ray.exceptions.RayError as exc:
        raise RqError(f"fetching on Ray failed: {failure_line(exc)}") from None
    finally:
        ray.kill(turns)
