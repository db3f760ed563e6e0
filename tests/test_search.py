"""Search end to end with the real model, real FAISS and BM25, over pages served on 127.0.0.1."""

import json
import os
import subprocess
import sys

import pytest

from support.http import static
from support.pdf import make_pdf
from support.routes import page
from rq.errors import IndexMismatchError, UsageError
from rq.index.build import build_index
from rq.ingest.pipeline import ingest
from rq.rank.search import Filters, search
from rq.settings import Settings

pytestmark = pytest.mark.slow

PAGES = {
    "cats": ("Caring for a new kitten",
             ["Kittens need a quiet room, a litter tray and several small meals a day during their first weeks at home.",
              "Take the young cat to a veterinarian for vaccinations, and brush its fur so it gets used to being handled.",
              "Scratching posts save the sofa; felines sharpen their claws as a matter of instinct."]),
    "db": ("Choosing indexes for a relational database",
           ["A B-tree index speeds up range scans, while a hash index only helps equality lookups on a column.",
            "Composite indexes must list the most selective column first to serve the planner well.",
            "Every index slows down inserts, so measure query plans before adding another one."]),
    "gpu": ("Writing fast CUDA kernels",
            ["Coalesced global memory access and shared memory tiling dominate kernel throughput on the device.",
             "Warp divergence wastes lanes; keep branches uniform within a warp of thirty-two threads.",
             "Profile with Nsight to see occupancy and memory bandwidth before tuning block sizes."]),
    "garden": ("Growing tomatoes on a balcony",
               ["Tomato plants want six hours of sun, deep pots and steady watering to avoid blossom end rot.",
                "Pinch out side shoots on cordon varieties and tie the stem to a cane as it grows.",
                "Feed with a potash-rich fertiliser once the first trusses set fruit."]),
    "parquet": ("Loading columnar files with the xq toolkit",
                ["The function xq_read_parquet_v2 loads a columnar file lazily and pushes filters down to row groups.",
                 "Column pruning keeps memory low when only a few fields of a wide table are needed.",
                 "Statistics in the footer let the reader skip row groups whose values cannot match."]),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory, http_server, embedder):
    root = tmp_path_factory.mktemp("search")
    lines = ["# Reading", "", "## Pets"]
    urls = {}
    for key, (title, paragraphs) in PAGES.items():
        body = page(title, *paragraphs, nav="<nav>Home</nav>", footer=None, doctype=False)
        urls[key] = http_server.route(f"/search/{key}", static(body))
    urls["pdf"] = http_server.route("/search/paper.pdf", static(make_pdf(
        [["Sparse mixture of experts routing", "Each token is routed to two experts chosen by a learned gate."]]),
        "application/pdf"))
    lines.append(f"* [x] [New arrival checklist]({urls['cats']})")
    lines += ["", "## Engineering"]
    lines += [f"* [ ] [DB indexes]({urls['db']}) - read before the schema review",
              f"* [ ] [CUDA kernels]({urls['gpu']})",
              f"* [ ] [Columnar loading]({urls['parquet']})",
              f"* [ ] [MoE paper]({urls['pdf']})"]
    lines += ["", "## Home", f"* [ ] [Balcony tomatoes]({urls['garden']})",
              "* [ ] [Unfetchable sourdough starter guide](http://nonexistent.invalid/sourdough) - wild yeast"]
    queue = root / "reading.md"
    queue.write_text("\n".join(lines) + "\n")
    settings = Settings(queue=queue, index=root / "ix", allow_private=True, fetch_host_delay=0.0)
    ingest(settings)
    return settings


def titles(response):
    return [h.title for h in response.hits]


def test_a_paraphrase_finds_its_page_by_meaning(library, embedder):
    # no content word of the query appears in the kitten page
    response = search(library, "looking after a pet kitty", mode="dense", embedder=embedder)
    assert titles(response)[0] == "New arrival checklist"
    assert response.hits[0].passage_source == "text"


