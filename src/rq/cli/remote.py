"""The command line through a running engine: `rq search`, `next`, `related` and `show` ask
`rq serve` when one runs for this queue and index, before importing anything heavy.

The arguments are read with a small table of each command's options (tests/test_serve_client.py
checks it against the typer commands); anything this reader does not fully understand (help,
an unknown option, a value the command would refuse) goes to the full command line, which
answers or reports it as always. The engine's answer is the JSON the command prints with
--json, so it is printed with the command's own printers. When no engine says it is alive
within 200 ms the command works in-process, and says so only with -v.

Importing this module must stay cheap: the standard library, rq's base modules and
rq.serve.client. numpy, faiss, torch, typer and rich are not imported on the --json path.
"""

from __future__ import annotations

import sys
import urllib.parse
from dataclasses import dataclass, field

QUERY_LIMIT = 1000  # the API's bound on a query or a reference (rq.serve.api)
URL_LIMIT = 4000  # under the guard's limit on a query string (rq.serve.security)


@dataclass
class Spec:
    path: str
    positional: str | None  # the name of the one argument, or None
    options: dict[str, tuple[str, type]]  # spelling -> (name, int | str | bool)
    defaults: dict[str, object] = field(default_factory=dict)


_COMMON = {"--queue": ("queue", str), "-q": ("queue", str), "--index": ("index", str), "--json": ("json", bool),
           "-v": ("verbose", bool), "--verbose": ("verbose", bool)}
_LIMIT = {"-n": ("n", int), "--limit": ("n", int)}
_SECTION = {"--section": ("section", str), "-s": ("section", str)}
SPECS = {
    "search": Spec("/api/search", "query", {**_COMMON, **_LIMIT, **_SECTION, "-k": ("n", int),
                                            "--unread": ("unread", bool), "--read": ("read", bool),
                                            "--type": ("kind", str), "--mode": ("mode", str),
                                            "--model": ("model", str)}, {"n": 10, "mode": "hybrid"}),
    "next": Spec("/api/next", None, {**_COMMON, **_LIMIT, **_SECTION}, {"n": 5}),
    "related": Spec("/api/related", "ref", {**_COMMON, **_LIMIT, "--text": ("text", bool)}, {"n": 5}),
    "show": Spec("/api/item/", "resource", {**_COMMON, "--chars": ("chars", int)}, {"chars": 800}),
}


class NotMine(Exception):
    """Arguments for the full command line to read."""


def parse(command: str, args: list[str]) -> dict:
    """The command's arguments as {name: value}, or NotMine."""
    spec = SPECS[command]
    values: dict[str, object] = dict(spec.defaults)
    positional: list[str] = []
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token == "--":
            positional += rest
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name, _, attached = token.partition("=") if token.startswith("--") else (token[:2], "", token[2:])
        if name not in spec.options:
            raise NotMine(token)
        key, kind = spec.options[name]
        if kind is bool:
            if attached:
                raise NotMine(token)
            values[key] = True
            continue
        if not attached:
            if not rest:
                raise NotMine(token)
            attached = rest.pop(0)
        try:
            values[key] = kind(attached)
        except ValueError:
            raise NotMine(token) from None
    if len(positional) != (1 if spec.positional else 0):
        raise NotMine("arguments")
    if spec.positional:
        values[spec.positional] = positional[0]
    _check(values)
    return values


def _check(values: dict) -> None:
    """What the command itself would refuse is left to it, with its own message."""
    if values.get("n", 1) < 1 or values.get("chars", 0) < 0:
        raise NotMine("a number out of range")
    if values.get("read") and values.get("unread"):
        raise NotMine("--read and --unread")
    if values.get("kind") not in (None, "html", "pdf") or values.get("mode", "hybrid") not in (
            "hybrid", "dense", "keyword"):
        raise NotMine("a choice")
    for key in ("query", "ref", "resource", "section"):
        text = values.get(key)
        if text is not None and (not str(text).strip() or len(str(text)) > QUERY_LIMIT):
            raise NotMine(key)


