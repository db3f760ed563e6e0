"""What a search hit shows: the sentences of its page that carry the query's words, marked;
never a reference list, an arXiv stamp or a navigation line; never only the queue's note
when the page's text is archived."""

import io

import pytest

from rq.index.keyword import Tokenizer
from rq.rank.snippets import MAX_CHARS, SnippetPicker, sentence_spans
from support.http import static
from support.pdf import make_pdf
from support.routes import page

TOKENIZE = Tokenizer()  # the keyword index's own (stemming when PyStemmer is installed)


def marked(snippet) -> list[str]:
    return [snippet.text[a:b] for a, b in snippet.highlights]


FILLER = ("The committee met on a grey morning in the old hall by the river. Tea was served in chipped cups "
          "while the minutes of the last meeting were read aloud. Nobody objected to the minutes, and the chair "
          "moved on quickly.")


def test_the_sentence_with_the_query_words_is_shown_from_the_middle_of_a_passage_and_marked():
    passage = (FILLER + " Gradient checkpointing trades compute for memory by recomputing activations during "
               "the backward pass. " + FILLER)
    snippet = SnippetPicker("gradient checkpointing memory", TOKENIZE).pick([passage])
    assert "Gradient checkpointing trades compute for memory" in snippet.text
    assert len(snippet.text) <= MAX_CHARS
    assert snippet.text.startswith("… ")  # text before it was left out, and the snippet says so
    assert marked(snippet) == ["Gradient", "checkpointing", "memory"]


def test_words_of_the_query_in_two_places_are_both_shown_with_a_gap_mark():
    passage = ("Sharding splits a table across machines by a key. " + FILLER + " " + FILLER
               + " Replication keeps copies of each table on three nodes.")
    snippet = SnippetPicker("sharding replication", TOKENIZE).pick([passage])
    assert "Sharding splits a table" in snippet.text and "Replication keeps copies" in snippet.text
    assert " … " in snippet.text and len(snippet.text) <= MAX_CHARS
    assert marked(snippet) == ["Sharding", "Replication"]


def test_other_forms_of_a_query_word_are_marked_when_the_index_stems():
    if not TOKENIZE.stem:
        pytest.skip("PyStemmer not installed: the keyword index does not stem")
    snippet = SnippetPicker("routing", TOKENIZE).pick(["Each token is routed to two experts. " + FILLER])
    assert marked(snippet) == ["routed"]


def test_a_name_in_the_query_is_marked_whole_and_not_its_pieces():
    passage = "Loading files with the xq toolkit. Call pd.xq_read_parquet_v2 to load a file lazily."
    snippet = SnippetPicker("xq_read_parquet_v2 real-time", TOKENIZE).pick([passage + " It runs in real time."])
    assert marked(snippet) == ["xq_read_parquet_v2", "real", "time"]  # not the lone "xq"


def test_a_rare_query_word_outweighs_a_common_one():
    passage = ("The model is trained on the data for a week. " + FILLER
               + " Dropout of 0.1 regularises the model. " + FILLER)
    picker = SnippetPicker("model dropout", TOKENIZE, weights={"model": 0.2, "dropout": 3.0})
    snippet = picker.pick([passage], max_chars=120)
    assert "Dropout of 0.1" in snippet.text


def test_a_sentence_longer_than_the_window_is_cut_around_the_query_words():
    long = ("In the first stage of the pipeline, " + "which reads raw logs from many services, " * 6
            + "the deduplication step removes repeated events before they reach the warehouse, "
            + "and then " + "the loader writes partitions one day at a time, " * 5 + "which ends the run.")
    snippet = SnippetPicker("deduplication", TOKENIZE).pick([long])
    assert len(snippet.text) <= MAX_CHARS
    assert "deduplication step removes repeated events" in snippet.text
    assert snippet.text.startswith("… ") and snippet.text.endswith(" …")


def test_with_no_query_word_the_passage_opens_the_snippet():
    passage = "Kittens need a quiet room. " + FILLER
    snippet = SnippetPicker("looking after a pet", TOKENIZE).pick([passage])
    assert snippet.text.startswith("Kittens need a quiet room.") and not snippet.highlights


def test_a_neighbouring_passage_supplies_the_sentence_that_matches():
    first, second = FILLER + " Quorum reads need a majority of replicas.", "Quorum reads need a majority of replicas. " + FILLER
    third = "Leases let a leader serve reads without a quorum round trip. " + FILLER
    snippet = SnippetPicker("leader leases", TOKENIZE).pick([first, second, third], focus=1)
    assert "Leases let a leader serve reads" in snippet.text
    assert snippet.text.count("Quorum reads need a majority") <= 1  # the overlap is not shown twice


