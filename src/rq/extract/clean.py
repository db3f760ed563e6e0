"""What a page's text loses before it is stored: a paper's reference list, arXiv's margin
stamp, and the navigation lines an article extractor leaves behind.

They are dropped here, at extraction, rather than when a passage is shown: text that is
not the page's own prose should not be indexed either. A reference list repeats the
titles of every paper it cites, so a search for "BERT" would otherwise match each paper
that cites BERT as well as BERT, and the passage shown for it would be a run of author
names; a margin stamp ("arXiv:1810.04805v2 [cs.CL] 24 May 2019") or a "Share this:" line
carries no meaning and lands in the middle of a sentence. What is dropped is named
precisely (a heading such as "References" followed by entries that read as citations, a
stamp of arXiv's exact form, a short line of a known navigation phrase), so prose that
merely cites a paper, or a reading list of papers with no such heading, stays whole.

Text extracted before this existed keeps what it had until its page is fetched again;
the snippet picker (rq.rank.snippets) passes over citation-like sentences and stamps too.
"""

from __future__ import annotations

import re
from collections import Counter

# arXiv's stamp, printed sideways in the margin of page one: "arXiv:1810.04805v2 [cs.CL] 24 May 2019",
# or for old identifiers "arXiv:cs/0112017v1 [cs.LG] 7 Dec 2001".
ARXIV_STAMP = re.compile(
    r"arXiv:(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\s*\[[A-Za-z\-]+(?:\.[A-Za-z\-]+)?\]"
    r"\s*\d{1,2}\s*[A-Z][a-z]{2}\s*\d{4}")
_STAMP_LINE = re.compile(r"^\s*" + ARXIV_STAMP.pattern + r"\s*$")
_PAGE_NUMBER = re.compile(r"^\s*\d{1,4}\s*$")

_REFERENCE_HEADINGS = ("references", "bibliography", "works cited", "literature cited", "reference list",
                       "references and notes", "notes and references", "cited literature", "literature")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s*)?(?:(?:\d+(?:\.\d+)*|[IVXLC]+)\.?\s+)?(" + "|".join(_REFERENCE_HEADINGS)
                      + r")\s*:?\s*$", re.IGNORECASE)
# A heading glued to the end of the paragraph before it, as a two-column PDF's text often has it
# ("... captured by BERT. References"): written with a capital, after a sentence's end.
_GLUED_HEADING = re.compile(r"(?<=[.!?)])\s+(References|REFERENCES|Bibliography|BIBLIOGRAPHY)\s*$")

_LIST_MARK = re.compile(r"^\s*(?:[-*•·▪◦–]\s+|\^\s*(?:[a-z]\s+)*)")  # "- ", or Wikipedia's "^ a b "
_YEAR = re.compile(r"(?<![\d.])(?:1[89]\d\d|20\d\d)[a-z]?(?![\d])")
_VENUE = re.compile(
    r"\b(?:arXiv|CoRR|abs/\d|doi|DOI|ISBN|ISSN|preprint|Proceedings|Proc\.|Journal|J\.|Trans\.|Transactions|"
    r"Conference|Conf\.|Workshop|Symposium|Advances in|Press|Publishers|Springer|Elsevier|Wiley|IEEE|ACM|"
    r"In [A-Z]{2,}|pp\.|pages \d|vol\.|Vol\.|volume \d|no\. \d|Retrieved|Accessed|https?://|Ph\.D\.|Thesis)")
_NUMBERED = re.compile(r"^\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\d{1,4}\.)\s+\S")
# A citation opens with its authors: "Vaswani, A.", "Ashish Vaswani, Noam Shazeer", "Bai, B.;", "Ba and ...".
_NAME = r"[A-Z][\w'´`¨’\-]*\.?"
_AUTHORS_FIRST = re.compile(r"^(?:(?:" + _NAME + r"\s+){1,3}" + _NAME + r"\s*(?:,|;|\.\s|\s(?:and|&)\s|\s+et al\.)"
                            r"|" + _NAME + r",\s+[A-Z]\.)")
_NAMES_ONLY = re.compile(r"^(?:(?:" + _NAME + r"\s*){1,4}(?:,|;|\sand\s|$)\s*){3,}$")


def is_citation(line: str) -> bool:
    """Whether a line of text reads as an entry of a reference list (or one's continuation)."""
    line = _LIST_MARK.sub("", line, count=1).strip()
    if not line:
        return False
    year, venue = _YEAR.search(line) is not None, _VENUE.search(line) is not None
    if line.startswith("["):
        return _NUMBERED.match(line) is not None  # "[12] ...": a numbered list of citations
    if _NUMBERED.match(line):
        return year or venue
    if (year or venue) and _AUTHORS_FIRST.match(line):
        return True
    if year and venue and len(line) < 400:
        return True
    return _NAMES_ONLY.match(line) is not None  # "Mart´ın Abadi, Paul Barham, Jianmin Chen, ..."


def _filler(line: str) -> bool:
    return not line.strip() or _PAGE_NUMBER.match(line) is not None


