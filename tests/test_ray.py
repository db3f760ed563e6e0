"""`--engine ray` (the scale extra): fetch, extract and embed as Ray Data stages on a real local
Ray (num_cpus=2, started once for the whole test session), landing in the same archive and index
as a local run."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from support.http import static
from support.queues import write_queue
from support.routes import page
from rq.settings import Settings

ray = pytest.importorskip("ray", reason="the scale extra (Ray) is not installed: pip install -e '.[scale]'")

FAST = dict(allow_private=True, fetch_host_delay=0.0, connect_timeout=2.0, read_timeout=2.0,
            total_timeout=5.0, backoff=0.05, retries=1)

TOPICS = {
    "feature-stores": "A feature store keeps training and serving features consistent across batch and "
                      "streaming pipelines, so a model sees the same values offline and online.",
    "vector-search": "Approximate nearest neighbour search with HNSW graphs and product quantisation "
                     "trades a little recall for large gains in latency and memory.",
    "real-time-recsys": "Real-time recommendations update user embeddings within seconds of each click, "
                        "so candidate retrieval reflects fresh intent.",
    "ab-testing": "Online experiments need guardrail metrics, sample ratio mismatch checks and enough "
                  "power before a recommender change ships.",
    "query-understanding": "Query understanding rewrites, classifies and expands what a person typed "
                           "before retrieval and ranking see it.",
}


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session, as the issue asks: 2 CPUs, no dashboard."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def site(http_server):
    urls = {}
    for slug, text in TOPICS.items():
        body = page(slug.replace("-", " ").title(), *[text] * 6)
        urls[slug] = http_server.route(f"/ray/{slug}", static(body))
    urls["gone"] = http_server.url("/ray/gone")  # a 404, stored as a failure either way
    return urls


def _archive_rows(index_dir):
    conn = sqlite3.connect(index_dir / "archive.sqlite")
    try:
        docs = sorted(conn.execute("SELECT resource_id, body_sha, kind, title, text FROM documents"))
        fetches = sorted(conn.execute("SELECT resource_id, outcome, reason, http_status FROM fetches"))
    finally:
        conn.close()
    return docs, fetches


def test_ingest_and_index_on_ray_land_in_the_same_archive_and_index_as_a_local_run(tmp_path, site, ray_cluster):
    from rq.index.build import build_index
    from rq.index.manifest import VECTORS
    from rq.index.vectors import VectorIndex
    from rq.ingest.pipeline import ingest
    from rq.rank.search import search

    queue = write_queue(tmp_path / "q.md", [(slug, url, False, f"about {slug}") for slug, url in site.items()])
    local = Settings(queue=queue, index=tmp_path / "local", **FAST)
    on_ray = local.replace(index=tmp_path / "ray", engine="ray")

    local_summary, ray_summary = ingest(local), ingest(on_ray)
    assert (ray_summary.fetched, sum(ray_summary.failed.values())) == (5, 1)
    assert (local_summary.fetched, dict(local_summary.failed)) == (ray_summary.fetched, dict(ray_summary.failed))
    assert _archive_rows(on_ray.index) == _archive_rows(local.index)

    local_report, ray_report = build_index(local), build_index(on_ray)
    assert ray_report.embedded == local_report.embedded > 0  # the Ray run embedded everything itself
    indexes = [VectorIndex.load(s.index / VECTORS, dim=384) for s in (local, on_ray)]  # matrix() views them
    local_vectors, ray_vectors = (index.matrix() for index in indexes)
    assert local_vectors.shape == ray_vectors.shape
    assert np.sum(local_vectors * ray_vectors, axis=1).min() >= 0.999
    for query in ("feature consistency offline online", "approximate nearest neighbours", "experiments"):
        assert [h.id for h in search(local, query, k=5).hits] == [h.id for h in search(on_ray, query, k=5).hits]


def test_per_host_limits_hold_across_the_cluster_not_per_worker(tmp_path, http_server, ray_cluster):
    # Two workers fetch three links each from one host; with fetch_per_host=1 and a 0.5 s delay
    # the host must see one request at a time, starts 0.5 s apart (less the jitter of carrying a
    # request on a loaded machine: the server sees arrivals, the turns are taken before sending).
    seen: list[tuple[float, float]] = []
    lock = threading.Lock()

    def timed(req):
        start = time.monotonic()
        time.sleep(0.15)
        with lock:  # the end noted before the answer goes out: the client cannot be done before it
            seen.append((start, time.monotonic()))
        static(page("Timed", "A page that records when it was asked for. " * 20))(req)

    urls = [http_server.route(f"/ray/polite/{i}", timed) for i in range(6)]
    queue = write_queue(tmp_path / "q.md", [(f"polite {i}", url) for i, url in enumerate(urls)])
    settings = Settings(queue=queue, index=tmp_path / "ix", engine="ray", ray_workers=2,
                        **{**FAST, "fetch_per_host": 1, "fetch_host_delay": 0.5, "total_timeout": 30.0,
                           "probe_soft_404": False})
    from rq.ingest.pipeline import ingest

    summary = ingest(settings)
    assert summary.fetched == 6, summary.failures
    seen.sort()
    for (start, end), (next_start, _) in zip(seen, seen[1:]):
        assert next_start >= end, "two requests to one host were in flight at once"
        assert next_start - start >= 0.3, "requests to one host started less than fetch_host_delay apart"


def test_rq_index_engine_ray_joins_a_running_cluster_by_address(tmp_path, site, ray_cluster):
    # The way a second machine uses it: a new process joining the cluster with --address, then
    # every other command working on the result unchanged.
    queue = write_queue(tmp_path / "q.md", [(slug, url, False, f"about {slug}") for slug, url in site.items()])
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}

    def rq(*args):
        return subprocess.run([sys.executable, "-m", "rq", *map(str, args), "--queue", str(queue)],
                              capture_output=True, text=True, env=env, timeout=300)

    local = rq("ingest", "--index", tmp_path / "local", "--json")
    assert local.returncode == 0, local.stderr
    on_ray = rq("ingest", "--index", tmp_path / "ray", "--no-index")
    assert on_ray.returncode == 0, on_ray.stderr
    built = rq("index", "--index", tmp_path / "ray", "--engine", "ray", "--address", ray_cluster, "--json")
    assert built.returncode == 0, built.stderr
    assert "engine: ray (the Ray cluster at" in built.stderr
    report, local_report = json.loads(built.stdout), json.loads(local.stdout)
    assert (report["engine"], local_report["engine"], local_report["index"]["engine"]) == ("ray", "local", "local")
    assert report["embedded"] == local_report["index"]["embedded"]
    for query in ("streaming user embeddings",):
        answers = [rq("search", query, "--index", tmp_path / where, "--json") for where in ("local", "ray")]
        assert all(a.returncode == 0 for a in answers), answers[1].stderr
        ids = [[hit["id"] for hit in json.loads(a.stdout)["results"]] for a in answers]
        assert ids[0] == ids[1] and len(ids[0]) == 6


def test_without_ray_installed_the_engine_says_what_to_install(tmp_path):
    code = ("import sys\nsys.modules['ray'] = None\nfrom rq.cli.launch import main\n"
            "sys.argv = ['rq'] + sys.argv[1:]\nmain()")
    proc = subprocess.run([sys.executable, "-c", code, "index", "--engine", "ray", "--index", tmp_path / "ix",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "pip install -e '.[scale]'" in json.loads(proc.stdout)["error"]["message"]
    assert "Traceback" not in proc.stderr


def test_an_unreachable_cluster_is_one_line_and_exit_1(tmp_path):
    from support.http import closed_port

    proc = subprocess.run([sys.executable, "-m", "rq", "index", "--engine", "ray", "--address",
                           f"127.0.0.1:{closed_port()}", "--index", tmp_path / "ix"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot start or reach a Ray cluster at 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("flags, message", [
    (["--engine", "spark"], "setting engine: cannot use 'spark'"),
    (["--engine", "ray", "--address", "not-an-address"], "setting ray_address: cannot use 'not-an-address'"),
])
def test_bad_engine_settings_are_usage_errors(tmp_path, flags, message):
    proc = subprocess.run([sys.executable, "-m", "rq", "index", *flags, "--index", tmp_path / "ix"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr


def test_the_default_install_stays_free_of_ray():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("ray")]
    assert any(d.startswith("ray[data]") for d in project["optional-dependencies"]["scale"])
