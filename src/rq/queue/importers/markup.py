"""Bookmark exports written as markup: Netscape bookmark HTML (Chrome, Firefox, Safari, Edge)
and OPML outlines. Read with the stdlib's html.parser and defusedxml (no entity bombs, no
external entities), never with regular expressions."""

from __future__ import annotations

from html.parser import HTMLParser

from rq.queue.importers.model import Entry, ImportError_, from_epoch


class _Netscape(HTMLParser):
    """<DT><H3>Folder</H3><DL><p> ... <DT><A HREF=... ADD_DATE=... TAGS=...>Title</A> <DD>note ... </DL>"""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[Entry] = []
        self.folders: list[str | None] = []  # one per open <DL>: the folder it lists, None for the root
        self.pending: str | None = None  # an <H3> seen, its <DL> not yet open
        self.text: list[str] | None = None  # text being gathered for an <H3>, an <A> or a <DD>
        self.gathering = ""  # "h3", "a" or "dd"
        self.link: dict | None = None
        self.last: Entry | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = {k.lower(): v or "" for k, v in attrs}
        if tag == "dl":
            self.folders.append(self.pending)
            self.pending = None
        elif tag == "h3":
            self._gather("h3")
        elif tag == "a":
            self.link = attrs
            self._gather("a")
        elif tag == "dd":
            self._gather("dd")
        elif tag in ("dt", "p") and self.gathering == "dd":
            self._finish()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h3", "a") and self.gathering == tag:
            self._finish()
        elif tag == "dl":
            if self.gathering == "dd":
                self._finish()
            if self.folders:
                self.folders.pop()

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def _gather(self, what: str) -> None:
        if self.gathering:
            self._finish()
        self.gathering, self.text = what, []

    def _finish(self) -> None:
        text = " ".join("".join(self.text or []).split())
        what, self.gathering, self.text = self.gathering, "", None
        if what == "h3":
            self.pending = text or "(untitled folder)"
        elif what == "a" and self.link is not None:
            tags = [t.strip() for t in self.link.get("tags", "").split(",") if t.strip()]
            folder = tuple(f for f in self.folders if f)
            self.last = Entry(self.link.get("href", ""), text, folder, tags=tags,
                              added=from_epoch(self.link.get("add_date")))
            self.entries.append(self.last)
            self.link = None
        elif what == "dd" and self.last is not None and text:
            self.last.note = text


def read_netscape(text: str) -> list[Entry]:
    parser = _Netscape()
    parser.feed(text)
    parser.close()
    if parser.gathering:
        parser._finish()
    return parser.entries


def read_opml(raw: bytes) -> list[Entry]:
    """<outline text="Folder"><outline text="Title" url="..."/> (or a feed's htmlUrl / xmlUrl)."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(raw)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise ImportError_(f"not a readable OPML file ({exc})") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ImportError_("not an OPML file (no <opml><body>)")
    entries: list[Entry] = []

    def walk(node, folder: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            name = " ".join((outline.get("title") or outline.get("text") or "").split())
            url = outline.get("htmlUrl") or outline.get("url") or outline.get("xmlUrl")
            if url:
                tags = [t.strip() for t in (outline.get("category") or "").split(",") if t.strip()]
                entries.append(Entry(url, name, folder, note=outline.get("description") or "", tags=tags,
                                     added=None))
            if len(outline):
                walk(outline, folder + ((name or "(untitled outline)"),) if not url else folder)

    walk(body, ())
    return entries
