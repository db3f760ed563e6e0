"""`rq clusters` and `rq map` wired to the index, on the embedded default queue."""

import json
import os
import subprocess
import sys

import pytest

from rq.queue.parse import read_queue
from rq.paths import embedded_queue_path

pytestmark = pytest.mark.slow


def rq(*args, tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "RQ_INDEX": str(tmp_path / "ix")}
    return subprocess.run([sys.executable, "-m", "rq", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_clusters_audit_the_embedded_default(tmp_path):
    proc = rq("clusters", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["resources"] == 15 and report["k"] >= 2 and "silhouette" in report["how"]
    thin = {tuple(t["section"]): t for t in report["audit"]["thin"]}
    recsys = thin[("Recommender Systems",)]
    assert recsys["kind"] == "empty"
    assert recsys["by_heading"][0]["title"].startswith("RecSysOps")
    formats = {tuple(f["section"]) for f in report["audit"]["formats"]}
    assert {("Blog Posts",), ("Papers",)} <= formats
    # Every resource is in exactly one cluster, named by its full id.
    queue = read_queue(embedded_queue_path())
    ids = [i for c in report["clusters"] for i in c["ids"]]
    assert sorted(ids) == sorted(r.id for r in queue.resources)
    assert all(len(c["ids"]) == c["size"] == len(c["titles"]) for c in report["clusters"])
    human = rq("clusters", tmp_path=tmp_path)
    assert "sections grouped by format" in human.stdout and "Recommender Systems (empty)" in human.stdout
    biggest = max(report["clusters"], key=lambda c: c["size"])
    assert biggest["titles"][0] in human.stdout  # members are listed, most central first


def test_map_holds_every_resource_and_needs_no_network(tmp_path):
    out = tmp_path / "map.html"
    proc = rq("map", "--out", str(out), "--color", "cluster", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    for resource in read_queue(embedded_queue_path()).resources:
        assert resource.title.replace("&", "&amp;") in html
    assert "<script src" not in html and "stylesheet" not in html
    bad = rq("map", "--out", str(tmp_path / "map.gif"), tmp_path=tmp_path)
    assert bad.returncode == 2 and "must end in .html or .png" in bad.stderr
