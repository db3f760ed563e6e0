"""The default embedding path end to end: `rq ingest` exports the model to ONNX once per machine
(into the model cache, shared by every index), and `rq search`/`rq next`/`rq related` in a new
process answer without importing torch. A second queue does not export again. A missing or
damaged export falls back to sentence-transformers with a note, and the next `rq index`
repairs it. Choosing exact vectors re-embeds what was embedded in int8.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.http import static
from support.routes import page as article

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


MODEL = "all-MiniLM-L6-v2"
# This module's own model cache, so that its first ingest is the one that exports.
CACHE: dict[str, Path] = {}


def export_folder(cache: Path | None = None) -> Path:
    from rq.index.encoders.store import export_key

    return (cache or CACHE["models"]) / export_key(MODEL)


def page(title: str, body: str) -> bytes:
    return article(title, body * 6, nav="", footer=None, doctype=False)


def run(*args, backend_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k != "RQ_EMBED_BACKEND"}  # the default backend
    env.update({"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", "RQ_MODEL_CACHE": str(CACHE["models"]),
                **(backend_env or {})})
    proc = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)
    imported = proc.stderr.rsplit("IMPORTED ", 1)[-1].strip()
    return proc, imported


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server):
    """A queue ingested once on the default path; tests copy its index folder before changing it."""
    root = tmp_path_factory.mktemp("onnx-path")
    CACHE["models"] = root / "models"
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
    """The index folder and the model cache, copied: a test may damage both."""
    queue, index, _ = library
    target = tmp_path / "ix"
    shutil.copytree(index, target)
    shutil.copytree(CACHE["models"], tmp_path / "models")
    return queue, target, {"RQ_MODEL_CACHE": str(tmp_path / "models")}


def search_json(queue, index, query, backend_env=None):
    proc, imported = run("search", query, "--queue", queue, "--index", index, "--json", "-k", "3",
                         backend_env=backend_env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr, imported


def test_ingest_exports_the_model_and_indexes_int8_passages(library):
    queue, index, proc = library
    assert "exporting the embedding model to ONNX" in proc.stderr
    sidecar = json.loads((export_folder() / "encoder.json").read_text())
    assert set(sidecar["files"]) == {"fp32", "int8"}
    assert not (index / "onnx").exists()  # nothing of the model is copied into the index folder
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["vectors"] == manifest["model"] + "+int8"
    assert manifest["encoder"] == export_folder().name  # the export it was built with
    assert json.loads(proc.stdout)["index"]["embedded"] > 0


def test_a_second_queue_does_not_export_the_model_again(library, tmp_path, http_server):
    url = http_server.route("/onnx/second", static(page("Learning to rank", "Pairwise and listwise losses. ")))
    queue = tmp_path / "second.md"
    queue.write_text(f"# Other\n\n* [ ] [Learning to rank]({url})\n")
    before = sorted(p.name for p in CACHE["models"].iterdir())
    proc, imported = run("ingest", "--queue", queue, "--index", tmp_path / "ix2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "exporting" not in proc.stderr and imported == "[]"  # no export, so no torch either
    assert sorted(p.name for p in CACHE["models"].iterdir()) == before
    manifest = json.loads((tmp_path / "ix2" / "manifest.json").read_text())
    assert manifest["encoder"] == export_folder().name


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
    queue, index, env = copy_index(library, tmp_path)
    fast, _, _ = search_json(queue, index, "exploration versus exploitation for recommenders", env)
    exact, stderr, imported = search_json(queue, index, "exploration versus exploitation for recommenders",
                                          backend_env={**env, "RQ_EMBED_BACKEND": "torch", "RQ_EMBED_BULK": "fp32"})
    assert "sentence_transformers" in imported  # the exact path really ran
    assert "exact passage vectors asked for" in stderr  # int8 index rebuilt with exact vectors
    assert [h["id"] for h in fast["results"]] == [h["id"] for h in exact["results"]]
    assert fast["results"][0]["title"] == "Contextual bandits for recommendations"
    assert json.loads((index / "manifest.json").read_text())["vectors"].endswith("+int8") is False


def test_a_damaged_export_falls_back_with_a_note_and_index_repairs_it(library, tmp_path):
    queue, index, env = copy_index(library, tmp_path)
    export = export_folder(tmp_path / "models")
    sidecar = json.loads((export / "encoder.json").read_text())
    weights = export / sidecar["files"]["fp32"]["data"]["file"]
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))

    data, stderr, imported = search_json(queue, index, "sourdough starter", env)
    assert "fails its checksum" in stderr and "using sentence-transformers" in stderr
    assert data["results"][0]["title"] == "Baking sourdough bread at home"  # still answers

    proc, _ = run("index", "--queue", queue, "--index", index, backend_env=env)
    assert proc.returncode == 0, proc.stderr
    assert "exporting the embedding model to ONNX" in proc.stderr
    data, stderr, imported = search_json(queue, index, "sourdough starter", env)
    assert imported == "[]" and "sentence-transformers" not in stderr


def test_a_missing_export_is_named_and_made_by_rq_index(library, tmp_path):
    queue, index, env = copy_index(library, tmp_path)
    shutil.rmtree(export_folder(tmp_path / "models"))
    data, stderr, _ = search_json(queue, index, "sourdough starter", env)
    assert "no ONNX export of the model on this machine yet" in stderr
    assert data["results"][0]["title"] == "Baking sourdough bread at home"
    proc, _ = run("index", "--queue", queue, "--index", index, "--json", backend_env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["built"] is False  # index itself up to date
    assert (export_folder(tmp_path / "models") / "encoder.json").is_file()


def test_an_index_folder_of_an_earlier_rq_keeps_its_export_until_rq_index_removes_it(library, tmp_path):
    """Before exports were shared, each index folder held its own copy in onnx/."""
    queue, index, env = copy_index(library, tmp_path)
    shutil.move(export_folder(tmp_path / "models"), index / "onnx")
    data, stderr, imported = search_json(queue, index, "sourdough starter", env)
    assert imported == "[]" and "sentence-transformers" not in stderr  # the old copy still serves
    proc, _ = run("index", "--queue", queue, "--index", index, backend_env=env)
    assert proc.returncode == 0, proc.stderr
    assert "removed this index's own copy of the model export" in proc.stderr
    assert not (index / "onnx").exists() and (export_folder(tmp_path / "models") / "encoder.json").is_file()
