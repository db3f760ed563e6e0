"""rq.extract: kinds, charsets, HTML main text, PDFs, and the isolated worker."""

from __future__ import annotations

import codecs
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from rq.extract.document import Extracted
from rq.extract.extract import extract
from rq.extract.sniff import sniff_kind
from rq.extract.worker import ExtractorPool, close, extract_isolated
from rq.settings import Settings
from support.pdf import make_pdf

SETTINGS = Settings()


# ---------------------------------------------------------------------------
# fixture documents, all made here (PDFs by support.pdf)


ARTICLE_PARAGRAPHS = [
    "The harbour town of Wexley voted on Tuesday to rebuild its old stone lighthouse, ending a debate "
    "that had divided residents for almost a decade and filled the letters page of the local paper.",
    "Engineers will replace the cracked lantern room with a copy of the 1882 original, using granite "
    "cut from the same quarry that supplied the first builders more than a century ago.",
    "Supporters argued that the lighthouse draws visitors all year, while opponents worried about the "
    "cost and asked whether a modern beacon on a steel mast would not serve ships just as well.",
    "Work is expected to begin in the spring and to last eighteen months, during which the coastal path "
    "below the tower will stay open to walkers except on days when cranes are in use.",
]

ARTICLE_HTML = f"""<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Wexley votes to rebuild its lighthouse | Coastal Gazette</title>
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2023-04-05T09:30:00Z">
<meta property="og:title" content="Wexley votes to rebuild its lighthouse">
</head><body>
<header><div class="logo">Coastal Gazette</div>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li>
<li><a href="/weather">Weather</a></li><li><a href="/contact">Contact us</a></li></ul></nav></header>
<main><article>
<h1>Wexley votes to rebuild its lighthouse</h1>
<p class="byline">By <span class="author">Jane Doe</span>, <time datetime="2023-04-05">5 April 2023</time></p>
{"".join(f"<p>{p}</p>" for p in ARTICLE_PARAGRAPHS)}
</article></main>
<aside><h3>Most read</h3><ul><li><a href="/a">Ferry timetable changes announced for winter</a></li>
<li><a href="/b">Ten best fish and chip shops on the coast</a></li></ul></aside>
<footer><p>Subscribe to our newsletter for the latest headlines delivered daily.</p>
<p>Copyright 2023 Coastal Gazette Media Group. All rights reserved. Privacy policy. Cookie settings.</p></footer>
<script>var tracking = "should never appear in text";</script>
</body></html>"""

PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)


def many_paragraphs(count: int) -> bytes:
    """A page trafilatura needs a long time (and a lot of memory) for."""
    return ("<html><head><title>Many</title></head><body>"
            + "<p>lorem ipsum dolor sit amet consectetur</p>" * count + "</body></html>").encode()


# ---------------------------------------------------------------------------
# kinds


@pytest.mark.parametrize(
    "body, content_type, url, kind",
    [
        (b"%PDF-1.7\n...", "application/pdf", "https://x.org/a.pdf", "pdf"),
        (b"%PDF-1.4\n...", "text/html; charset=utf-8", "https://x.org/a", "pdf"),
        (b"\n\n%PDF-1.4\n...", None, "https://x.org/a", "pdf"),
        (b"<p>A PDF file starts with %PDF-1.7 and then...</p>", "text/html", "https://x.org/a", "html"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "text/plain", "https://x.org/a.txt", "html"),
        (b"<html><body>hi</body></html>", "application/octet-stream", "https://x.org/a", "html"),
        (b"<p>fragment</p>", "text/html", "https://x.org/a", "html"),
        (b"<div align='center'>logo</div>\n# Title\n", "text/plain", "https://x.org/README.md", "text"),
        (b"# Notes\n\nSome *markdown*.", "text/markdown", "https://x.org/notes.md", "text"),
        (b"plain words", None, "https://x.org/notes", "text"),
        (b"BMW cars are fast", "text/plain", "https://x.org/cars.txt", "text"),
        (PNG_BYTES, "image/png", "https://x.org/a.png", "unsupported"),
        (PNG_BYTES, "text/html", "https://x.org/a", "unsupported"),
        (b"PK\x03\x04\x14\x00\x00\x00", "application/zip", "https://x.org/a.zip", "unsupported"),
        (b"\x00\x01\x02\x03binary\x00\x00", "application/octet-stream", "https://x.org/blob", "unsupported"),
        (b"GIF89a\x01\x00", None, "https://x.org/a", "unsupported"),
        (b"some words", "image/jpeg", "https://x.org/a.jpg", "unsupported"),
        (b'{"a": 1}', "application/json", "https://x.org/a.json", "text"),
    ],
)
def test_sniff_kind(body, content_type, url, kind):
    assert sniff_kind(body, content_type, url) == kind


