"""What fills an empty section, and who is in a cluster (rq.rank.topics.audit, sections, headings, report).

Hand-made vectors: directions 0-3 are topics; headings point at them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rq.rank.topics import audit as rqa
from rq.rank.topics import clusters as rqc
from rq.rank.topics import headings as rqh
from rq.rank.topics import sections as rqs

DIM = 16


def around(direction, n, seed, noise=0.1):
    rng = np.random.default_rng(seed)
    x = np.eye(DIM)[direction] + noise * rng.standard_normal((n, DIM))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def queue_with_an_empty_section():
    """Sections A, B, C hold topics 0, 1, 2 (titles full of "learning"); the heading
    "Reinforcement Learning" (topic 3) is empty. Three items stand out:
    item 0 in B is about topic 3 but shares no word with the heading;
    item 1 in A is about topic 0 and shares "reinforcement learning" with it;
    item 2 in "Blog Posts" is about nothing any heading is about (a news story)."""
    x = np.vstack([around(3, 1, 1), around(0, 1, 2), np.eye(DIM)[9:10],
                   around(0, 6, 3), around(1, 6, 4), around(2, 6, 5)])
    titles = ["Policy gradients for agents", "Reinforcement learning jargon in a databases post",
              "Senate passes the budget"]
    titles += [f"Databases and learning, part {i}" for i in range(6)]
    titles += [f"Learning compilers, part {i}" for i in range(6)]
    titles += [f"Learning to cook, part {i}" for i in range(6)]
    paths = [("B",), ("A",), ("Blog Posts",)] + [("A",)] * 6 + [("B",)] * 6 + [("C",)] * 6
    sections = [("A",), ("B",), ("C",), ("Reinforcement Learning",), ("Blog Posts",)]
    headings = {("A",): np.eye(DIM)[0], ("B",): np.eye(DIM)[1], ("C",): np.eye(DIM)[2],
                ("Reinforcement Learning",): np.eye(DIM)[3]}
    return x, paths, titles, sections, headings


def run(**kwargs):
    x, paths, titles, sections, headings = queue_with_an_empty_section()
    labels = rqc.cluster(x, 4).labels
    return rqa.audit(x, labels, paths, titles, sections, headings, **kwargs), titles


def test_the_empty_section_is_offered_what_it_is_about_not_what_shares_its_words():
    report, titles = run()
    (empty,) = [t for t in report.thin if t.section == ("Reinforcement Learning",)]
    assert empty.kind == "empty"
    assert [r.title for r in empty.by_heading] == ["Policy gradients for agents"]
    # Both of the heading's words are in item 1's title, yet its content is elsewhere: words
    # alone stay below the threshold (LEXICAL_WEIGHT < FIT_MIN).
    assert rqs.LEXICAL_WEIGHT < rqa.FIT_MIN


def test_an_item_far_from_every_heading_is_sent_nowhere():
    report, _ = run()
    suggested = {r.item for t in report.thin for r in t.by_heading}
    assert 2 not in suggested
    (blog,) = report.formats
    assert [(d.title, d.section) for d in blog.destinations] == [("Senate passes the budget", None)]


def test_a_common_word_covers_little_of_a_heading():
    titles = [f"{topic} learning" for topic in ("Deep", "Machine", "Transfer", "Active", "Online", "Federated")]
    titles += ["Policy search for robots", "Reinforcement learning from human feedback"]
    weight = rqh.word_weights(titles)
    common, evidence = rqh.lexical_match("Reinforcement Learning", "Real Time Machine Learning", weight)
    assert evidence == "learning" and common < 0.25  # "learning" is in 7 of 8 titles
    full, _ = rqh.lexical_match("Reinforcement Learning", "Reinforcement learning from human feedback", weight)
    assert full == pytest.approx(1.0)
    # Unweighted, the shared word is half the heading.
    assert rqh.lexical_match("Reinforcement Learning", "Real Time Machine Learning")[0] == pytest.approx(0.5)


def test_the_word_index_finds_what_lexical_match_finds():
    texts = ["Real Time Recsys", "Recommender systems at scale", "NLP with transformers",
             "Natural language processing in production", "OOP in Python", "Object oriented programming",
             "Learning to rank for search", "Machine learning ops", "MLOps at Uber", "Cooking pasta", ""]
    index = rqh.WordIndex(texts)
    weight = rqh.word_weights(texts)
    for heading in ("Recommender Systems", "NLP", "Natural Language Processing", "Object Oriented Programming",
                    "OOP In Python", "Learning to Rank", "MLOps", "Machine Learning", "Computer Vision"):
        expected = {i: rqh.lexical_match(heading, t, weight) for i, t in enumerate(texts)}
        assert index.matches(heading) == {i: m for i, m in expected.items() if m[0] > 0}, heading
        assert index.matches(heading, 0.5) == {i: m for i, m in expected.items() if m[0] > 0.5}, heading
    assert index.matches("Recommender Systems")[0][1] == "recsys = recommender systems"
    assert index.matches("NLP")[3][1] == "nlp = natural language processing"


def test_half_a_heading_in_words_adds_nothing_to_the_fit():
    x = np.vstack([around(t, 4, t) for t in range(4)])
    texts = ["Machine learning at scale"] * 4 + ["Reinforcement learning for games"] + ["Compilers"] * 11
    headings = {(h,): np.eye(DIM)[t] for t, h in enumerate(["Reinforcement Learning", "B", "C", "D"])}
    view = rqs.SectionView(x, [("B",)] * 16, texts, headings, texts)
    view.homes = list(headings)
    scores, matched = view.fit_scores(("Reinforcement Learning",))
    plain = view._semantic_fits()[("Reinforcement Learning",)]
    assert matched[0] == "" and scores[0] == pytest.approx(plain[0])  # one common word: no bonus
    assert scores[4] == pytest.approx(plain[4] + rqs.LEXICAL_WEIGHT)  # every word: the whole bonus
    assert matched[4] == "reinforcement, learning"


def test_cluster_members_are_listed_most_central_first():
    report, titles = run()
    seen = []
    for info in report.clusters:
        assert len(info.members) == info.size
        seen += info.members
        x, *_ = queue_with_an_empty_section()
        fit = x[info.members] @ x[info.members].sum(axis=0)
        assert all(a >= b - 1e-9 for a, b in zip(fit, fit[1:]))
    assert sorted(seen) == list(range(len(titles)))
    assert "members" in json.loads(json.dumps(report.as_dict()))["clusters"][0]


def test_report_json_names_every_member_by_id():
    from rq.rank.topics.report import TopicReport

    report, titles = run()
    ids = [f"{i:040x}" for i in range(len(titles))]
    data = TopicReport(rqc.Clustering(np.zeros(len(titles), dtype=np.int64), len(report.clusters), "ward", "test"),
                       [c.words for c in report.clusters], report, [], len(titles), ids, titles).as_dict()
    listed = [i for c in data["clusters"] for i in c["ids"]]
    assert sorted(listed) == ids
    for c in data["clusters"]:
        assert c["titles"] == [titles[int(i, 16)] for i in c["ids"]] and c["size"] == len(c["ids"])


def test_text_lists_the_first_titles_then_how_many_more():
    from rq.cli.topics import _members

    members = [(f"{i:040x}", f"Title {i}") for i in range(7)]
    assert _members(members, 3) == "Title 0; Title 1; Title 2; and 4 more"
    assert _members(members[:3], 3) == "Title 0; Title 1; Title 2"
    assert _members(members, 5) == "Title 0; Title 1; Title 2; Title 3; Title 4; and 2 more"
    assert _members([("0" * 40, "A [bold]title[/bold]\nwith a newline")], 3) == "A [bold]title[/bold] with a newline"


# --------------------------------------------------------------------------- the real model

SERVED = """\
# Served pages