def test_text_archived_before_cleaning_never_shows_its_stamp_and_prefers_prose_to_citations():
    passage = ("In this paper, we improve fine-tuning by proposing a masked language arXiv:1810.04805v2 [cs.CL] "
               "24 May 2019 model objective. Devlin, J., Chang, M. 2019. BERT: pre-training of masked language "
               "models. In Proceedings of NAACL. " + FILLER)
    snippet = SnippetPicker("masked language model", TOKENIZE).pick([passage], max_chars=120)
    assert "arXiv:" not in snippet.text and "[cs.CL]" not in snippet.text
    assert "we improve fine-tuning" in snippet.text and "In Proceedings" not in snippet.text


@pytest.mark.parametrize("text, expected", [
    ("Vaswani et al. (2017) use attention. It works.", ["Vaswani et al. (2017) use attention.", "It works."]),
    ("See Fig. 3 for e.g. the loss. Then stop.", ["See Fig. 3 for e.g. the loss.", "Then stop."]),
    ("J. Smith wrote it. Is it good? Yes!", ["J. Smith wrote it.", "Is it good?", "Yes!"]),
    ("version 2.1 is out. next", ["version 2.1 is out. next"]),  # a lower-case start is no new sentence
])
def test_sentences(text, expected):
    assert [text[a:b] for a, b in sentence_spans(text)] == expected


def test_the_terminal_marks_the_query_words_and_prints_the_rest_plainly():
    from rich.console import Console

    from rq.cli.hits import _highlighted

    passage = "Sharding with \x1b[31mcolour\x1b[0m keeps a table on many machines"
    snippet = SnippetPicker("sharding machines", TOKENIZE).pick([passage])
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="standard", width=200).print(
        _highlighted("    ", snippet.text, snippet.highlights))
    shown = out.getvalue()
    assert "\x1b[1;33mSharding\x1b[0m" in shown and "\x1b[1;33mmachines\x1b[0m" in shown
    assert "\\x1b[31mcolour" in shown  # the page's own escape is shown, not obeyed


# ---------------------------------------------------------------------------------------------
# end to end: pages served on 127.0.0.1, ingested, indexed and searched with the real model

STAMP = "arXiv:2101.03961v3 [cs.LG] 16 Jun 2022"
REFERENCES = ["[1] Noam Shazeer, Azalia Mirhoseini, and Krzysztof Maziarz. Outrageously large neural",
              "networks: the sparsely-gated mixture-of-experts layer. In ICLR, 2017.",
              "[2] Dmitry Lepikhin, HyoukJoong Lee, and Yuanzhong Xu. GShard: scaling giant models with",
              "conditional computation. In International Conference on Learning Representations, 2021."]
BLOG = page("Notes on load balancing for experts",
            "Skip to content",
            "Without an auxiliary balancing loss the router collapses onto one favourite expert, and the other "
            "experts sit idle while memory fills up on a single device.",
            "Read more: Ten things nobody tells you about transformers",
            "The loss multiplies the fraction of tokens each expert receives by its mean router probability, "
            "which is smallest when tokens are spread evenly.",
            "Share this:", "3 Comments",
            html="<h2>References</h2><ol><li>Shazeer, N., Mirhoseini, A., et al. (2017). Outrageously large "
                 "neural networks. In ICLR.</li><li>Fedus, W., Zoph, B., and Shazeer, N. (2021). Switch "
                 "Transformers. arXiv preprint arXiv:2101.03961.</li><li>Lepikhin, D. et al. (2021). GShard: "
                 "scaling giant models. In Proceedings of ICLR.</li></ol><p>You may also like...</p>")