# ---------------------------------------------------------------------------
# HTML


def test_article_main_text_without_boilerplate_and_metadata():
    result = extract(ARTICLE_HTML.encode("utf-8"), "text/html; charset=utf-8", "https://gazette.example/a", SETTINGS)
    assert isinstance(result, Extracted)
    assert result.kind == "html" and result.problem is None and result.detail == ""
    for paragraph in ARTICLE_PARAGRAPHS:
        assert paragraph in result.text
    for boilerplate in ("Subscribe to our newsletter", "All rights reserved", "Contact us",
                        "Ten best fish", "should never appear"):
        assert boilerplate not in result.text
    assert result.title and "Wexley votes to rebuild its lighthouse" in result.title
    assert result.author == "Jane Doe"
    assert result.date == "2023-04-05"
    assert result.charset == "utf-8"
    assert result.pages is None


def test_title_falls_back_to_title_tag_when_extraction_finds_little():
    body = b"<html><head><title>Just a title &amp; more</title></head><body><p>Hi.</p></body></html>"
    result = extract(body, "text/html", "https://x.example/", SETTINGS)
    assert result.kind == "html"
    assert result.title == "Just a title & more"
    assert "Hi." in result.text


def test_windows_1252_without_header_charset():
    text = "<html><body><p>Le café – naïve façade, déjà vu, “quoted” words.</p></body></html>"
    body = text.encode("cp1252")
    assert b"\x96" in body and b"\xe9" in body
    result = extract(body, "text/html", "https://x.example/fr", SETTINGS)
    assert result.kind == "html" and result.problem is None
    assert "café – naïve façade, déjà vu" in result.text
    assert result.charset == "cp1252"
    # the short form from the brief, with no markup at all
    plain = extract("café – naïve".encode("cp1252"), "text/plain", "https://x.example/t.txt", SETTINGS)
    assert plain.text == "café – naïve"


def test_meta_charset_is_used_when_the_header_has_none():
    text = "<html><head><meta charset='windows-1252'></head><body><p>Größe – Maß</p></body></html>"
    result = extract(text.encode("cp1252"), "text/html", "https://x.example/de", SETTINGS)
    assert "Größe – Maß" in result.text
    assert result.charset == "cp1252"


def test_shift_jis_with_header_charset():
    sentences = ["東京の図書館は今日から新しい本を三百冊貸し出します。", "利用者は駅前の窓口でも予約できるようになりました。"]
    page = "<html><head><title>図書館のお知らせ</title></head><body>" + "".join(
        f"<p>{s}</p>" for s in sentences
    ) + "</body></html>"
    body = page.encode("shift_jis")
    result = extract(body, "text/html; charset=Shift_JIS", "https://x.example/jp", SETTINGS)
    assert result.kind == "html" and result.problem is None
    for sentence in sentences:
        assert sentence in result.text
    assert result.title == "図書館のお知らせ"
    assert result.charset in ("cp932", "shift_jis")


def test_invalid_utf8_gives_readable_text():
    good = "<html><body><p>Un café déjà prêt, naïve idée, à bientôt.</p><p>Second paragraph here.</p></body></html>"
    body = good.encode("utf-8").replace(b"Second", b"Sec\xffond \xc3(")
    original = bytes(body)
    for content_type in ("text/html; charset=utf-8", "text/html", None):
        result = extract(body, content_type, "https://x.example/bad", SETTINGS)
        assert result.kind == "html" and result.problem is None
        assert "Un café déjà prêt, naïve idée, à bientôt." in result.text
        assert "paragraph here" in result.text
    assert body == original  # the caller's bytes are the archive: never touched
    noisy = extract(b"\xfd\xfe\xff plain \x80\x81 text", "text/plain", "https://x.example/t", SETTINGS)
    assert "plain" in noisy.text and noisy.problem is None


