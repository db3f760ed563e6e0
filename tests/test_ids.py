"""Resource ids: the whole SHA-1 of the normalised URL, shown as its shortest unambiguous prefix.

Two URLs whose ids share their first 32 bits must not make a queue unusable: every
command tells them apart, with a longer short form where needed.
"""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rq.errors import NotFoundError, UsageError
from rq.queue.ids import SHORT, resource_id, short_ids
from rq.queue.parse import parse_queue
from rq.queue.resolve import resolve_resource
from support.http import static
from support.routes import page

# Both hash to 5127f8a9... (found by the author; about a 1 % chance at 10,000 items).
TWINS = ("https://blog.example.com/posts/63496", "https://blog.example.com/posts/100756")


def test_the_twins_share_eight_digits_and_no_more():
    a, b = (resource_id(u) for u in TWINS)
    assert a[:8] == b[:8] == "5127f8a9" and a != b and len(a) == len(b) == 40


@given(st.lists(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40), max_size=60, unique=True))
def test_short_ids_are_unique_prefixes_of_at_least_eight_digits(ids):
    shown = short_ids(ids)
    assert set(shown) == set(ids)
    for full, short in shown.items():
        assert full.startswith(short) and len(short) >= SHORT
        assert [other for other in ids if other.startswith(short)] == [full]  # it names one resource
        if len(short) > SHORT:  # longer only when a shorter one would be ambiguous
            assert sum(other.startswith(short[:-1]) for other in ids) > 1


def test_a_queue_with_twins_parses_and_any_unique_prefix_names_each():
    queue = parse_queue(f"* [ ] [First]({TWINS[0]})\n* [x] [Second]({TWINS[1]})\n* [ ] [Other](https://x.org/a)\n"
                        .encode())
    first, second, other = queue.resources
    assert first.short_id == first.id[:9] and second.short_id == second.id[:9] and len(other.short_id) == 8
    assert resolve_resource(queue, first.short_id) is first
    assert resolve_resource(queue, second.id) is second
    assert resolve_resource(queue, TWINS[1]) is second
    with pytest.raises(UsageError, match=f"ambiguous: {first.short_id} \\(First\\), {second.short_id}"):
        resolve_resource(queue, "5127f8a9")
    with pytest.raises(NotFoundError):
        resolve_resource(queue, "5127f8a9" + "0" * 10)


def rq(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", **(env or {})},
                          timeout=600)


@pytest.fixture
def twin_queue(tmp_path, http_server):
    """The twins as pages served locally: the same paths on 127.0.0.1 hash differently, so the
    twins are listed with their own URLs (unfetchable) and each has a fetchable neighbour."""
    url = http_server.route("/ids/ranking", static(page("Learning to rank", "Pairwise losses for ranking. " * 30)))
    path = tmp_path / "reading.md"
    path.write_text(f"# Reading\n\n## Posts\n* [ ] [Twin one about caching]({TWINS[0]})\n"
                    f"* [ ] [Twin two about sharding]({TWINS[1]})\n* [ ] [Learning to rank]({url})\n")
    return path, tmp_path / "ix"


def test_ls_done_show_and_search_tell_the_twins_apart(twin_queue):
    path, index = twin_queue
    listing = rq("ls", "--queue", path, "--index", index, "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["title"]: r for r in json.loads(listing.stdout)}
    one, two = rows["Twin one about caching"], rows["Twin two about sharding"]
    assert one["short_id"] != two["short_id"] and one["short_id"][:8] == two["short_id"][:8]
    text = rq("ls", "--queue", path, "--index", index).stdout
    assert one["short_id"] in text and two["short_id"] in text

    before = path.read_bytes()
    done = rq("done", two["short_id"], "--queue", path, "--index", index)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == before.replace(b"* [ ] [Twin two", b"* [x] [Twin two")
    ambiguous = rq("done", "5127f8a9", "--queue", path, "--index", index)
    assert ambiguous.returncode == 2 and one["short_id"] in ambiguous.stderr and two["short_id"] in ambiguous.stderr

    shown = json.loads(rq("show", one["short_id"], "--queue", path, "--index", index, "--json").stdout)
    assert shown["title"] == "Twin one about caching" and shown["id"] == resource_id(TWINS[0])

    found = rq("search", "sharding", "--queue", path, "--index", index, "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["results"]
    assert hits[0]["title"] == "Twin two about sharding" and hits[0]["short_id"] == two["short_id"]
    assert hits[0]["id"] == resource_id(TWINS[1])