def drop_reference_lists(text: str) -> str:
    """``text`` without the reference lists that follow a "References" (or like) heading.

    A list ends at the first line that is neither a citation nor a page number, so an
    appendix after the references is kept. A heading followed by fewer than two citations
    is left alone, and so is a page that is nothing but references (a bibliography someone
    saved to read): it keeps its text."""
    lines = text.split("\n")
    keep = [True] * len(lines)
    found = False
    i = 0
    while i < len(lines):
        glued = None if _HEADING.match(lines[i]) else _GLUED_HEADING.search(lines[i])
        if not (_HEADING.match(lines[i]) or glued):
            i += 1
            continue
        end, citations = i + 1, 0
        while end < len(lines) and (_filler(lines[end]) or is_citation(lines[end])):
            citations += not _filler(lines[end])
            end += 1
        if citations < 2:
            i += 1
            continue
        found = True
        if glued:
            lines[i] = lines[i][:glued.start()]
        else:
            keep[i] = False
        for j in range(i + 1, end):
            keep[j] = False
        i = end
    if not found:
        return text
    kept = "\n".join(line for line, k in zip(lines, keep) if k)
    return kept if len(kept.split()) >= 50 else text


def drop_stamps(page_text: str) -> str:
    """A PDF page's raw text without the lines that are arXiv margin stamps (pdfium gives the
    sideways stamp a line of its own, wherever it falls in the page's text)."""
    if "arXiv:" not in page_text:
        return page_text
    return "\n".join(line for line in page_text.split("\n") if not _STAMP_LINE.match(line))


def drop_running_lines(pages: list[str]) -> list[str]:
    """PDF pages (their text as pdfium gives it, a printed line per line) without running heads
    and feet ("Published as a conference paper at ICLR 2019": a line at the top or bottom of
    three pages or more) and the bare page numbers there. Left in, they split sentences and
    reference lists wherever a page breaks."""
    edges: Counter[str] = Counter()
    for page in pages:
        lines = [line.strip() for line in page.split("\n") if line.strip()]
        edges.update(set(lines[:2] + lines[-2:]))
    running = {line for line, n in edges.items() if n >= 3 and len(line) <= 150}
    out = []
    for page in pages:
        lines = [line for line in page.split("\n") if line.strip() not in running]
        while lines and (_PAGE_NUMBER.match(lines[-1]) or not lines[-1].strip()):
            lines.pop()
        while lines and (_PAGE_NUMBER.match(lines[0]) or not lines[0].strip()):
            lines.pop(0)
        out.append("\n".join(lines))
    return out


# Lines that article extraction keeps from a page's furniture: sharing buttons, "read more"
# links to other articles, comment counters, newsletter boxes. Matched whole, on short lines only.
_ALONE = (r"(?:\d+\s+)?comments?|leave a (?:comment|reply)|share(?: this(?: article| post| story| page)?)?|tweet|"
          r"pin it|print(?: this(?: article| page)?)?|e-?mail(?: this(?: article| page)?)?|"
          r"you (?:may|might) also (?:like|enjoy)|see also|more|skip to (?:the )?(?:main )?content|back to top|"
          r"advertisement|sponsored(?: content)?|table of contents|subscribe(?: now)?|sign up(?: now)?|"
          r"follow (?:us|me)(?: on [\w, ]{1,60})?|click here(?: for more(?: information)?)?")
# These introduce a link, a date or a list of labels: "Read more: <another article's title>".
_WITH_TAIL = (r"read (?:more|next|also)|(?:related|recommended|popular|latest|more) (?:posts?|articles?|stories|"
              r"content|reading|news)|filed under|tags?|categories|category|"
              r"(?:previous|next|older|newer) (?:post|article|story|entry)")
_NAV_LINE = re.compile(r"^(?:(?:" + _ALONE + r"|" + _WITH_TAIL + r")[\s:.…!>|»›]*|(?:" + _WITH_TAIL
                       + r")\s*[:|»›>]\s*.{0,100}|posted (?:in|by|on)\s.{1,60})$", re.IGNORECASE)
_SOCIAL_LINE = re.compile(r"^follow\b.{0,100}\bon (?:facebook|twitter|x|instagram|linkedin|mastodon)\b",
                          re.IGNORECASE)
_NEWSLETTER_LINE = re.compile(r"^(?:(?:get|receive) (?:the latest|our (?:daily |weekly )?newsletters?)\b|"
                              r"(?:subscribe to|sign up for) .{0,60}\bnewsletters?\b)", re.IGNORECASE)


def is_navigation(line: str) -> bool:
    """Whether a line of extracted HTML text is page furniture rather than the article."""
    line = line.strip()
    if len(line) > 140:
        return False
    return bool(_NAV_LINE.match(line) or _SOCIAL_LINE.match(line) or _NEWSLETTER_LINE.match(line))


def drop_navigation(text: str) -> str:
    lines = text.split("\n")
    kept = [line for line in lines if not is_navigation(line)]
    return "\n".join(kept) if len(kept) < len(lines) and any(line.strip() for line in kept) else text