def test_bogus_charset_labels_never_crash():
    page = "<html><body><p>Ordinary text with an accent: é.</p></body></html>".encode("utf-8")
    for label in ("base64", "rot13", "no-such-charset", "utf-16", "utf-7", ""):
        result = extract(page, f"text/html; charset={label}", "https://x.example/", SETTINGS)
        assert "Ordinary text with an accent: é." in result.text, label


@pytest.mark.parametrize("body", [b"", b"<html><head><title>Empty</title></head><body></body></html>",
                                  b"<html><body><script>var x = 1;</script><style>p {}</style></body></html>"])
def test_empty_page_is_no_text(body):
    result = extract(body, "text/html", "https://x.example/empty", SETTINGS)
    assert result.kind == "html"
    assert result.text == ""
    assert result.problem == "no_text" and result.detail


def test_plain_text_and_markdown_as_is():
    md = "# Reading notes\n\n- item one\n- item two\n"
    result = extract(md.encode("utf-8"), "text/markdown; charset=utf-8", "https://x.example/n.md", SETTINGS)
    assert result.kind == "text" and result.text == md and result.title == "Reading notes"
    empty = extract(b"  \n", "text/plain", "https://x.example/e.txt", SETTINGS)
    assert empty.kind == "text" and empty.problem == "no_text"


def test_png_is_not_text():
    for content_type in ("image/png", None, "text/html"):
        result = extract(PNG_BYTES, content_type, "https://x.example/i.png", SETTINGS)
        assert result.kind == "unsupported"
        assert result.problem == "not_text" and result.text == "" and result.detail


NOISE = random.Random(12).randbytes(85_000)


@pytest.mark.parametrize("body, content_type", [
    (NOISE, "text/html"),  # noise with NULs, served as a page
    (NOISE, "text/plain; charset=utf-8"),
    (NOISE.replace(b"\x00", b""), "text/html; charset=utf-8"),  # no NULs: the control bytes give it away
    (codecs.BOM_UTF16_LE + NOISE, "text/html"),  # a BOM lets it past the byte sniffing; decoding tells
    (NOISE, "text/html; charset=utf-16"),  # a declared UTF-16 is allowed its NULs; decoding tells
])
def test_binary_served_as_text_is_not_text_and_no_garbage_is_kept(body, content_type):
    result = extract(body, content_type, "https://x.example/page", SETTINGS)
    assert result.problem == "not_text" and result.text == ""
    assert "binary" in result.detail


def test_text_with_a_few_broken_bytes_or_icon_glyphs_is_still_text():
    words = "Vector search shrinks embeddings with product quantisation. " * 40
    broken = ("<html><body><p>" + words + "</p></body></html>").encode() + b"\xff\xfe\x00\x01" * 3
    icons = ("<html><body><p>\uf0c9 Menu \uf002 Search</p><p>" + words + "</p></body></html>").encode()
    for body in (broken, icons):
        result = extract(body, "text/html; charset=utf-8", "https://x.example/page", SETTINGS)
        assert result.problem is None and "product quantisation" in result.text


# ---------------------------------------------------------------------------
# PDF


def test_pdf_text_round_trips_with_metadata():
    pages = [
        ["Sparse retrieval with learned weights", "A second line on the first page (with brackets)."],
        ["The second page talks about dense vectors.", "And it ends here."],
    ]
    body = make_pdf(pages, title="Learned Sparse Retrieval", author="Ada Tester", created="D:20210304120000Z")
    result = extract(body, "application/pdf", "https://x.example/p.pdf", SETTINGS)
    assert result.kind == "pdf" and result.problem is None
    assert result.pages == 2
    for lines in pages:
        for line in lines:
            assert line in result.text
    page_one, page_two = result.text.split("\n\n")
    assert "first page" in page_one and "second page" in page_two
    assert result.title == "Learned Sparse Retrieval"
    assert result.author == "Ada Tester"
    assert result.date == "2021-03-04"
    assert result.charset is None