def test_a_rare_exact_term_finds_its_page_first(library, embedder):
    for mode in ("keyword", "hybrid"):
        response = search(library, "xq_read_parquet_v2", mode=mode, embedder=embedder)
        assert titles(response)[0] == "Columnar loading", mode
    hit = search(library, "xq_read_parquet_v2", embedder=embedder).hits[0]
    start, end = hit.highlights[0]
    assert hit.passage[start:end] == "xq_read_parquet_v2"


def test_search_reads_the_pages_not_only_titles(library, embedder):
    response = search(library, "warp divergence and shared memory tiling", embedder=embedder)
    assert titles(response)[0] == "CUDA kernels"
    assert "arp divergence" in response.hits[0].passage
    assert response.hits[0].section == "Engineering"


def test_filters_hold(library, embedder):
    unread = search(library, "cat care", filters=Filters(read=False), embedder=embedder)
    assert "New arrival checklist" not in titles(unread) and unread.hits
    read = search(library, "database", filters=Filters(read=True), embedder=embedder)
    assert titles(read) == ["New arrival checklist"]
    home = search(library, "database", filters=Filters(section="home"), embedder=embedder)
    assert set(titles(home)) <= {"Balcony tomatoes", "Unfetchable sourdough starter guide"}
    pdfs = search(library, "routing tokens to experts", filters=Filters(kind="pdf"), embedder=embedder)
    assert titles(pdfs) == ["MoE paper"]
    assert len(search(library, "anything", k=2, embedder=embedder).hits) == 2


def test_an_unfetched_link_is_found_from_its_title_and_note_and_says_so(library, embedder):
    response = search(library, "bread baking with wild yeast", embedder=embedder)
    hit = response.hits[0]
    assert hit.title == "Unfetchable sourdough starter guide"
    assert hit.passage_source == "meta" and hit.fetch == "failed" and hit.reason == "gone_dns"
    assert not hit.has_text
    unfetched = [h for h in response.hits if not h.has_text]
    assert any(n.startswith(f"{len(unfetched)} of {len(response.hits)} results matched only") for n in response.notices)


def test_reindexing_an_unchanged_queue_embeds_nothing(library, embedder):
    report = build_index(library, embedder=embedder, force=True)
    assert report.built and report.embedded == 0 and report.cached >= report.passages
    assert not build_index(library, embedder=embedder).built


def test_empty_query_is_a_usage_error(library, embedder):
    with pytest.raises(UsageError):
        search(library, "  \t", embedder=embedder)


def test_removing_a_resource_from_the_queue_removes_it_from_results(library, embedder, tmp_path):
    queue = library.queue
    original = queue.read_text()
    try:
        queue.write_text("\n".join(l for l in original.splitlines() if "Balcony tomatoes" not in l) + "\n")
        response = search(library, "growing tomatoes in pots", embedder=embedder)
        assert "Balcony tomatoes" not in titles(response)
        assert any("changed" in n for n in response.notices)  # the index was updated first, and said so
    finally:
        queue.write_text(original)


def test_an_index_built_with_another_model_is_refused(library, embedder):
    class OtherModel:
        model_id = "some-other-model@1234"
        dim = embedder.dim
        max_pieces = embedder.max_pieces
        count_pieces = staticmethod(embedder.count_pieces)

        def encode_query(self, text):
            raise AssertionError("must refuse before encoding")

    with pytest.raises(IndexMismatchError, match="rq index --rebuild"):
        search(library, "database", embedder=OtherModel())


def test_embedded_default_puts_real_time_recsys_first(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "RQ_INDEX": str(tmp_path / "ix")}
    proc = subprocess.run([sys.executable, "-m", "rq", "search", "real-time recsys", "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results[0]["title"] == "Real Time Recsys"
    assert "updating the index" in proc.stderr


def test_a_truncated_vector_file_is_rebuilt_not_served(library, embedder):
    search(library, "warp divergence", embedder=embedder)  # the index is current before the damage
    vectors = library.index / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:100])
    response = search(library, "warp divergence", embedder=embedder)
    assert titles(response)[0] == "CUDA kernels"
    assert any("rebuilding" in n for n in response.notices), response.notices
