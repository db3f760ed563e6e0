"""Suggestions a person can trust: the same story twice, and a suggestion that rests on little.

Real pages served from 127.0.0.1, ingested and indexed by `rq ingest` with the real model.
"""

import json
import os
import subprocess
import sys

import pytest
from support.http import static
from support.queues import write_queue
from support.routes import page

from rq.cli.find import print_answer
from rq.rank.suggest.evidence import DEFAULT_NEAR_DUPLICATE, WEAK_EVIDENCE
from rq.rank.suggest.nextread import next_reads
from rq.settings import Settings

pytestmark = pytest.mark.slow

TRAM = [
    "The city council voted nine to two on Tuesday to approve the Riverside tram line, a 14-kilometre route "
    "linking the central station with the university campus and the new hospital in the east of the city.",
    "Construction is due to start next spring and the first trams should carry passengers in 2029. The council "
    "put the cost at 610 million euros, two thirds of it paid by the national infrastructure fund.",
    "Opponents on the council argued that electric buses could serve the same route for a fraction of the price, "
    "and shop owners on Market Street fear two years of roadworks outside their doors.",
    "The transport committee said the line would carry 40,000 passengers a day and take 9,000 cars off the "
    "river bridges at rush hour.",
]
# The same story from a second outlet: the same facts, partly reworded, one paragraph dropped.
TRAM_AGAIN = [
    "City councillors approved the Riverside tram line on Tuesday by nine votes to two. The 14-kilometre route "
    "will link the central station with the university campus and the new hospital in the east of the city.",
    "Building work starts next spring and passengers should ride the first trams in 2029. The cost is put at "
    "610 million euros, with the national infrastructure fund paying two thirds.",
    "Two councillors argued that electric buses could serve the route for a fraction of the price, and Market "
    "Street shop owners fear two years of roadworks outside their doors.",
]
BUSES = [
    "Bus drivers across the region walked out on Monday in a dispute over pay and shift lengths, leaving "
    "commuters to crowd onto trains and into shared taxis.",
    "The drivers' union says wages have fallen behind inflation for three years running and that split shifts "
    "keep drivers on duty for thirteen hours a day. The operator says it cannot afford the raise.",
    "Talks are set to resume on Thursday; until then only school routes will run.",
]
TOMATOES = [
    "Tomato plants grown as cordons need their side shoots pinched out every week, or the plant puts its "
    "energy into leaves instead of fruit.",
    "Water at the base rather than over the leaves to keep blight away, and feed with a high-potash fertiliser "
    "once the first truss has set.",
]


def rq(*args, env_extra=None):
    env = {**os.environ, "RQ_ALLOW_PRIVATE": "1", "RQ_FETCH_HOST_DELAY": "0", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rq", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def tram_queue(tmp_path_factory, http_server):
    """The tram story from one outlet read; the same story from another outlet, a different story on
    transport and one on gardening unread; ingested and indexed."""
    folder = tmp_path_factory.mktemp("near-dup")

    def route(path, title, paragraphs):
        return http_server.route(path, static(page(title, *paragraphs, nav="", footer=None)))

    items = [
        ("Council approves Riverside tram line", route("/nd/tram", "Council approves Riverside tram line", TRAM),
         True),
        ("Riverside tram line gets the green light from councillors",
         route("/nd/tram-again", "Riverside tram line gets the green light", TRAM_AGAIN), False),
        ("Bus drivers strike over pay and split shifts", route("/nd/buses", "Bus drivers strike", BUSES), False),
        ("Pinching out tomato side shoots", route("/nd/tomatoes", "Pinching out tomatoes", TOMATOES), False),
    ]
    queue = write_queue(folder / "reading.md", items, section="City")
    index = folder / "ix"
    proc = rq("ingest", "--queue", queue, "--index", index)
    assert proc.returncode == 0, proc.stderr
    return queue, index


def test_the_same_story_comes_after_new_material_marked_with_what_was_read(tram_queue):
    queue, index = tram_queue
    proc = rq("next", "-n", "5", "--json", "--queue", queue, "--index", index)
    assert proc.returncode == 0, proc.stderr
    suggestions = json.loads(proc.stdout)["suggestions"]
    titles = [s["title"] for s in suggestions]
    # Not dropped, but after every unread item that is new, however far off topic.
    assert titles[-1] == "Riverside tram line gets the green light from councillors", titles
    assert set(titles[:-1]) == {"Bus drivers strike over pay and split shifts", "Pinching out tomato side shoots"}
    repeat = suggestions[-1]["same_story_as"]
    assert repeat["title"] == "Council approves Riverside tram line"
    assert repeat["similarity"] >= DEFAULT_NEAR_DUPLICATE and len(repeat["id"]) == 40 and repeat["short_id"]
    assert [s["same_story_as"] for s in suggestions[:-1]] == [None, None]

    text = rq("next", "-n", "5", "--queue", queue, "--index", index)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line[:3].strip().rstrip(".").isdigit()]
    assert "Riverside tram line gets the green light" in lines[heads[-1]], text.stdout
    marks = [i for i, line in enumerate(lines) if "same story as" in line]
    assert len(marks) == 1 and marks[0] > heads[-1], text.stdout
    assert "same story as Council approves Riverside tram line" in lines[marks[0]]
    assert "after new material" in lines[marks[0]]


