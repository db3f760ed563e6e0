"""The default embedding path end to end: `rq ingest` exports the model to ONNX into the index
folder, and `rq search`/`rq next`/`rq related` in a new process answer without importing
torch. A missing or damaged export falls back to sentence-transformers with a note, and the
next `rq index` repairs it. Choosing exact vectors re-embeds what was embedded in int8.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from httpfixture import static

pytestmark = pytest.mark.slow

TORCH = ("torch", "sentence_transformers", "transformers")
# Runs rq's main in this interpreter, then reports which heavy modules the command imported.
RUN_AND_REPORT = ("import sys\nfrom rq.cli.app import main\nsys.argv = ['rq'] + sys.argv[1:]\n"
                  "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\nelse:\n    code = 0\n"
                  f"print('IMPORTED', [m for m in {TORCH!r} if m in sys.modules], file=sys.stderr)\n"
                  "sys.exit(code)")

PAGES = {
    "/onnx/feature-store": ("Feature stores for real-time machine learning",
                            "A feature store serves fresh features to online models with low latency and keeps "
                            "training data consistent with what the model sees in production. "),
    "/onnx/sourdough": ("Baking sourdough bread at home",
                        "Feed the starter, mix flour and water, let the dough rise overnight and bake it in a "
                        "hot Dutch oven until the crust is dark. "),
    "/onnx/bandits": ("Contextual bandits for recommendations",
                      "Bandit algorithms balance exploration and exploitation when recommending items to users "
                      "whose preferences change in real time. "),
}


def page(title: str, body: str) -> bytes:
    return (f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>"
            + body * 6 + "</p></article></body></html>").encode()


def run(*args, backend_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k != "RQ_EMBED_BACKEND"}  # the default backend
    env.update({"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", **(backend_env or {})})
    proc = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)
    imported = proc.stderr.rsplit("IMPORTED ", 1)[-1].strip()
    return proc, imported


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server):
    """A queue ingested once on the default path; tests copy its index folder before changing it."""
    root = tmp_path_factory.mktemp("onnx-path")
    lines = ["# Reading", "", "## ML"]
    for i, (path, (title, body)) in enumerate(PAGES.items()):
        url = http_server.route(path, static(page(title, body)))
        lines.append(f"* [{'x' if i == 2 else ' '}] [{title}]({url})")
    queue = root / "reading.md"
    queue.write_text("\n".join(lines) + "\n")
    index = root / "ix"
    proc, _ = run("ingest", "--queue", queue, "--index", index, "--json")
    assert proc.returncode == 0, proc.stderr
    return queue, index, proc


def copy_index(library, tmp_path):
    queue, index, _ = library
    target = tmp_path / "ix"
    shutil.copytree(index, target)
    return queue, target


def search_json(queue, index, query, **kw):
    proc, imported = run("search", query, "--queue", queue, "--index", index, "--json", "-k", "3", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr, imported


def test_ingest_exports_the_model_and_indexes_int8_passages(library):
    queue, index, proc = library
    assert "exporting the embedding model to ONNX" in proc.stderr
    sidecar = json.loads((index / "onnx" / "encoder.json").read_text())
    assert set(sidecar["files"]) == {"fp32", "int8"}
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["vectors"] == manifest["model"] + "+int8"
    assert json.loads(proc.stdout)["index"]["embedded"] > 0


def test_search_next_related_in_a_new_process_do_not_import_torch(library):
    queue, index, _ = library
    data, stderr, imported = search_json(queue, index, "online feature serving latency")
    assert imported == "[]", stderr
    assert data["results"][0]["title"] == "Feature stores for real-time machine learning"
    assert "sentence-transformers" not in stderr  # no fallback note
    for args in (["next", "--json"], ["related", "bread baking", "--text", "--json"]):
        proc, imported = run(*args, "--queue", queue, "--index", index)
        assert proc.returncode == 0, proc.stderr
        assert imported == "[]", (args, proc.stderr)
    proc, _ = run("related", "bread baking", "--text", "--json", "--queue", queue, "--index", index)
    assert json.loads(proc.stdout)["suggestions"][0]["title"] == "Baking sourdough bread at home"


def test_both_backends_rank_the_same(library, tmp_path):
    queue, index = copy_index(library, tmp_path)
    fast, _, _ = search_json(queue, index, "exploration versus exploitation for recommenders")
    exact, stderr, imported = search_json(queue, index, "exploration versus exploitation for recommenders",
                                          backend_env={"RQ_EMBED_BACKEND": "torch", "RQ_EMBED_BULK": "fp32"})
    assert "sentence_transformers" in imported  # the exact path really ran
    assert "exact passage vectors asked for" in stderr  # int8 index rebuilt with exact vectors
    assert [h["id"] for h in fast["results"]] == [h["id"] for h in exact["results"]]
    assert fast["results"][0]["title"] == "Contextual bandits for recommendations"
    assert json.loads((index / "manifest.json").read_text())["vectors"].endswith("+int8") is False


def test_a_damaged_export_falls_back_with_a_note_and_index_repairs_it(library, tmp_path):
    queue, index = copy_index(library, tmp_path)
    sidecar = json.loads((index / "onnx" / "encoder.json").read_text())
    weights = index / "onnx" / sidecar["files"]["fp32"]["data"]["file"]
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))

    data, stderr, imported = search_json(queue, index, "sourdough starter")
    assert "fails its checksum" in stderr and "using sentence-transformers" in stderr
    assert data["results"][0]["title"] == "Baking sourdough bread at home"  # still answers

    proc, _ = run("index", "--queue", queue, "--index", index)
    assert proc.returncode == 0, proc.stderr
    assert "exporting the embedding model to ONNX" in proc.stderr
    data, stderr, imported = search_json(queue, index, "sourdough starter")
    assert imported == "[]" and "sentence-transformers" not in stderr


def test_a_missing_export_is_named_and_made_by_rq_index(library, tmp_path):
    queue, index = copy_index(library, tmp_path)
    shutil.rmtree(index / "onnx")
    data, stderr, _ = search_json(queue, index, "sourdough starter")
    assert "no ONNX export of the model in the index yet" in stderr
    assert data["results"][0]["title"] == "Baking sourdough bread at home"
    proc, _ = run("index", "--queue", queue, "--index", index, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["built"] is False  # index itself up to date
    assert (index / "onnx" / "encoder.json").is_file()
