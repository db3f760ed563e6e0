"""The command line as a hand uses it (issue 14): help that reads like a manual, -n on every
list, completion, `rq open`, titles as references, `rq health --check`, lines that fit the
terminal, empty answers and unknown sections said in words, and no-checkbox items."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from support.http import static
from support.routes import page

FETCH_ENV = {"RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0"}
COMMANDS = ("ingest", "index", "watch", "status", "ls", "show", "open", "search", "done", "todo", "next", "related",
            "clusters", "map", "health", "add", "import")


def rq(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def library(tmp_path, http_server):
    """A queue of four pages served on 127.0.0.1, one dead link and one item without a checkbox,
    ingested once."""
    texts = {
        "feature-stores": ("Feature stores", "A feature store keeps training and serving features consistent."),
        "real-time": ("Real-time recommendations", "Real-time recommender systems update candidates per session."),
        "code-review": ("Code review habits", "Good code reviews are small, prompt and kind to the author."),
        "bandits": ("Bandits for recsys", "Contextual bandits trade exploration against exploitation in recsys."),
    }
    urls = {slug: http_server.route(f"/hand/{slug}", static(page(title, *[text] * 6, nav="", footer=None)))
            for slug, (title, text) in texts.items()}
    path = tmp_path / "reading.md"
    path.write_text("# Reading\n\n## MLOps\n"
                    f"* [ ] [Feature stores]({urls['feature-stores']}) - consistency\n"
                    "* [x] [Dead link](http://nonexistent.invalid/post)\n\n"
                    "## Recommender systems\n"
                    f"* [x] [Real-time recommendations]({urls['real-time']})\n"
                    f"* [Bandits for recsys]({urls['bandits']})\n\n"
                    "## Engineering\n"
                    f"* [ ] [Code review habits]({urls['code-review']})\n")
    index = tmp_path / "ix"
    proc = rq("ingest", "--queue", path, "--index", index, env_extra=FETCH_ENV)
    assert proc.returncode == 0, proc.stderr
    return path, index


def test_help_reads_like_a_manual_and_completion_is_on():
    for command in COMMANDS:
        proc = rq(command, "--help", env_extra={"COLUMNS": "200"})
        assert proc.returncode == 0, command
        assert "<bool>" not in proc.stdout and "{" not in proc.stdout.split("\n\n")[0], (command, proc.stdout)
    assert "Usage: rq search [OPTIONS] QUERY" in rq("search", "--help").stdout
    top = rq("--help", env_extra={"COLUMNS": "200"}).stdout
    assert "--install-completion" in top and "--show-completion" in top and "<bool>" not in top
    completed = subprocess.run([sys.executable, "-m", "rq"], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "_RQ_COMPLETE": "complete_bash", "COMP_WORDS": "rq sea",
                                    "COMP_CWORD": "1"})
    # `python -m rq` completes as the rq program does (the variable's name comes from "rq").
    assert completed.stdout.split() == ["search"], completed


def test_minus_n_limits_every_list(library):
    path, index = library
    common = ("--queue", path, "--index", index)
    assert len(json.loads(rq("ls", "-n", "2", *common, "--json").stdout)) == 2
    shown = rq("ls", "-n", "2", *common)
    assert "2 of 5 shown" in shown.stderr
    for flag in ("-n", "-k", "--limit"):
        hits = json.loads(rq("search", "recommendations", flag, "1", *common, "--json").stdout)["results"]
        assert len(hits) == 1, flag
    assert len(json.loads(rq("next", "-n", "1", *common, "--json").stdout)["suggestions"]) == 1
    assert len(json.loads(rq("related", "recsys", "-n", "2", *common, "--json").stdout)["suggestions"]) == 2
    assert rq("ls", "-n", "0", *common).returncode == 2


def test_health_check_fails_on_dead_links_for_ci(library, tmp_path, http_server):
    path, index = library
    plain = rq("health", "--queue", path, "--index", index)
    assert plain.returncode == 0 and "gone_dns (1)" in plain.stdout
    checked = rq("health", "--check", "--queue", path, "--index", index, "--json")
    assert checked.returncode == 1 and json.loads(checked.stdout)["counts"] == {"gone_dns": 1}
    assert "1 dead link" in checked.stderr
    healthy = tmp_path / "healthy.md"
    url = http_server.route("/hand/fine", static(page("Fine", "A page that answers. " * 20, nav="", footer=None)))
    healthy.write_text(f"# Q\n\n## A\n* [ ] [Fine]({url})\n")
    ingested = rq("ingest", "--no-index", "--queue", healthy, "--index", tmp_path / "ix2", env_extra=FETCH_ENV)
    assert ingested.returncode == 0
    assert rq("health", "--check", "--queue", healthy, "--index", tmp_path / "ix2").returncode == 0


@pytest.fixture
def browser(tmp_path):
    """A BROWSER that records what it was asked to open (Python's webbrowser honours BROWSER)."""
    log = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{log}"\n')
    script.chmod(0o755)
    return str(script), log


def test_open_hands_the_link_or_the_archived_text_to_the_browser(library, browser):
    path, index = library
    command, log = browser
    env = {"BROWSER": command}
    proc = rq("open", "feature stores", "--queue", path, "--index", index, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().split("\n")[0].endswith("/hand/feature-stores")
    proc = rq("open", "feature stores", "--archived", "--queue", path, "--index", index, "--json", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    opened = json.loads(proc.stdout)["opens"]
    assert opened.startswith("file://") and opened.endswith(".txt") and opened in log.read_text()
    assert "training and serving features" in open(opened[len("file://"):], encoding="utf-8").read()
    dead = rq("open", "dead link", "--archived", "--queue", path, "--index", index, env_extra=env)
    assert dead.returncode == 1 and "has no archived text" in dead.stderr
    nobody = rq("open", "feature", "--queue", path, "--index", index, env_extra={"BROWSER": "/nonexistent/browser"})
    assert nobody.returncode == 1 and "/hand/feature-stores" in nobody.stderr and "Traceback" not in nobody.stderr


def test_a_piece_of_a_title_names_a_resource_and_several_are_listed(library):
    path, index = library
    common = ("--queue", path, "--index", index)
    shown = json.loads(rq("show", "CODE REVIEW", *common, "--json").stdout)
    assert shown["title"] == "Code review habits"
    before = path.read_bytes()
    assert rq("done", "code review", *common).returncode == 0
    assert path.read_bytes() == before.replace(b"* [ ] [Code review", b"* [x] [Code review")
    several = rq("show", "re", *common)
    assert several.returncode == 2
    assert "Feature stores" in several.stderr and "Real-time recommendations" in several.stderr
    assert rq("done", "no such title", *common).returncode == 1
    assert path.read_bytes() == before.replace(b"* [ ] [Code review", b"* [x] [Code review")


def _in_terminal(args: list, columns: int) -> list[str]:
    """Run rq with stdout on a pseudo-terminal ``columns`` wide; its lines, escapes removed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "rq", *map(str, args)], stdout=follower,
                            stderr=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    return [line for line in text.replace("\r", "").split("\n") if line.strip()]


def test_ls_fits_the_terminal_and_piped_output_is_not_cut(library):
    path, index = library
    lines = _in_terminal(["ls", "--queue", path, "--index", index], 60)
    assert len(lines) == 6  # the header and one line per resource
    assert all(len(line) <= 60 for line in lines), lines
    assert any("…" in line for line in lines)
    piped = rq("ls", "--queue", path, "--index", index).stdout
    assert "Real-time recommendations" in piped and "…" not in piped


def test_empty_answers_and_unknown_sections_are_said_in_words(library):
    path, index = library
    common = ("--queue", path, "--index", index)
    empty = rq("ls", "--unread", "--section", "recommender", "--failed", *common)
    assert empty.returncode == 0
    assert empty.stdout.strip() == "no unread resources whose last fetch failed in sections matching 'recommender'"
    unknown = rq("ls", "--section", "MLOPs-typo", *common)
    assert unknown.returncode == 2
    assert "no section matches 'MLOPs-typo'" in unknown.stderr
    assert all(name in unknown.stderr for name in ("MLOps", "Recommender systems", "Engineering"))
    unknown_search = rq("search", "features", "--section", "nowhere", *common, "--json")
    assert unknown_search.returncode == 2
    assert "no section matches" in json.loads(unknown_search.stdout)["error"]["message"]
    unknown_next = rq("next", "--section", "nowhere", *common)
    assert unknown_next.returncode == 2 and "no section matches 'nowhere'" in unknown_next.stderr
    nothing = rq("search", "features", "--section", "Engineering", "--read", *common)
    assert nothing.returncode == 0 and "no results for 'features' with these filters" in nothing.stdout


def test_an_item_without_a_checkbox_is_unread_and_todo_gives_its_line_back(library):
    path, index = library
    common = ("--queue", path, "--index", index)
    listing = {v["title"]: v for v in json.loads(rq("ls", *common, "--json").stdout)}
    assert listing["Bandits for recsys"]["state"] == "unread" and listing["Bandits for recsys"]["checkbox"] is False
    assert json.loads(rq("status", *common, "--json").stdout)["without_checkbox"] == 1
    suggested = json.loads(rq("next", "-n", "5", *common, "--json").stdout)["suggestions"]
    assert {s["state"] for s in suggested} == {"unread"}
    before = path.read_bytes()
    assert rq("done", "bandits", *common).returncode == 0
    assert path.read_bytes() == before.replace(b"* [Bandits", b"* [x] [Bandits")
    assert rq("todo", "bandits", *common).returncode == 0
    assert path.read_bytes() == before
    # An item that had a box keeps it: todo unticks it.
    assert rq("done", "feature stores", *common).returncode == 0
    assert rq("todo", "feature stores", *common).returncode == 0
    assert path.read_bytes() == before


def test_index_counts_say_what_they_count(library):
    path, index = library
    proc = rq("index", "--rebuild", "--queue", path, "--index", index)
    assert proc.returncode == 0
    line = next(text for text in proc.stderr.splitlines() if text.startswith("index built"))
    assert "5 resources" in line and "+ 5 title/note entries" in line and "from cache" in line, line
