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


def test_scores_say_how_strong_a_match_is_and_weak_ones_are_labelled(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "RQ_INDEX": str(tmp_path / "ix")}

    def rq(*args):
        proc = subprocess.run([sys.executable, "-m", "rq", *args], capture_output=True, text=True, env=env,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    # The sample queue has no feature store: every result is weak, and the list says so first,
    # printing the query as plain text (an escape sequence in it is shown, not acted upon).
    lines = rq("search", "feature store\x1b[2J").splitlines()
    assert lines[0] == "no strong match for 'feature store\\x1b[2J'; the closest:"
    heads = [line for line in lines[1:] if not line.startswith("    ")]
    assert heads and all(line.endswith(" weak") for line in heads)
    assert "\x1b" not in "".join(lines)
    # The right item is a strong match, and no weak-match line comes first.
    text = rq("search", "real-time recsys", "-k", "3").splitlines()
    assert text[0].startswith(" 1. Real Time Recsys") and text[0].endswith(" strong")
    # --json keeps the raw scores beside the estimate.
    answer = json.loads(rq("search", "real-time recsys", "--json"))
    assert answer["strong"] is True
    first, last = answer["results"][0], answer["results"][-1]
    assert first["band"] == "strong" and first["relevance"] >= 50 and last["relevance"] < first["relevance"]
    for hit in answer["results"]:
        assert 0 <= hit["relevance"] <= 100 and hit["band"] in ("strong", "fair", "weak")
        assert -1 <= hit["dense"] <= 1 and hit["keyword"] >= 0 and 0 <= hit["keyword_share"] <= 1
        assert isinstance(hit["fused"], float)
    assert json.loads(rq("search", "feature store", "--json"))["strong"] is False
    # What the numbers mean is in --help, and `rq next` shows a standing, never a raw margin.
    help_text = " ".join(rq("search", "--help").split())
    assert "estimated chance (0-100) that it is relevant" in help_text and "strong 50+" in help_text
    assert "only 3% of them score as high or higher" in " ".join(rq("next", "--help").split())
    suggestions = [line for line in rq("next", "-n", "3").splitlines() if not line.startswith("    ")]
    assert len(suggestions) == 3 and all(" top " in line and line.endswith("%") for line in suggestions)
    assert all(1 <= s["top_percent"] <= 100 for s in json.loads(rq("next", "--json"))["suggestions"])


@pytest.mark.parametrize("changes", [
    {"fusion_norm": "absolute", "hybrid_alpha": 0.5}, {"fusion": "rrf", "hybrid_alpha": 0.5},
    {"fusion_level": "passage"}, {"fusion_depth": 2}, {"doc_weight": 0.3},
    {"rm3_weight": 0.5, "prf_docs": 2}, {"rocchio_weight": 1.0, "prf_docs": 2},
])
def test_every_search_lever_still_finds_the_page_that_answers(library, embedder, changes):
    settings = library.replace(**changes)
    assert titles(search(settings, "warp divergence and shared memory tiling", embedder=embedder))[0] == "CUDA kernels"
    assert titles(search(settings, "xq_read_parquet_v2", embedder=embedder))[0] == "Columnar loading"
    assert titles(search(settings, "looking after a pet kitty", embedder=embedder))[0] == "New arrival checklist"


def test_dense_windows_are_built_searched_and_dropped_with_the_setting(tmp_path, http_server, embedder):
    long = ["Block sizes, registers and occupancy trade against each other on every streaming multiprocessor "
            "of the device, so the tuning starts from a profile rather than from a guess about it."] * 6
    long.insert(3, "Tensor cores multiply half precision tiles of sixteen by sixteen in one instruction.")
    url = http_server.route("/windows/gpu", static(page("GPU notes", " ".join(long), nav="", footer=None)))
    other = http_server.route("/windows/bread", static(page("Bread", "Knead the dough and let it rise twice.",
                                                            nav="", footer=None)))
    queue = tmp_path / "reading.md"
    queue.write_text(f"# Reading\n\n## Notes\n* [ ] [GPU notes]({url})\n* [ ] [Bread]({other})\n")
    settings = Settings(queue=queue, index=tmp_path / "ix", allow_private=True, fetch_host_delay=0.0)
    ingest(settings)
    windowed = settings.replace(dense_window_words=24)
    report = build_index(windowed, embedder=embedder)
    assert report.built and (tmp_path / "ix" / "windows.npz").is_file()
    hits = search(windowed, "matrix multiply instructions on tensor cores", mode="dense", embedder=embedder).hits
    assert hits[0].title == "GPU notes" and "Tensor cores" in hits[0].passage
    whole = settings.replace(dense_window_words=0)
    assert search(whole, "bread dough", embedder=embedder).hits[0].title == "Bread"  # rebuilt without windows
    assert not (tmp_path / "ix" / "windows.npz").exists()


def test_a_truncated_vector_file_is_rebuilt_not_served(library, embedder):
    search(library, "warp divergence", embedder=embedder)  # the index is current before the damage
    vectors = library.index / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:100])
    response = search(library, "warp divergence", embedder=embedder)
    assert titles(response)[0] == "CUDA kernels"
    assert any("index files damaged: vectors.faiss" in n for n in response.notices), response.notices


