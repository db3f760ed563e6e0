"""What a queue or a person types is data: never console markup, never a terminal control
sequence, never a crash. Every run here is the real `rq` in a new process."""

import json
import os
import subprocess
import sys

import pytest

from rq.queue.ids import resource_id

ESC, BEL, RLO = "\x1b", "\x07", "\u202e"


def rq(*args, env=None):
    """Run rq with ``args`` (str or bytes, as a shell would pass them); returns (code, stdout, stderr)."""
    argv = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    proc = subprocess.run([os.fsencode(sys.executable), b"-m", b"rq", *argv], capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    assert "Traceback" not in err and "unexpected error" not in err, err[-2000:]
    return proc.returncode, out, err


@pytest.fixture
def hostile_queue(tmp_path):
    """Titles and notes that would be markup or terminal commands if printed as they are."""
    path = tmp_path / "reading.md"
    path.write_text(
        "# Reading\n\n## [bold red]Injected[/] section\n"
        "- [ ] <https://example.com/[/x]>\n"
        f"- [x] [Red {ESC}calert and a bell{BEL}](https://e.com/ansi) - note {ESC}]0;pwned{BEL}\n"
        f"- [ ] [Reversed {RLO}txt.exe](https://e.com/bidi)\n"
        "- [ ] [Again the odd one](https://example.com/[/x])\n", encoding="utf-8")
    return path, tmp_path / "ix"


def _no_controls(text: str) -> None:
    for char in (ESC, BEL, RLO):
        assert char not in text, repr(text)


def test_ls_status_and_show_print_outside_text_plainly(hostile_queue):
    path, index = hostile_queue
    code, out, err = rq("ls", "--queue", path, "--index", index)
    assert code == 0
    _no_controls(out + err)
    assert "[bold red]Injected[/] section" in out  # shown as written, not as styling
    assert "example.com/[/x]" in out  # the title rq made from the URL
    assert "Red \\x1bcalert and a bell\\x07" in out and "\\u202etxt.exe" in out  # visible, not acted on

    code, out, err = rq("status", "--queue", path, "--index", index)
    assert code == 0 and "same link as line" in err and "[/x]" in err  # the duplicate's warning
    _no_controls(out + err)

    ansi = resource_id("https://e.com/ansi")[:8]
    code, out, err = rq("show", ansi, "--queue", path, "--index", index)
    assert code == 0 and "note \\x1b]0;pwned\\x07" in out
    _no_controls(out + err)
    listing = json.loads(rq("ls", "--queue", path, "--index", index, "--json")[1])
    assert any(ESC in row["title"] for row in listing)  # JSON carries the data as it is, escaped by JSON


@pytest.mark.parametrize("ref, code, message", [
    ("[/bad]", 1, "no resource with id or title matching '[/bad]'"),
    (f"{ESC}[2J", 1, "no resource with id or title matching '\\x1b[2J'"),
])
def test_show_of_an_odd_reference_is_one_plain_line(hostile_queue, ref, code, message):
    path, index = hostile_queue
    got, out, err = rq("show", ref, "--queue", path, "--index", index)
    assert got == code and message in err and len(err.strip().splitlines()) == 1
    _no_controls(err)


def test_bytes_that_are_not_utf8_in_a_query_are_searched_as_text(hostile_queue):
    path, index = hostile_queue
    code, out, err = rq("search", b"red caf\xe9 alert", "--queue", path, "--index", index, "--json")
    assert code == 0
    assert json.loads(out)["query"] == "red caf\ufffd alert"
    assert json.loads(out)["results"][0]["title"].startswith("Red ")
    code, out, err = rq("related", b"x\xffy", "--text", "--queue", path, "--index", index, "--json")
    assert code == 0 and json.loads(out)["suggestions"]


@pytest.mark.parametrize("kind, code, message", [
    ("a digit two ids start with", 2, "is ambiguous"),
    ("deadbeef", 1, "no resource with id or title matching 'deadbeef'"),
])
def test_an_argument_that_looks_like_an_id_must_name_one_resource(tmp_path, kind, code, message):
    urls = [f"https://e.com/post/{i}" for i in range(40)]
    path = tmp_path / "reading.md"
    path.write_text("".join(f"- [ ] [Post {i}]({u})\n" for i, u in enumerate(urls)))
    firsts = [resource_id(u)[0] for u in urls]
    ref = next(d for d in "0123456789" if firsts.count(d) > 1) if kind.startswith("a digit") else kind
    got, out, err = rq("related", ref, "--queue", path, "--index", tmp_path / "ix", "--json")
    assert got == code and message in err and "pass --text" in err
    assert json.loads(out)["error"]["code"] == code
    got, out, _ = rq("related", ref, "--text", "--queue", path, "--index", tmp_path / "ix", "--json")
    assert got == 0 and len(json.loads(out)["suggestions"]) == 5  # --text: the same characters, as text


def test_a_negative_chars_is_a_usage_error(hostile_queue):
    path, index = hostile_queue
    code, out, err = rq("show", resource_id("https://e.com/bidi")[:8], "--chars", "-5", "--queue", path,
                        "--index", index, "--json")
    assert code == 2 and "--chars" in err
    assert json.loads(out) == {"error": {"code": 2, "message": err.strip().removeprefix("rq: ")}}


def test_highlighting_keeps_the_spaces_between_words():
    from rq.cli.hits import _highlighted

    passage = f"Tomato growing is easy {ESC}c in spring"
    shown = _highlighted("    ", passage, [(0, 6), (7, 14)])
    assert shown.plain == "    Tomato growing is easy \\x1bc in spring"
    assert [shown.plain[s.start:s.end] for s in shown.spans] == ["Tomato", "growing"]