def test_pdf_title_from_text_when_metadata_has_none():
    body = make_pdf([["", "A Study of Lighthouses", "Body text follows on this line of the page."]])
    result = extract(body, "application/pdf", "https://x.example/p.pdf", SETTINGS)
    assert result.title == "A Study of Lighthouses"


def test_pdf_served_as_html_is_still_a_pdf():
    body = make_pdf([["Served with the wrong content type."]])
    result = extract(body, "text/html; charset=utf-8", "https://x.example/paper", SETTINGS)
    assert result.kind == "pdf"
    assert "Served with the wrong content type." in result.text


def test_pdf_hyphenation_and_wrapped_lines_are_joined():
    lines = [
        "Retrieval systems rank documents by their estimated rele-",
        "vance to a query and return the best few to the reader of",
        "the results page in order.",
        "Short heading",
        "Another paragraph starts here and it is long enough to wrap",
        "onto a second line.",
    ]
    result = extract(make_pdf([lines]), "application/pdf", "https://x.example/h.pdf", SETTINGS)
    assert "estimated relevance to a query" in result.text
    assert "reader of the results page in order." in result.text
    assert "Short heading\nAnother paragraph" in result.text


def test_pdf_over_page_limit_keeps_first_pages():
    pages = [[f"Page number {n} says word{n}."] for n in range(1, 6)]
    result = extract(make_pdf(pages), "application/pdf", "https://x.example/l.pdf", Settings(pdf_max_pages=2))
    assert result.kind == "pdf"
    assert result.problem == "too_many_pages" and "5" in result.detail
    assert result.pages == 2
    assert "word1" in result.text and "word2" in result.text
    assert "word3" not in result.text


@pytest.mark.parametrize("body", [
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog garbage \x00\x01\x02 not a pdf at all",
    b"%PDF-1.7\n" + os.urandom(4000),
])
def test_corrupt_pdf_is_bad_pdf(body):
    result = extract(body, "application/pdf", "https://x.example/c.pdf", SETTINGS)
    assert result.kind == "pdf"
    assert result.problem == "bad_pdf" and result.detail
    assert result.text == ""


def test_served_as_pdf_but_not_a_pdf():
    result = extract(b"just some text pretending", "application/pdf", "https://x.example/c.pdf", SETTINGS)
    assert result.kind == "pdf" and result.problem == "bad_pdf"


# ---------------------------------------------------------------------------
# what is not the document's own text: reference lists, arXiv stamps, running heads, page furniture

STAMP = "arXiv:2101.03961v3 [cs.LG] 16 Jun 2022"
CITATIONS = [
    "[1] Noam Shazeer, Azalia Mirhoseini, and Krzysztof Maziarz. Outrageously large neural networks.",
    "arXiv preprint arXiv:1701.06538, 2017.",
    "[2] Dmitry Lepikhin, HyoukJoong Lee, and Yuanzhong Xu. GShard: scaling giant models with",
    "conditional computation. In International Conference on Learning Representations, 2021.",
    "[3] William Fedus, Barret Zoph, and Noam Shazeer. Switch transformers. CoRR, abs/2101.03961, 2021.",
]


def paper_pdf() -> bytes:
    """Three pages as a preprint prints them: a stamp up the margin, a running head and a page
    number on every page, the references on page two, an appendix after them."""
    head = "Preprint under review at a workshop"
    return make_pdf([
        [head, "Routing tokens to experts", "Each token is routed to the two experts with the highest gate value.",
         "A balancing loss keeps every expert busy during training.", "1"],
        [head, "Capacity limits how many tokens one expert may take in a batch.", "References", *CITATIONS, "2"],
        [head, "A Appendix: expert capacity", "We sweep the capacity factor from one to two on every layer.", "3"],
    ], margin=STAMP)