## Politics
- [Republicans look for a win in Louisiana after losses in Kentucky and Virginia](https://news.example/p/1)
- [Senate leader moves motion for adjournment after the deaths of two members](https://news.example/p/2)
- [South Dakota governor doubles down on the meth campaign](https://news.example/p/3)

## Business
- [New York attorney general investigating WeWork and its former CEO](https://news.example/b/1)
- [Disney+ signs up 10 million users on its first day](https://news.example/b/2)
- [The latest wave of fintech startups wants to be your bank](https://news.example/b/3)

## Space & Science
- [NASA finds water plumes above the surface of Jupiter's icy moon Europa](https://news.example/s/1)
- [Scientists unveil a new map of the ocean floor](https://news.example/s/2)
- [Why the air in Delhi is so bad, explained](https://news.example/s/3)

## Sports
- [Argentina comfortably wins its Davis Cup opener against Chile](https://news.example/o/1)
- [Browns player on Mason Rudolph's role in the fight with Myles Garrett](https://news.example/o/2)
- [NASCAR classification after the last race of the season](https://news.example/o/3)

## Other languages
- [Black Friday per nostalgici: le occasioni da non perdere](https://news.example/l/1)
- [Classificação da NASCAR: confira a tabela atualizada](https://news.example/l/2)
- [Fact check: is an oxygen bar in Delhi offering fresh air for Rs 300?](https://news.example/l/3)

## Papers
- [Attention Is All You Need](https://papers.example/attention.pdf)
- [BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding](https://papers.example/bert.pdf)
- [Universal Sentence Encoder](https://papers.example/use.pdf)
- [StarSpace: Embed All The Things!](https://papers.example/starspace.pdf)
- [The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks](https://papers.example/lottery.pdf)
"""


@pytest.mark.slow
def test_real_model_sends_papers_nowhere_in_a_queue_of_news():
    from rq.index.encoders.torch_encoder import Embedder
    from rq.queue.parse import parse_queue

    embedder = Embedder("all-MiniLM-L6-v2")
    queue = parse_queue(SERVED.encode())
    texts = [r.title for r in queue.resources]
    vectors = embedder.encode(texts)
    sections = [s.path for s in queue.sections]
    headings = dict(zip(sections, embedder.encode([rqh.heading_text(p) for p in sections])))
    labels = rqc.cluster(vectors, "auto", sections=rqc.topic_sections(r.section_path for r in queue.resources)).labels
    report = rqa.audit(vectors, labels, [r.section_path for r in queue.resources], texts, sections, headings,
                       texts=texts)
    (papers,) = report.formats
    assert papers.section == ("Papers",)
    # Before issue 14 the heading's words and a bare heading vector sent "Universal Sentence
    # Encoder" to "Other languages" and "StarSpace" to "Space & Science".
    assert {d.title: d.section for d in papers.destinations} == {d.title: None for d in papers.destinations}
