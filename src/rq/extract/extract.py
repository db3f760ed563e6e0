"""The entry point: ``extract`` turns fetched bytes into main text in this process,
and ``dispatch`` (what it and the worker processes run) sends the bytes to the
extractor for their kind (sniff.py): HTML, PDF or plain text.

Neither raises for a bad document: problems come back in ``Extracted.problem`` with one
human line in ``Extracted.detail`` (document.py). The input bytes are never modified;
decoding happens on a copy. ``rq.extract.worker.extract_isolated`` runs the same code
in a child process with time and memory limits.
"""

from __future__ import annotations

from rq.extract.document import Extracted, problem
from rq.extract.html import extract_html
from rq.extract.pdf import extract_pdf
from rq.extract.sniff import declares_text, parse_content_type, sniff_kind
from rq.extract.text import extract_text
from rq.settings import Settings

# Bumped whenever extraction changes the text it gives for the same bytes, so that `rq ingest`
# extracts archived bodies again (from raw/, without fetching) and the index follows.
# 2: arXiv stamps, running heads, reference lists and navigation lines dropped (rq.extract.clean).
EXTRACTOR_VERSION = 2


def dispatch(body: bytes, content_type: str | None, url: str, pdf_max_pages: int) -> Extracted:
    """The extractor for the bytes' kind, with every failure turned into a problem."""
    kind = sniff_kind(body, content_type, url)
    try:
        if kind == "pdf":
            return extract_pdf(body, pdf_max_pages)
        if kind == "html":
            return extract_html(body, content_type, url)
        if kind == "text":
            return extract_text(body, content_type)
    except MemoryError:
        return problem(kind, "too_much_memory", "ran out of memory while extracting")
    except RecursionError:
        return problem(kind, "crashed", "the document is nested too deeply to extract")
    except Exception as exc:  # a parser bug must not take the whole ingest down
        return problem(kind, "crashed", f"extraction failed: {type(exc).__name__}: {exc}"[:300])
    mime, _ = parse_content_type(content_type)
    if declares_text(content_type):
        return problem("unsupported", "not_text", f"served as {mime}, but the body is binary data, not text")
    return problem("unsupported", "not_text", f"{mime or 'the body'} is not a text, HTML or PDF document")


def extract(body: bytes, content_type: str | None, url: str, settings: Settings) -> Extracted:
    """Main text and metadata of one fetched document, in this process."""
    return dispatch(bytes(body), content_type, url or "", settings.pdf_max_pages)