def test_pdf_loses_its_arxiv_stamp_running_head_page_numbers_and_references():
    result = extract(paper_pdf(), "application/pdf", "https://x.example/moe.pdf", SETTINGS)
    assert result.problem is None
    text = result.text
    assert "arXiv:2101" not in text and "[cs.LG]" not in text
    assert "Preprint under review" not in text
    assert not any(line.strip().isdigit() for line in text.split("\n"))
    for gone in ("References", "Outrageously", "GShard", "Fedus", "CoRR"):
        assert gone not in text
    for kept in ("highest gate value", "balancing loss", "Capacity limits how many tokens",
                 "A Appendix: expert capacity", "capacity factor from one to two"):
        assert kept in text
    assert result.title == "Routing tokens to experts" or result.title is None or "arXiv" not in result.title


def test_pdf_stamp_is_never_the_title():
    body = make_pdf([["Sparse Experts at Scale", "The body of the paper starts on this line."]], margin=STAMP)
    assert "arXiv" not in extract(body, "application/pdf", "https://x.example/s.pdf", SETTINGS).title


REFERENCES_HTML = """<html><head><title>Notes on sparse experts</title></head><body>
<nav><a href="/">Home</a> <a href="/blog">Blog</a></nav><article><h1>Notes on sparse experts</h1>
<p>Skip to content</p>
<p>A mixture of experts layer sends each token to a few expert networks picked by a learned gate, so the
compute per token stays flat while the number of parameters grows with every expert added to the layer.</p>
<p>Read more: Ten things nobody tells you about transformers</p>
<p>Without a balancing loss the gate collapses onto one favourite expert and the others sit idle, which
wastes memory and slows training down; the auxiliary loss spreads tokens evenly across the experts.</p>
<p>Share this:</p><p>3 Comments</p>
<h2>References</h2><ol>
<li>Shazeer, N., Mirhoseini, A., et al. (2017). Outrageously large neural networks. In ICLR.</li>
<li>Fedus, W., Zoph, B., and Shazeer, N. (2021). Switch Transformers. arXiv preprint arXiv:2101.03961.</li>
<li>Lepikhin, D. et al. (2021). GShard: scaling giant models. In Proceedings of ICLR.</li></ol>
<p>You may also like...</p>
</article></body></html>"""


def test_html_loses_its_reference_list_and_furniture_lines_but_not_its_prose():
    result = extract(REFERENCES_HTML.encode(), "text/html", "https://x.example/moe", SETTINGS)
    for gone in ("Skip to content", "Read more", "Share this", "Comments", "References", "Outrageously",
                 "Fedus", "GShard", "You may also like"):
        assert gone not in result.text
    assert "learned gate" in result.text and "spreads tokens evenly" in result.text


def test_a_list_of_papers_without_a_references_heading_is_kept_and_prose_like_furniture_too():
    papers = "".join(f"<li>{c}</li>" for c in CITATIONS)
    body = (f"<html><body><article><h1>Papers I want to read</h1><p>Tags are how I sort this list of papers "
            f"about routing, and more are added every week as I find them.</p><ul>{papers}</ul>"
            "</article></body></html>").encode()
    text = extract(body, "text/html", "https://x.example/list", SETTINGS).text
    assert "Outrageously large neural networks" in text and "GShard" in text
    assert "Tags are how I sort" in text


def test_a_page_that_is_only_a_bibliography_keeps_its_text():
    body = ("<html><body><article><h1>Bibliography</h1><ul>" + "".join(f"<li>{c}</li>" for c in CITATIONS)
            + "</ul></article></body></html>").encode()
    result = extract(body, "text/html", "https://x.example/bib", SETTINGS)
    assert result.problem is None and "Outrageously" in result.text


def test_markdown_references_section_is_dropped():
    body = ("# Routing notes\n\n" + "Tokens go to the experts with the highest gate values. " * 8
            + "\n\n## References\n\n" + "\n".join(f"- {c}" for c in CITATIONS) + "\n").encode()
    text = extract(body, "text/markdown", "https://x.example/n.md", SETTINGS).text
    assert "highest gate values" in text and "Outrageously" not in text and "References" not in text


# ---------------------------------------------------------------------------
# cost of importing


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, rq.extract.extract, rq.extract.worker, rq.extract.child; "
        "heavy = [m for m in ('trafilatura', 'pypdfium2', 'lxml', 'charset_normalizer') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------------------
# isolation


@pytest.fixture(scope="module")
def pool():
    with ExtractorPool(size=1) as p:
        yield p