def request_of(command: str, v: dict) -> tuple[str, dict]:
    """The API path and parameters asking the engine what the command asks."""
    if command == "search":
        state = "read" if v.get("read") else "unread" if v.get("unread") else None
        return SPECS[command].path, {"q": v["query"], "n": v["n"], "section": v.get("section"), "state": state,
                                     "type": v.get("kind"), "mode": v["mode"]}
    if command == "next":
        return SPECS[command].path, {"n": v["n"], "section": v.get("section")}
    if command == "related":
        return SPECS[command].path, {"ref": v["ref"], "n": v["n"], "text": "true" if v.get("text") else None}
    return SPECS[command].path + urllib.parse.quote(v["resource"], safe=""), {"chars": v["chars"]}


def answer(argv: list[str]) -> int | None:
    """Answer ``argv`` through a running engine: the exit code, or None to work in-process."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in SPECS or argv[0] != command:
        return None
    try:
        values = parse(command, argv[1:])
    except NotMine:
        return None
    from rq.errors import RqError
    from rq.serve.client import Unavailable, ask, fingerprint

    try:
        settings, location = _where(values)
        path, params = request_of(command, values)
        if len(urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})) > URL_LIMIT:
            raise Unavailable("the question is too long for the engine's API")
        status, data = ask(location.index_dir, location.queue_key, fingerprint(settings), path, params)
        if not (status == 200 or _is_error(data)):
            raise Unavailable(f"the engine answered HTTP {status}"
                              + (f" ({data['error']['message']})" if _is_error(data) else ""))
    except RqError:
        return None  # a bad setting: the full command line reports it
    except Unavailable as why:
        if values.get("verbose"):
            _say(f"{why}; answering in-process")
        return None
    if values.get("verbose"):
        _say(f"answered by the engine at {_address(location.index_dir)}")
    return _print(command, values, status, data)


def _where(values: dict):
    from rq.paths import locate
    from rq.settings import load_settings

    settings = load_settings({"queue": values.get("queue"), "index": values.get("index"),
                              "model": values.get("model")})
    return settings, locate(settings)


def _is_error(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("error"), dict) and "message" in data["error"]


def _address(index_dir) -> str:
    from rq.serve.client import read_engine_file

    info = read_engine_file(index_dir)
    return f"http://{info['host']}:{info['port']}/"


def _say(message: str) -> None:
    from rq.cli.output import one_line

    sys.stderr.write(f"rq: {one_line(message)}\n")


def _print(command: str, values: dict, status: int, data) -> int:
    """Print the engine's answer as the command prints its own; the exit code."""
    from rq.cli.output import emit_json, report_failure

    as_json = bool(values.get("json"))
    if status != 200:
        code = int(data["error"].get("code", 1))
        report_failure(data["error"]["message"], code, as_json)
        return code
    if command == "search":
        for notice in data["notices"]:
            _say(notice)
        if as_json:
            emit_json(data)
        else:
            from rq.cli.hits import print_hits

            print_hits(Answer(data, hits=data["results"]),
                       filtered=bool(values.get("section") or values.get("read") or values.get("unread")
                                     or values.get("kind")))
    elif command in ("next", "related"):
        from rq.cli.find import print_answer

        print_answer(Answer(data), as_json)
    elif as_json:
        emit_json(data)
    else:
        from rq.cli.browse import print_resource

        print_resource(data)
    return 0


class Answer:
    """A JSON answer read back as the object the printers take: keys as attributes, nested
    objects likewise, and ``as_dict()`` the JSON itself."""

    def __init__(self, data: dict, **renamed):
        self._data = data
        self._renamed = renamed

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._renamed[name] if name in self._renamed else self._data[name]
        return _wrapped(value)

    def as_dict(self) -> dict:
        return self._data


def _wrapped(value):
    if isinstance(value, dict):
        return Answer(value)
    if isinstance(value, list):
        return [_wrapped(v) for v in value]
    return value
