"""`rq serve`'s API (issue 15): a real engine on 127.0.0.1 answers with the JSON the command
line prints with --json, edits the queue byte-exactly, and reports errors as the CLI does."""

import signal

import httpx
import pytest
from support.serving import Engine, build_library, isolated_env, rq_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory, http_server, _session_cache):
    folder = tmp_path_factory.mktemp("serve-api")
    env = isolated_env(folder, _session_cache)
    queue, index = build_library(folder, http_server, env)
    common = ("--queue", queue, "--index", index)
    # The CLI's answers, in-process (no engine runs yet), to compare the API's with.
    cli = {
        "search": rq_json("search", "recommendations for users", "-n", "3", *common, env=env),
        "next": rq_json("next", "-n", "2", *common, env=env),
        "related": rq_json("related", "Feature stores", "-n", "2", *common, env=env),
        "ls": rq_json("ls", *common, env=env),
        "status": rq_json("status", *common, env=env),
        "health": rq_json("health", *common, env=env),
    }
    engine = Engine.start(queue, index, env)
    engine.env = env
    yield engine, queue, cli
    engine.stop()


def get(engine, path, **params):
    return httpx.get(engine.url(path), params=params, timeout=60)


def test_api_answers_are_the_cli_json(served):
    engine, queue, cli = served
    assert cli["search"][0] == 0
    assert get(engine, "/api/search", q="recommendations for users", n=3).json() == cli["search"][1]
    assert get(engine, "/api/next", n=2).json() == cli["next"][1]
    assert get(engine, "/api/related", ref="Feature stores", n=2).json() == cli["related"][1]
    assert get(engine, "/api/items").json() == cli["ls"][1]
    assert get(engine, "/api/status").json() == cli["status"][1]
    assert get(engine, "/api/health").json() == cli["health"][1]
    first = cli["ls"][1][0]
    code, shown = rq_json("show", first["short_id"], "--queue", queue, "--index", engine.index,
                          env=engine.env)
    assert get(engine, f"/api/item/{first['short_id']}").json()["text_head"] == shown["text_head"]


def test_search_filters_and_clusters(served):
    engine, _, _ = served
    unread = get(engine, "/api/search", q="recommendations", state="unread").json()["results"]
    assert unread and all(h["state"] == "unread" for h in unread)
    mlops = get(engine, "/api/search", q="features", section="MLOps").json()["results"]
    assert {h["section"] for h in mlops} == {"MLOps"}
    clusters = get(engine, "/api/clusters").json()
    assert clusters["resources"] == 6 and sum(c["size"] for c in clusters["clusters"]) == 6


def test_done_and_todo_edit_one_checkbox_and_answer_like_the_cli(served):
    engine, queue, _ = served
    before = queue.read_bytes()
    page = httpx.get(engine.url("/next"), timeout=60).text
    csrf = page.split('name="rq-csrf" content="', 1)[1].split('"', 1)[0]
    headers = {"X-Rq-CSRF": csrf, "Origin": engine.base}
    done = httpx.post(engine.url("/api/done"), json={"ref": "Bandits for recsys"}, headers=headers, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "read" and done.json()["changed"] is True
    after = queue.read_bytes()
    assert after == before.replace(b"* [ ] [Bandits for recsys]", b"* [x] [Bandits for recsys]")
    # The very next answer sees the new state.
    assert all(s["title"] != "Bandits for recsys" for s in get(engine, "/api/next", n=5).json()["suggestions"])
    todo = httpx.post(engine.url("/api/todo"), json={"ref": "Bandits for recsys"}, headers=headers, timeout=60)
    assert todo.json()["changed"] is True and queue.read_bytes() == before


def test_errors_are_the_cli_json_errors(served):
    engine, _, _ = served
    missing = get(engine, "/api/item/ffffffffff")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 1
    bad = get(engine, "/api/search", q="x", n=0)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 2
    section = get(engine, "/api/search", q="x", section="No such section")
    assert section.status_code == 400 and "section" in section.json()["error"]["message"]
    assert "Traceback" not in engine.log()


def test_openapi_documents_the_api_and_each_request_is_logged(served):
    engine, _, _ = served
    paths = get(engine, "/openapi.json").json()["paths"]
    for path in ("/api/search", "/api/next", "/api/related", "/api/items", "/api/item/{ref}", "/api/clusters",
                 "/api/health", "/api/status", "/api/done", "/api/todo"):
        assert path in paths, path
    assert "post" in paths["/api/done"] and "get" not in paths["/api/done"]
    get(engine, "/api/status")
    assert "GET /api/status 200" in engine.log()


def test_the_embedded_default_is_served_and_cheap_commands_stay_light(tmp_path, _session_cache):
    import subprocess
    import sys

    env = isolated_env(tmp_path, _session_cache)
    engine = Engine.start(None, tmp_path / "ix", env)
    try:
        page = httpx.get(engine.url("/"), params={"q": "real-time recsys"}, timeout=120)
        assert page.status_code == 200 and page.text.count('<li class="hit"') >= 3
        status = get(engine, "/api/status").json()
        assert status["embedded_default"] is True
    finally:
        engine.stop(signal.SIGTERM)
    assert not (tmp_path / "ix" / "serve.json").exists()  # removed when the engine stops, even by kill
    code = ("import sys\nfrom rq.cli.launch import main\nsys.argv = ['rq'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('fastapi', 'uvicorn', 'starlette', 'jinja2') if m in sys.modules], "
            "file=sys.stderr)")
    for args in (["--help"], ["serve", "--help"], ["ls", "--index", str(tmp_path / "ix")]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                              env=env)
        assert "HEAVY []" in proc.stderr, (args, proc.stderr[-500:])
    assert "Example: rq serve" in " ".join(subprocess.run([sys.executable, "-m", "rq", "serve", "--help"],
                                                          capture_output=True, text=True, env=env).stdout.split())