def _article(pool_, settings=SETTINGS) -> Extracted:
    return pool_.extract(ARTICLE_HTML.encode(), "text/html", "https://gazette.example/a", settings)


def test_isolated_matches_in_process(pool):
    isolated = _article(pool)
    assert isolated == extract(ARTICLE_HTML.encode(), "text/html", "https://gazette.example/a", SETTINGS)
    pdf = make_pdf([["Isolated PDF text."]])
    assert "Isolated PDF text." in pool.extract(pdf, "application/pdf", "", SETTINGS).text
    assert len(pool.pids()) == 1


def test_worker_is_reused(pool):
    _article(pool)
    pids = pool.pids()
    starts = pool.starts
    for _ in range(5):
        assert _article(pool).problem is None
    assert pool.pids() == pids and pool.starts == starts


def test_deeply_nested_divs_finish(pool):
    body = ("<html><head><title>Deep</title></head><body>" + "<div>" * 100_000 + "<p>deep text</p>"
            + "</div>" * 100_000 + "</body></html>").encode()
    started = time.monotonic()
    result = pool.extract(body, "text/html", "https://x.example/deep", SETTINGS)
    assert isinstance(result, Extracted) and result.kind == "html"
    assert result.problem in (None, "no_text", "crashed", "too_much_memory", "timeout")
    assert time.monotonic() - started < SETTINGS.extract_timeout


def test_fifty_megabyte_single_line_page_finishes(pool):
    body = ("<html><head><title>Huge</title></head><body><p>"
            + "lorem ipsum dolor sit amet " * 1_900_000 + "</p></body></html>").encode()
    assert len(body) > 50_000_000
    started = time.monotonic()
    result = pool.extract(body, "text/html", "https://x.example/huge", SETTINGS)
    assert isinstance(result, Extracted) and result.kind == "html"
    assert time.monotonic() - started < SETTINGS.extract_timeout
    assert result.problem in (None, "no_text", "crashed", "too_much_memory", "timeout")
    assert _article(pool).problem is None


def test_timeout_kills_worker_and_pool_recovers(pool):
    _article(pool)
    old_pids = pool.pids()
    started = time.monotonic()
    result = pool.extract(many_paragraphs(100_000), "text/html", "https://x.example/slow",
                          Settings(extract_timeout=0.3))
    assert time.monotonic() - started < 5
    assert result.kind == "html" and result.problem == "timeout" and result.text == ""
    assert "0.3" in result.detail
    assert pool.pids() == []  # killed
    after = _article(pool)
    assert after.problem is None and ARTICLE_PARAGRAPHS[0] in after.text
    assert pool.pids() and pool.pids() != old_pids


def test_memory_limit(pool):
    result = pool.extract(many_paragraphs(300_000), "text/html", "https://x.example/fat",
                          Settings(extract_memory_mb=300, extract_timeout=60))
    assert result.problem in ("too_much_memory", "crashed")
    assert result.text == "" and result.detail
    assert _article(pool).problem is None  # a fresh worker with the default limit


def test_killed_worker_is_crashed_and_pool_recovers(pool):
    _article(pool)
    (pid,) = pool.pids()
    results = []
    thread = threading.Thread(target=lambda: results.append(pool.extract(
        many_paragraphs(100_000), "text/html", "https://x.example/victim", Settings(extract_timeout=30))))
    thread.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert results and results[0].problem == "crashed"
    assert "SIGKILL" in results[0].detail
    assert _article(pool).problem is None


def test_pool_threads_share_workers():
    with ExtractorPool(size=2) as two:
        results = []
        threads = [threading.Thread(target=lambda: results.append(_article(two))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 4 and all(r.problem is None for r in results)
        assert 1 <= len(two.pids()) <= 2
    assert two.pids() == []


def test_module_level_extract_isolated_and_close():
    try:
        result = extract_isolated(ARTICLE_HTML.encode(), "text/html", "https://gazette.example/a", SETTINGS)
        assert result.problem is None and ARTICLE_PARAGRAPHS[1] in result.text
        png = extract_isolated(PNG_BYTES, "image/png", "https://x.example/i.png", SETTINGS)
        assert png.problem == "not_text"
    finally:
        close()
