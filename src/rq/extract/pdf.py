"""PDF documents: ``extract_pdf`` reads the text layer with pypdfium2, undoes
hyphenation, joins wrapped lines into paragraphs, drops arXiv's margin stamp, running
heads, page numbers and the reference list (rq.extract.clean), and finds a title
(metadata, the largest font on page one, or the first line) and an author and date.

pypdfium2 is imported inside the functions that use it; pdfium is not thread-safe, so
one lock covers every document.
"""

from __future__ import annotations

import re
import threading

from rq.extract.clean import drop_reference_lists, drop_running_lines, drop_stamps
from rq.extract.document import Extracted, problem
from rq.extract.text import SPACES, squeeze

_PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe
# pdfium marks a word it hyphenated at a line end with U+FFFE (older builds: U+0002)
_PDF_MARKS = re.compile(r"[\ufffe\x02\u00ad]")
_PDF_SOFT_BREAK = re.compile(r"([^\s\ufffe\x02\u00ad]*)[\ufffe\x02\u00ad]\s*")
_PDF_LINE_HYPHEN = re.compile(r"(?:^|[^\w-])[a-z]{2,}-$")
_PDF_CONTROL_KEEP_MARKS = re.compile(r"[\x00\x01\x03-\x08\x0b\x0c\x0e-\x1f\x7f\uffff]")
_PDF_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\u00ad]")
_SENTENCE_END = tuple(".!?:;\"')]”’")
_BULLETS = tuple("•◦▪▫‣∙·●○■□➢►–")


def _join_soft_break(match: re.Match) -> str:
    word = match.group(1)
    return word + "-" if "-" in word else word  # "state-of-the|art" keeps its hyphen, "represen|tation" does not


def _clean_pdf_page(raw: str) -> str:
    """One page's text with hyphenation undone and wrapped lines joined into paragraphs."""
    text = _PDF_CONTROL_KEEP_MARKS.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    # a line may hold several printed lines glued at soft hyphens; what matters for
    # paragraph ends is the printed width, so measure the pieces
    lines = []
    for line in text.split("\n"):
        line = squeeze(line)
        last = _PDF_MARKS.split(line)[-1].strip()
        lines.append((line, len(last)))
    lengths = sorted(n for line, _ in lines for piece in _PDF_MARKS.split(line) for n in [len(piece.strip())] if n)
    if not lengths:
        return ""
    width = lengths[int(len(lengths) * 0.8)] if len(lengths) > 4 else lengths[-1]
    paragraphs: list[str] = []
    current = ""
    for line, last_width in lines:
        if not line:
            if current:
                paragraphs.append(current)
                current = ""
            continue
        if current and line.startswith(_BULLETS):
            paragraphs.append(current)
            current = ""
        if not current:
            current = line
        elif _PDF_LINE_HYPHEN.search(current) and line[:1].islower():
            current = current[:-1] + line  # "exam-" + "ple" (pdfium did not mark it)
        else:
            current = current + " " + line
        if last_width < 0.5 * width or (last_width < 0.8 * width and line.endswith(_SENTENCE_END)):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    cleaned = []
    for paragraph in paragraphs:
        paragraph = _PDF_SOFT_BREAK.sub(_join_soft_break, paragraph)
        paragraph = SPACES.sub(" ", _PDF_CONTROL.sub("", paragraph)).strip()
        if paragraph:
            cleaned.append(paragraph)
    return "\n".join(cleaned)


def _pdf_date(value: str | None) -> str | None:
    match = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?", (value or "").strip())
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    if not (1900 <= int(year) <= 2200):
        return None
    if month and 1 <= int(month) <= 12:
        if day and 1 <= int(day) <= 31:
            return f"{year}-{month}-{day}"
        return f"{year}-{month}"
    return year


def _pdf_meta_text(value) -> str | None:
    if not value:
        return None
    value = SPACES.sub(" ", _PDF_CONTROL.sub("", str(value))).strip()
    if not value or value.lower() in ("untitled", "unknown", "title", "author", "anonymous"):
        return None
    if re.search(r"\.(?:dvi|pdf|docx?|tex|indd|ps)$", value, re.I) or value.lower().startswith("microsoft word"):
        return None
    return value[:500]


