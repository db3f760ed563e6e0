"""`rq next` / `rq related` over a queue with clear topics, with the real model (no network needed)."""

import json
import os
import subprocess
import sys

import pytest

from rq.archive.marks import mark
from rq.errors import NotFoundError, UsageError
from rq.index.manifest import read_manifest
from rq.rank.suggest.nextread import next_reads, related_to
from rq.settings import Settings

pytestmark = pytest.mark.slow

QUEUE = """# Reading

## Mixed
* [x] [Two-tower retrieval models for candidate generation in recommender systems](https://e.com/rec1)
* [x] [Collaborative filtering with matrix factorization for product recommendations](https://e.com/rec2)
* [x] [Session-based recommendation with recurrent networks](https://e.com/rec3)
* [ ] [Negative sampling strategies for training recommendation models](https://e.com/rec4)
* [ ] [Sourdough bread: feeding a starter and shaping loaves](https://e.com/bake1)
* [ ] [Baking bread at home: croissant dough and loaves](https://e.com/bake2)
* [ ] [Tuning JVM garbage collection pauses](https://e.com/jvm1)
* [ ] [Watercolour washes for beginners](https://e.com/art1)
* [ ] [Learning to rank for recommendations: pointwise versus pairwise losses](https://e.com/rec5)
"""


@pytest.fixture
def library(tmp_path):
    queue = tmp_path / "q.md"
    queue.write_text(QUEUE)
    return Settings(queue=queue, index=tmp_path / "ix")


def test_the_top_suggestion_is_on_the_topic_that_was_read(library, embedder):
    answer = next_reads(library, n=3, embedder=embedder)
    assert answer.fallback is None
    assert answer.suggestions[0].url in ("https://e.com/rec4", "https://e.com/rec5")
    top = answer.suggestions[0]
    assert top.because and top.because[0].title.split()[0] in ("Two-tower", "Collaborative", "Session-based")
    assert top.pair is not None and top.pair.similarity > 0
    assert all(s.state != "read" for s in answer.suggestions)


def test_done_shows_in_the_next_answer_at_once_without_reindexing(library, embedder):
    first = next_reads(library, n=2, embedder=embedder)
    built_at = read_manifest(library.index).built_at
    marked = mark(library, first.suggestions[0].id, "read")
    assert marked.changed
    second = next_reads(library, n=2, embedder=embedder)
    assert first.suggestions[0].id not in [s.id for s in second.suggestions]
    assert read_manifest(library.index).built_at == built_at


def test_nothing_read_gives_a_flagged_fallback(tmp_path, embedder):
    queue = tmp_path / "q.md"
    queue.write_text(QUEUE.replace("[x]", "[ ]"))
    answer = next_reads(Settings(queue=queue, index=tmp_path / "ix"), n=3, embedder=embedder)
    assert answer.fallback and "nothing read yet" in answer.fallback
    assert len(answer.suggestions) == 3


def test_related_finds_the_same_topic_and_never_the_item_itself(library, embedder):
    answer = related_to(library, "https://e.com/bake1", n=3, embedder=embedder)
    urls = [s.url for s in answer.suggestions]
    assert "https://e.com/bake1" not in urls
    assert urls[0] == "https://e.com/bake2"
    assert answer.suggestions[0].pair is not None


def test_related_to_free_text(library, embedder):
    answer = related_to(library, "java heap and stop-the-world collector", n=2, embedder=embedder)
    assert answer.suggestions[0].url == "https://e.com/jvm1"


def test_unknown_references_are_clear_errors(library, embedder):
    with pytest.raises(NotFoundError, match="not in the queue"):
        related_to(library, "https://e.com/elsewhere", embedder=embedder)
    with pytest.raises(NotFoundError, match="no resource with id"):
        related_to(library, "0badf00d", embedder=embedder)
    with pytest.raises(UsageError):
        related_to(library, "   ", embedder=embedder)
    with pytest.raises(UsageError, match="no section matches 'no such section'; sections: Mixed"):
        next_reads(library, section="no such section", embedder=embedder)


def test_next_on_the_embedded_default_works_offline(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "RQ_INDEX": str(tmp_path / "ix")}
    proc = subprocess.run([sys.executable, "-m", "rq", "next", "--json"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert len(answer["suggestions"]) == 5
    assert answer["suggestions"][0]["because"][0]["title"] == "Solid Principles Python"  # the one read item