def _random_text(seed: int, paragraphs: int, words: int) -> list[str]:
    import random

    from support.routes import WORDS

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) + "." for _ in range(paragraphs)]


def test_a_huge_page_is_cut_to_its_first_passages_and_the_cut_is_reported(tmp_path, http_server, embedder):
    # ~3 MB of text: 8,000 passages at the default chunk size, ~12 minutes of torch on two cores.
    paragraphs = _random_text(1, 8000, 60)
    paragraphs[0] = "The opening names zanzibarquux, a word found nowhere else. " + paragraphs[0]
    paragraphs[-1] = "The closing names qworpflange, far past the cut. " + paragraphs[-1]
    body = page("A whole wiki in one page", *paragraphs, nav="", footer=None)
    assert len(body) > 3_000_000
    url = http_server.route("/huge/wiki", static(body))
    queue = tmp_path / "reading.md"
    queue.write_text(f"# Reading\n\n## Dumps\n* [ ] [Wiki dump]({url})\n")
    # Whole passages on the dense side (no windows), so the count below is the passages'.
    settings = Settings(queue=queue, index=tmp_path / "ix", allow_private=True, fetch_host_delay=0.0,
                        max_passages_per_resource=40, dense_window_words=0)
    ingest(settings)

    report = build_index(settings, embedder=embedder)
    assert report.passages == 1 + 40  # the queue's own line, and the page's first 40 passages
    assert report.embedded == 42  # and the profile: the work is bounded by the cap, not the page
    (cut,) = report.cut
    assert cut["title"] == "Wiki dump" and cut["kept"] == 40 and cut["short_id"] in cut["id"]
    assert 7000 < cut["total"] < 9000 and cut["estimated"]  # the whole text was never split
    assert titles(search(settings, "zanzibarquux", mode="keyword", embedder=embedder)) == ["Wiki dump"]
    assert search(settings, "qworpflange", mode="keyword", embedder=embedder).hits == []


def test_a_killed_index_run_resumes_from_the_batches_it_committed(tmp_path, http_server, embedder):
    import signal
    import sqlite3
    import time

    from rq.index.build import COMMIT_EVERY

    lines = ["# Reading", "", "## Pages"]
    for i in range(3):
        url = http_server.route(f"/resume/{i}", static(page(f"Resume page {i}", *_random_text(i, 80, 80),
                                                            nav="", footer=None)))
        lines.append(f"* [ ] [Resume page {i}]({url})")
    queue = tmp_path / "reading.md"
    queue.write_text("\n".join(lines) + "\n")
    # Short passages: a few thousand of them embed in a few seconds a batch.
    settings = Settings(queue=queue, index=tmp_path / "ix", allow_private=True, fetch_host_delay=0.0,
                        chunk_words=24, chunk_overlap_words=4)
    ingest(settings)

    env = {**os.environ, "RQ_CHUNK_WORDS": "24", "RQ_CHUNK_OVERLAP_WORDS": "4"}
    proc = subprocess.Popen([sys.executable, "-m", "rq", "index", "--queue", str(queue), "--index",
                             str(settings.index)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.monotonic() + 300
    try:
        while proc.poll() is None and committed < COMMIT_EVERY and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                with sqlite3.connect(settings.index / "archive.sqlite", timeout=5) as conn:
                    (committed,) = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            except sqlite3.OperationalError:
                pass  # the archive or its embeddings table is not there yet
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]  # killed, not finished

    seen = []
    report = build_index(settings, embedder=embedder, progress=lambda done, total, what: seen.append((done, total)))
    everything = report.embedded + report.cached
    assert report.built and everything > 2 * COMMIT_EVERY
    assert report.cached >= committed >= COMMIT_EVERY  # what the killed run committed is not embedded again
    assert 0 < report.embedded <= everything - COMMIT_EVERY
    # The progress bar runs once over this run's texts, across the committed batches.
    assert seen[-1] == (report.embedded, report.embedded)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert titles(search(settings, "Resume page 2", embedder=embedder))[0] == "Resume page 2"