def _largest_font_title(textpage) -> str | None:
    """The words set in the largest upright font on a page (a paper's title), if any.

    A word belongs to the title when its first letter is in that size, which keeps
    small-caps titles whole and stops at the author line.
    """
    import math

    import pypdfium2.raw as pdfium_c

    handle = textpage.raw
    count = min(pdfium_c.FPDFText_CountChars(handle), 20000)
    chars: list[tuple[str, float]] = []
    for index in range(count):
        code = pdfium_c.FPDFText_GetUnicode(handle, index)
        try:
            char = chr(code)
        except (ValueError, OverflowError):
            continue
        angle = pdfium_c.FPDFText_GetCharAngle(handle, index)
        if angle > 0.05 and abs(angle - 2 * math.pi) > 0.05:
            continue  # rotated text: margin stamps such as arXiv's
        size = pdfium_c.FPDFText_GetFontSize(handle, index) if not char.isspace() else 0.0
        chars.append((char, size))
    letter_sizes = [round(size, 1) for char, size in chars if char.isalnum() and size > 0]
    if not letter_sizes:
        return None
    top = max(letter_sizes)
    body = max(set(letter_sizes), key=letter_sizes.count)
    if top < body + 1.0:
        return None  # no display font on this page

    words: list[list[tuple[str, float]]] = [[]]
    for char, size in chars:
        if char.isspace() or char in "\ufffe\x02":
            if words[-1]:
                words.append([])
        else:
            words[-1].append((char, size))

    def lead_size(word):
        return next((size for char, size in word if char.isalnum()), None)

    title: list[str] = []
    for word in words:
        if not word:
            continue
        size = lead_size(word)
        if size is not None and abs(size - top) <= 0.5:
            title.append("".join(char for char, _ in word))
        elif size is None and title:
            title.append("".join(char for char, _ in word))
        elif title:
            break
    text = " ".join(title).strip()
    letters = sum(char.isalpha() for char in text)
    if letters < 4 or len(text) > 300:
        return None
    return text


def _first_line_title(text: str) -> str | None:
    for line in text.replace("\r", "\n").split("\n"):
        line = SPACES.sub(" ", _PDF_CONTROL.sub("", line)).strip()
        if len(line) >= 3:
            if len(line) > 200:
                cut = line.rfind(" ", 0, 200)
                line = line[: cut if cut > 50 else 200]
            return line
    return None


def extract_pdf(body: bytes, max_pages: int) -> Extracted:
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(body)
        except pdfium.PdfiumError as exc:
            reason = str(exc)
            if "password" in reason.lower():
                return problem("pdf", "bad_pdf", "the PDF is encrypted with a password")
            return problem("pdf", "bad_pdf", f"cannot open the PDF ({reason.rstrip('.')})")
        try:
            total = len(pdf)
            wanted = total if not max_pages or max_pages <= 0 else min(total, max_pages)  # <= 0: no limit
            raws: list[str] = []
            font_title = None
            for index in range(wanted):
                try:
                    page = pdf[index]
                except pdfium.PdfiumError:
                    raws.append("")
                    continue
                try:
                    textpage = page.get_textpage()
                    try:
                        raws.append(drop_stamps(textpage.get_text_range().replace("\r\n", "\n")))
                        if index == 0:
                            try:
                                font_title = _largest_font_title(textpage)
                            except Exception:  # a heuristic only
                                font_title = None
                    finally:
                        textpage.close()
                finally:
                    page.close()
            try:
                meta = pdf.get_metadata_dict()
            except Exception:
                meta = {}
        finally:
            pdf.close()
    # The stamp (above), running heads, page numbers and the reference list go before the text
    # is stored, so they are neither indexed nor shown (rq.extract.clean says why).
    raws = drop_running_lines(raws)
    text = drop_reference_lists("\n\n".join(t for t in map(_clean_pdf_page, raws) if t))
    first_line = _first_line_title(raws[0]) if raws else None
    title = _pdf_meta_text(meta.get("Title")) or font_title or first_line
    author = _pdf_meta_text(meta.get("Author"))
    date = _pdf_date(meta.get("CreationDate")) or _pdf_date(meta.get("ModDate"))
    fields = dict(title=title, author=author, date=date, pages=wanted)
    if total == 0:
        return problem("pdf", "bad_pdf", "the PDF has no pages", **fields)
    if not text:
        return problem("pdf", "no_text", f"no text layer in {wanted} page(s) (a scan?)", **fields)
    if total > wanted:
        return Extracted("pdf", text, title, author, date, wanted, None, "too_many_pages",
                         f"the PDF has {total} pages; read the first {wanted} (pdf_max_pages)")
    return Extracted("pdf", text, title, author, date, wanted, None, None, "")
