"""The web app's pages: server-rendered HTML that works with JavaScript off.

Templates are Jinja2 with autoescape on: every title, note, snippet and archived text from
the queue or a fetched page reaches the browser as escaped text, never as HTML. A search is a
GET form (``/?q=...``); "mark read" is a POST form carrying the CSRF token. static/app.js,
when it runs, asks for the same pages with ``X-Rq-Partial: 1`` and swaps in only the part that
changed (the results, the next list).
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rq.errors import RqError
from rq.serve.security import CSRF_FIELD, form_csrf_ok

FULL_TEXT_CHARS = 2_000_000  # a resource page shows the archived text whole, up to this
MAP_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
Short = Annotated[str | None, Query(max_length=1000)]


def templates():
    import jinja2

    # autoescape=True for every template, whatever its name: nothing from outside is HTML here.
    env = jinja2.Environment(loader=jinja2.PackageLoader("rq.serve", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["pieces"] = marked_pieces
    env.filters["when"] = _when
    env.filters["section"] = lambda path: " / ".join(path) if path else "(none)"
    env.filters["web"] = web_link
    env.globals["zip"] = zip
    return env


def web_link(url: str) -> str:
    """Only http(s) links become clickable: a queue line could hold a javascript: URL."""
    return url if urllib.parse.urlsplit(url or "").scheme in ("http", "https") else "#"


def marked_pieces(text: str, spans) -> list[tuple[str, bool]]:
    """The snippet cut into (text, is a query word) pieces, for <mark> in the template."""
    pieces, at = [], 0
    for start, end in spans or []:
        pieces += [(text[at:start], False), (text[start:end], True)]
        at = end
    return pieces + [(text[at:], False)]


def _when(ts) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "never"


def page_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def search_page(request: Request, q: Short = None, section: Annotated[str | None, Query(max_length=300)] = None,
                    state: Literal["", "read", "unread"] = "", type: Literal["", "html", "pdf"] = "",
                    mode: Literal["hybrid", "dense", "keyword"] = "hybrid",
                    n: Annotated[int, Query(ge=1, le=100)] = 10):
        engine = request.app.state.engine
        answer, error = None, None
        if q and q.strip():
            try:
                answer = engine.search(q, n, mode, section or None, None if not state else state == "read",
                                       type or None)
            except RqError as exc:
                error = str(exc)
        form = {"q": q or "", "section": section or "", "state": state, "type": type, "mode": mode, "n": n}
        return _render(request, "search.html", "results.html", answer=answer, error=error, form=form,
                       sections=engine.sections())

    @router.get("/next", response_class=HTMLResponse)
    def next_page(request: Request, n: Annotated[int, Query(ge=1, le=100)] = 10,
                  section: Annotated[str | None, Query(max_length=300)] = None):
        engine = request.app.state.engine
        answer, error = None, None
        try:
            answer = engine.next(n, section or None)
        except RqError as exc:
            error = str(exc)
        return _render(request, "next.html", "next_list.html", answer=answer, error=error,
                       form={"n": n, "section": section or ""}, back=_here(request))

    @router.post("/mark")
    async def mark(request: Request):
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        guard = request.app.state.guard
        if not form_csrf_ok(guard, form, request.headers):
            return _error(request, "this form is out of date (missing or wrong CSRF token): reload the page", 403)
        ref, state = (form.get("ref") or [""])[0], (form.get("state") or [""])[0]
        if state not in ("read", "unread") or not ref:
            return _error(request, "a mark needs an item and read or unread", 400)
        engine = request.app.state.engine
        try:
            _, warnings = engine.mark(ref, state)
        except RqError as exc:
            return _error(request, str(exc), 400 if exc.exit_code == 2 else 409)
        for warning in warnings:
            engine.log(f"warning: {warning}")
        back = (form.get("back") or ["/next"])[0]
        # Only a path on this server: a form must not send the browser elsewhere.
        if not back.startswith("/") or back.startswith("//") or "\\" in back:
            back = "/next"
        return RedirectResponse(back, status_code=303)

    @router.get("/item/{ref:path}", response_class=HTMLResponse)
    def item_page(request: Request, ref: Annotated[str, Path(max_length=1000)]):
        engine = request.app.state.engine
        try:
            detail = engine.item(ref, FULL_TEXT_CHARS)
        except RqError as exc:
            return _error(request, str(exc), 404 if "no resource" in str(exc) or exc.exit_code == 1 else 400)
        related, related_error = None, None
        try:
            related = engine.related(detail["id"], 5)
        except RqError as exc:
            related_error = str(exc)
        return _render(request, "item.html", None, item=detail, related=related, related_error=related_error,
                       back=_here(request))

    @router.get("/clusters", response_class=HTMLResponse)
    def clusters_page(request: Request):
        try:
            report = request.app.state.engine.clusters("auto")
        except RqError as exc:
            return _error(request, str(exc), 400)
        ids = {title: rid for c in report["clusters"] for rid, title in zip(c["ids"], c["titles"])}
        return _render(request, "clusters.html", None, report=report, ids=ids)

    @router.get("/map", response_class=HTMLResponse)
    def map_page(request: Request):
        return _render(request, "map.html", None)

    @router.get("/map/frame", response_class=HTMLResponse)
    def map_frame(request: Request):
        try:
            html = request.app.state.engine.map_html()
        except RqError as exc:
            return _error(request, str(exc), 400)
        # The map file is rq's own, self-contained (inline script and style, titles escaped by
        # mapview); its policy still lets it load nothing from anywhere.
        return HTMLResponse(html, headers={"Content-Security-Policy": MAP_CSP})

    @router.get("/health", response_class=HTMLResponse)
    def health_page(request: Request):
        return _render(request, "health.html", None, report=request.app.state.engine.health())

    return router


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _render(request: Request, name: str, partial: str | None, status: int = 200, **context) -> Response:
    env = request.app.state.templates
    context |= {"csrf": request.app.state.guard.csrf, "csrf_field": CSRF_FIELD, "path": request.url.path}
    if partial and request.headers.get("x-rq-partial") == "1":
        name = partial
    return HTMLResponse(env.get_template(name).render(**context), status_code=status)


def _error(request: Request, message: str, status: int) -> Response:
    return _render(request, "error.html", None, status=status, message=message)
