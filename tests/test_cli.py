"""The `rq` command as a user runs it: a new process, exit codes, stdout vs stderr, --json."""

import json
import os
import subprocess
import sys

import pytest

from support.http import static
from support.routes import page

HEAVY = ("torch", "sentence_transformers", "transformers", "trafilatura", "faiss", "pypdfium2", "bm25s", "ray")


def rq(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture
def queue_file(tmp_path, http_server):
    text = "A feature store keeps training and serving features consistent across pipelines."
    url = http_server.route("/cli/feature-stores", static(page("Feature stores", *[text] * 5, nav="", footer=None,
                                                               doctype=False)))
    path = tmp_path / "reading.md"
    path.write_text("# Reading\n\n## MLOps\n"
                    f"* [ ] [Feature stores]({url}) - consistency\n"
                    "* [x] [Dead link](http://nonexistent.invalid/post)\n\n## Empty\n")
    return path


def test_help_and_ls_do_not_import_heavy_libraries(queue_file, tmp_path):
    code = ("import sys\nfrom rq.cli.app import main\nsys.argv = ['rq'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)")
    for args in (["--help"], ["ls", "--queue", str(queue_file), "--index", str(tmp_path / "ix")],
                 ["status", "--queue", str(queue_file), "--index", str(tmp_path / "ix")]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
        assert "HEAVY []" in proc.stderr, (args, proc.stderr[-500:])


def test_every_command_help_has_an_example():
    for command in ("ingest", "index", "search", "ls", "show", "open", "status", "done", "todo", "next", "related",
                    "clusters", "map", "health", "add", "import", "watch"):
        proc = rq(command, "--help")
        assert proc.returncode == 0
        assert "Example: rq " + command in " ".join(proc.stdout.split()), command


def test_help_text_is_wrapped_to_the_terminal_not_to_the_source_lines():
    # On a wide terminal a paragraph of the help is one line; before, the docstring's own line
    # breaks showed as well, cutting sentences at random places.
    proc = rq("search", "--help", env_extra={"COLUMNS": "400"})
    lines = [line.strip(" │") for line in proc.stdout.splitlines()]
    assert any(line.startswith("Each result shows its relevance") and "When no result is strong" in line
               for line in lines), proc.stdout


def test_ingest_then_ls_status_show(queue_file, tmp_path):
    index = tmp_path / "ix"
    proc = rq("ingest", "--queue", queue_file, "--index", index, "--json",
              env_extra={"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["fetched"] == 1 and summary["failed"] == {"gone_dns": 1}
    assert "failed (gone_dns): 1" in proc.stderr
    assert summary["index"]["built"] and summary["index"]["resources"] == 2  # ingest updates the index

    listing = json.loads(rq("ls", "--queue", queue_file, "--index", index, "--json").stdout)
    assert [(v["title"], v["state"], v["fetch"]) for v in listing] == [
        ("Feature stores", "unread", "archived"), ("Dead link", "read", "failed")]
    failed = json.loads(rq("ls", "--failed", "--queue", queue_file, "--index", index, "--json").stdout)
    assert [v["reason"] for v in failed] == ["gone_dns"]
    unread = rq("ls", "--unread", "--queue", queue_file, "--index", index)
    assert "Feature stores" in unread.stdout and "Dead link" not in unread.stdout

    status = json.loads(rq("status", "--queue", queue_file, "--index", index, "--json").stdout)
    assert status["resources"] == 2 and status["empty_sections"] == 1
    assert status["failed_by_reason"] == {"gone_dns": 1}

    health = json.loads(rq("health", "--queue", queue_file, "--index", index, "--json").stdout)
    assert health["counts"] == {"gone_dns": 1}
    dead = health["by_reason"]["gone_dns"][0]
    assert dead["title"] == "Dead link" and dead["archived_copy"] is False
    assert "gone_dns (1)" in rq("health", "--queue", queue_file, "--index", index).stdout

    shown = json.loads(rq("show", listing[0]["id"][:5], "--queue", queue_file, "--index", index, "--json").stdout)
    assert "training and serving features" in shown["text_head"]
    assert shown["history"][0]["outcome"] == "ok"


@pytest.mark.parametrize("args, code, message", [
    (["ls", "--queue", "/nonexistent/queue.md"], 1, "no such queue file"),
    (["show", "zzzz"], 1, "no resource with id"),
    (["search", "   "], 2, "query is empty"),
    (["ls", "--bogus"], 2, "No such option"),
])
def test_user_errors_are_one_clear_line_and_an_exit_code(args, code, message, tmp_path):
    proc = rq(*args, env_extra={"XDG_DATA_HOME": str(tmp_path)})
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_binary_queue_and_a_foreign_index_are_refused(tmp_path, queue_file):
    binary = tmp_path / "photo.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    proc = rq("ls", "--queue", binary)
    assert proc.returncode == 1 and "not a Markdown file" in proc.stderr
    index = tmp_path / "shared-ix"
    assert rq("ls", "--queue", queue_file, "--index", index).returncode == 0
    # A read command writes nothing, so the folder belongs to a queue once a writer has used it.
    assert rq("ingest", "--no-index", "--queue", queue_file, "--index", index,
              env_extra={"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}).returncode == 0
    other = tmp_path / "other.md"
    other.write_text("* [x](https://e.com)\n")
    proc = rq("ls", "--queue", other, "--index", index)
    assert proc.returncode == 1 and "belongs to queue" in proc.stderr


def test_done_edits_the_file_and_ls_shows_it(queue_file, tmp_path):
    index = tmp_path / "ix"
    ident = json.loads(rq("ls", "--queue", queue_file, "--index", index, "--json").stdout)[0]["id"]
    before = queue_file.read_bytes()
    proc = rq("done", ident, "--queue", queue_file, "--index", index)
    assert proc.returncode == 0 and "marked read" in proc.stdout
    assert queue_file.read_bytes() == before.replace(b"* [ ] [Feature", b"* [x] [Feature")
    listing = json.loads(rq("ls", "--queue", queue_file, "--index", index, "--json").stdout)
    assert listing[0]["state"] == "read"
    assert rq("todo", ident, "--queue", queue_file, "--index", index).returncode == 0
    assert queue_file.read_bytes() == before


def test_done_refuses_the_embedded_queue(tmp_path):
    proc = rq("done", "6de98d1b", env_extra={"XDG_DATA_HOME": str(tmp_path)})
    assert proc.returncode == 1 and "read-only" in proc.stderr


@pytest.mark.parametrize("env, name", [
    ({"RQ_FUSION": "bogus"}, "fusion"),
    ({"RQ_VECTOR_INDEX": "annoy"}, "vector_index"),
    ({"RQ_HYBRID_ALPHA": "1.5"}, "hybrid_alpha"),
    ({"RQ_FETCH_CONCURRENCY": "0"}, "fetch_concurrency"),
])
def test_a_bad_setting_is_one_line_and_exit_2_before_any_work(env, name, tmp_path):
    index = tmp_path / "ix"
    proc = rq("search", "real-time recsys", "--index", index, env_extra={**env, "XDG_DATA_HOME": str(tmp_path)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"setting {name}: cannot use" in lines[0] and "environment variable RQ_" in lines[0]
    assert not index.exists()  # refused before anything was built or written
    as_json = rq("ls", "--json", "--index", index, env_extra={**env, "XDG_DATA_HOME": str(tmp_path)})
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == {"error": {"code": 2, "message": lines[0].removeprefix("rq: ")}}


def test_usage_errors_with_json_still_print_json(tmp_path):
    proc = rq("ls", "--json", "--bogus", env_extra={"XDG_DATA_HOME": str(tmp_path)})
    assert proc.returncode == 2 and "No such option: --bogus" in proc.stderr
    assert json.loads(proc.stdout)["error"]["code"] == 2
    proc = rq("show", "zzzz", "--json", env_extra={"XDG_DATA_HOME": str(tmp_path)})
    assert proc.returncode == 1 and "no resource with id" in json.loads(proc.stdout)["error"]["message"]


def test_ingest_says_which_pages_were_cut_to_the_passage_cap(tmp_path, http_server):
    import re

    sentence = "Long reads about feature pipelines keep going well past what anyone searches for."
    paragraphs = [f"Part {i}. {sentence}" for i in range(40)]
    url = http_server.route("/cli/long-read", static(page("Long read", *paragraphs, nav="", footer=None)))
    queue = tmp_path / "reading.md"
    queue.write_text(f"# Reading\n\n## Long\n* [ ] [Long read]({url})\n")
    proc = rq("ingest", "--queue", queue, "--index", tmp_path / "ix", env_extra={
        "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", "RQ_MAX_PASSAGES_PER_RESOURCE": "2"})
    assert proc.returncode == 0, proc.stderr
    line = r"^cut to 2 passages: Long read \([0-9a-f]{4,}, (about )?[3-9] in all\)$"
    assert re.search(line, proc.stderr, re.M), proc.stderr
