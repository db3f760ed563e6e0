"""The command line through a running engine (issue 15): `rq search`, `next`, `related` and
`show` ask `rq serve` when it runs for their queue and index, print exactly what they print
in-process, and work in-process (saying so only with -v) when no engine says it is alive
within 200 ms."""

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from support.serving import Engine, build_library, isolated_env

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("search", "recommendations for users", "-n", "3"),
    ("search", "features", "--section", "MLOps", "--unread"),
    ("search", "no such words anywhere zzz", "--mode", "keyword"),
    ("next", "-n", "2"),
    ("related", "Feature stores", "-n", "2"),
    ("related", "exploration in recommender systems", "--text"),
    ("show", "Bandits for recsys", "--chars", "60"),
    ("show", "ffffffffff"),  # no such resource: the same one-line error and exit code
]


def run(args, env):
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server, _session_cache):
    folder = tmp_path_factory.mktemp("serve-client")
    env = isolated_env(folder, _session_cache)
    queue, index = build_library(folder, http_server, env)
    common = ("--queue", queue, "--index", index)
    # Every answer in-process first, while no engine runs.
    alone = {(q, fmt): run([*q, *common, *fmt], env) for q in QUESTIONS for fmt in ((), ("--json",))}
    return env, queue, index, common, alone


@pytest.fixture(scope="module")
def served(library):
    env, queue, index, *_ = library
    engine = Engine.start(queue, index, env)
    yield engine
    engine.stop()


def test_answers_through_the_engine_are_the_in_process_ones(library, served):
    env, _, _, common, alone = library
    asked = served.log().count("GET /api/") - served.log().count("GET /api/alive")
    for (question, fmt), before in alone.items():
        through = run([*question, *common, *fmt, "-v"], env)
        assert "answered by the engine at " + served.base in through.stderr, (question, through.stderr)
        assert through.returncode == before.returncode, question
        assert through.stdout == before.stdout, (question, fmt)
        # Notices and errors alike (in-process, search's progress bar leaves an empty line).
        assert lines(through.stderr.replace(f"rq: answered by the engine at {served.base}/", "")) == lines(before.stderr)
    log = served.log()
    assert log.count("GET /api/") - log.count("GET /api/alive") == asked + len(alone)
    assert log.count("GET /api/alive 200") >= len(alone)


def test_without_an_engine_the_command_says_so_only_with_v(library, tmp_path):
    env, queue, index, *_ = library
    other = tmp_path / "ix"
    quiet = run(["search", "recommendations", "--queue", queue, "--index", other], env)
    assert quiet.returncode == 0 and "engine" not in quiet.stderr
    told = run(["next", "--queue", queue, "--index", other, "-v"], env)
    assert "no engine runs for this index (start one with `rq serve`); answering in-process" in told.stderr


def test_an_engine_that_does_not_answer_in_200_ms_is_passed_by(library, tmp_path):
    """A process holding the port that never answers: the command works in-process."""
    from rq.paths import locate
    from rq.serve.client import fingerprint, write_engine_file
    from rq.settings import load_settings

    env, queue, index, common, alone = library
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(stalled.accept()), daemon=True).start()
    copy = tmp_path / "ix"
    import shutil

    shutil.copytree(index, copy, ignore=shutil.ignore_patterns("serve.json", ".lock"))
    settings = load_settings({"queue": queue, "index": copy}, env=env)
    write_engine_file(copy, {"host": "127.0.0.1", "port": stalled.getsockname()[1], "secret": "s" * 20,
                             "queue": locate(settings).queue_key, "settings": fingerprint(settings)})
    started = time.monotonic()
    proc = run(["search", "recommendations for users", "-n", "3", "--queue", queue, "--index", copy, "-v"], env)
    assert held, "the command did not even try the engine"
    assert "did not answer within 200 ms; answering in-process" in proc.stderr
    assert proc.stdout == alone[(QUESTIONS[0], ())].stdout
    assert time.monotonic() - started < 60
    stalled.close()


def test_an_engine_with_other_settings_does_not_answer(library, served):
    env, _, _, common, _ = library
    proc = run(["search", "recommendations", *common, "-v"], {**env, "RQ_HYBRID_ALPHA": "0.5"})
    assert proc.returncode == 0 and "the engine runs with other settings than this command" in proc.stderr


def test_the_json_path_imports_nothing_heavy(library, served):
    env, _, _, common, _ = library
    heavy = ["numpy", "faiss", "torch", "onnxruntime", "typer", "rich", "fastapi", "sentence_transformers"]
    code = ("import sys\nsys.argv = ['rq'] + sys.argv[1:]\nfrom rq.cli.launch import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            f"print('HEAVY', [m for m in {heavy!r} if m in sys.modules], code, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "search", "recommendations", *map(str, common), "--json"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert "HEAVY [] 0" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["results"]


def test_the_option_table_matches_the_commands():
    """rq.cli.remote reads the four commands' options by itself: it must know exactly theirs."""
    import typer.main

    from rq.cli.app import app
    from rq.cli.remote import SPECS

    group = typer.main.get_command(app)
    for name, spec in SPECS.items():
        command = group.commands[name]
        spellings = {o for p in command.params if p.param_type_name == "option" for o in p.opts}
        assert spellings - {"--help", "-h"} == set(spec.options), name
        arguments = [p.name for p in command.params if p.param_type_name == "argument"]
        assert arguments == ([spec.positional] if spec.positional else []), name