GARDEN = page("Growing tomatoes on a balcony",
              "Tomato plants want six hours of sun, deep pots and steady watering to avoid blossom end rot.",
              "Pinch out side shoots on cordon varieties and tie the stem to a cane as it grows.",
              "A drip line on a timer waters the pots at dawn, so the compost never dries out between visits.")


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server):
    from rq.ingest.pipeline import ingest
    from rq.settings import Settings

    root = tmp_path_factory.mktemp("snippets")
    head = "Preprint under review"
    paper = make_pdf([
        [head, "Switch routing for sparse experts", "Each token is routed to a single expert chosen by the",
         "router, which halves the communication of top-two routing.", "1"],
        [head, "Expert capacity caps how many tokens one expert takes from a batch; overflow tokens skip",
         "the layer through the residual connection.", "References", *REFERENCES, "2"],
        [head, "A Appendix: capacity factor sweep", "We sweep the capacity factor from one to two on every layer.",
         "3"]], margin=STAMP)
    urls = {"paper": http_server.route("/snippets/switch.pdf", static(paper, "application/pdf")),
            "blog": http_server.route("/snippets/blog", static(BLOG)),
            "garden": http_server.route("/snippets/garden", static(GARDEN))}
    queue = root / "reading.md"
    queue.write_text("# Reading\n\n## Papers\n"
                     f"- [ ] [Switch routing paper]({urls['paper']})\n"
                     f"- [ ] [Balancing experts]({urls['blog']})\n\n## Home\n"
                     f"- [ ] [Balcony tomatoes]({urls['garden']}) - drip irrigation on a timer, drip drip\n"
                     "- [ ] [Sourdough guide](http://nonexistent.invalid/sourdough) - wild yeast starter\n")
    settings = Settings(queue=queue, index=root / "ix", allow_private=True, fetch_host_delay=0.0)
    ingest(settings)
    return settings


def _hit(response, title):
    return next(h for h in response.hits if h.title == title)


@pytest.mark.slow
def test_a_paper_never_shows_its_stamp_or_references(library, embedder):
    from rq.rank.search import search

    for query in ("switch routing single expert", "expert capacity overflow tokens", "arXiv cs.LG 2022",
                  "outrageously large neural networks GShard", "capacity factor sweep"):
        for hit in search(library, query, embedder=embedder).hits:
            assert "arXiv:" not in hit.passage and "[cs.LG]" not in hit.passage, (query, hit.passage)
            for citation in ("Outrageously", "Shazeer", "GShard", "Lepikhin", "Preprint under review"):
                assert citation not in hit.passage, (query, hit.passage)
    # the references are not indexed either: words found only there find nothing
    found = search(library, "Outrageously GShard Lepikhin", mode="keyword", embedder=embedder)
    assert "Switch routing paper" not in [h.title for h in found.hits]


@pytest.mark.slow
def test_a_page_never_shows_its_navigation_lines_or_reference_list(library, embedder):
    from rq.rank.search import search

    for query in ("share this read more comments", "skip to content", "balancing loss router collapses",
                  "Outrageously large neural networks Switch Transformers"):
        hit = _hit(search(library, query, embedder=embedder), "Balancing experts")
        for furniture in ("Skip to content", "Read more", "Share this", "Comments", "You may also like",
                          "Outrageously", "arXiv preprint", "Fedus"):
            assert furniture not in hit.passage, (query, hit.passage)


@pytest.mark.slow
def test_the_snippet_holds_the_query_words_marked(library, embedder):
    from rq.rank.search import search

    hit = search(library, "fraction of tokens each expert receives", embedder=embedder).hits[0]
    assert hit.title == "Balancing experts" and hit.passage_source == "text"
    assert "fraction of tokens each expert receives" in hit.passage and len(hit.passage) <= MAX_CHARS
    words = {hit.passage[a:b].lower() for a, b in hit.highlights}
    assert {"fraction", "tokens", "expert", "receives"} <= words


@pytest.mark.slow
def test_a_page_with_text_shows_its_text_not_only_its_note(library, embedder):
    from rq.rank.search import search

    # The note says "drip irrigation" three times; the page says "drip line" once.
    response = search(library, "drip irrigation", embedder=embedder)
    hit = _hit(response, "Balcony tomatoes")
    assert hit.has_text and hit.passage_source == "text"
    assert "A drip line on a timer waters the pots" in hit.passage
    assert "irrigation" not in hit.passage
    assert [hit.passage[a:b] for a, b in hit.highlights] == ["drip"]


@pytest.mark.slow
def test_the_terminal_shows_the_marked_snippet_and_labels_a_note(library, embedder, monkeypatch):
    from rich.console import Console

    from rq.cli import hits as find
    from rq.rank.search import search

    out = io.StringIO()
    monkeypatch.setattr(find, "stdout", lambda: Console(file=out, force_terminal=True, color_system="standard",
                                                        width=400, highlight=False, markup=False))
    find.print_hits(search(library, "auxiliary balancing loss", k=1, embedder=embedder))
    find.print_hits(search(library, "wild yeast starter", k=1, embedder=embedder))
    shown = out.getvalue()
    assert "\x1b[1;33mauxiliary\x1b[0m \x1b[1;33mbalancing\x1b[0m \x1b[1;33mloss\x1b[0m" in shown
    assert "    note: \x1b[1;33mwild\x1b[0m \x1b[1;33myeast\x1b[0m \x1b[1;33mstarter\x1b[0m" in shown