def test_related_marks_the_pair_without_reordering(tram_queue):
    queue, index = tram_queue
    proc = rq("related", _url_of(queue, "/nd/tram"), "-n", "3", "--json",
              "--queue", queue, "--index", index)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["suggestions"]
    assert results[0]["title"] == "Riverside tram line gets the green light from councillors"
    assert results[0]["same_story_as"]["title"] == "Council approves Riverside tram line"
    assert [r["same_story_as"] for r in results[1:]] == [None, None]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)

    text = rq("related", _url_of(queue, "/nd/tram"), "-n", "3", "--queue", queue, "--index", index)
    assert text.stdout.count("same story as Council approves Riverside tram line") == 1, text.stdout


def _url_of(queue, path: str) -> str:
    return next(line.split("](", 1)[1].split(")", 1)[0] for line in queue.read_text().splitlines()
                if line.split(")", 1)[0].endswith(path))


# -------------------------------------------------------------------------- weak evidence

TITLES = [
    ("Horizontal pod autoscaling in Kubernetes, explained", "https://e.com/k8s-hpa"),
    ("Autoscaling Kubernetes workloads on custom metrics with KEDA", "https://e.com/keda"),
    ("Tuning PostgreSQL autovacuum for large tables", "https://e.com/vacuum"),
    ("A beginner's guide to watercolour washes", "https://e.com/paint"),
    ("Sourdough: feeding a starter and shaping loaves", "https://e.com/bread"),
]


def _queue(tmp_path, read_url: str) -> Settings:
    items = [(title, url, url == read_url) for title, url in TITLES]
    return Settings(queue=write_queue(tmp_path / "q.md", items), index=tmp_path / "ix")


def test_a_suggestion_resting_on_a_faint_likeness_says_so(tmp_path, embedder, capsys):
    answer = next_reads(_queue(tmp_path, "https://e.com/bread"), n=3, embedder=embedder)
    assert all(s.evidence == "weak" for s in answer.suggestions)
    print_answer(answer, json_out=False)
    out = capsys.readouterr().out
    assert out.count("weak evidence: the closest thing you read, Sourdough: feeding a starter") == 3, out
    assert "this pick rests on little" in out and "because you read" not in out
    print_answer(answer, json_out=True)
    data = json.loads(capsys.readouterr().out)
    assert [s["evidence"] for s in data["suggestions"]] == ["weak"] * 3
    assert data["suggestions"][0]["because"][0]["similarity"] < WEAK_EVIDENCE  # the figures stay in JSON


def test_strong_evidence_is_stated_as_before(tmp_path, embedder, capsys):
    answer = next_reads(_queue(tmp_path, "https://e.com/k8s-hpa"), n=1, embedder=embedder)
    top = answer.suggestions[0]
    assert top.url == "https://e.com/keda" and top.evidence == "strong" and top.same_story_as is None
    print_answer(answer, json_out=False)
    out = capsys.readouterr().out
    assert "because you read: Horizontal pod autoscaling in Kubernetes, explained" in out
    assert "weak evidence" not in out


def test_nothing_read_has_no_evidence_to_weigh(tmp_path, embedder):
    answer = next_reads(_queue(tmp_path, ""), n=2, embedder=embedder)
    assert answer.fallback and [s.evidence for s in answer.suggestions] == [None, None]


# -------------------------------------------------------------------------- the setting


@pytest.mark.parametrize("value", ["1.5", "0.2", "high"])
def test_a_bad_threshold_is_one_line_and_exit_2(tmp_path, value):
    queue = write_queue(tmp_path / "q.md", TITLES[:2])
    proc = rq("next", "--queue", queue, "--index", tmp_path / "ix", env_extra={"RQ_NEAR_DUPLICATE_COSINE": value})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "setting near_duplicate_cosine" in proc.stderr and "0.5 to 1" in proc.stderr
    assert not (tmp_path / "ix").exists()


def test_the_setting_defaults_to_the_threshold_chosen_on_data():
    assert Settings().near_duplicate_cosine == DEFAULT_NEAR_DUPLICATE
