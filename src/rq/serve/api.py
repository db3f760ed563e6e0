"""The HTTP API under /api/: the same JSON the command line prints with --json.

Each route calls one WarmEngine method, which calls the core function the CLI calls; errors
come back as the CLI's --json error object, ``{"error": {"code", "message"}}``, with code 2 for
a usage error (HTTP 400), and 1 otherwise (404 when nothing matched the reference).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request

from rq.serve.engine import WarmEngine

# Query parameters are bounded: a query is words, a reference an id, a URL or a title piece.
Text = Annotated[str, Query(min_length=1, max_length=1000)]
Section = Annotated[str | None, Query(max_length=300, description="Only sections whose path contains this.")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def engine_of(request: Request) -> WarmEngine:
    return request.app.state.engine


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])

    @router.get("/search", summary="rq search --json")
    def search(request: Request, q: Text, n: Limit = 10, section: Section = None,
               state: Literal["read", "unread"] | None = None, type: Literal["html", "pdf"] | None = None,
               mode: Literal["hybrid", "dense", "keyword"] = "hybrid") -> dict:
        read = None if state is None else state == "read"
        return engine_of(request).search(q, n, mode, section, read, type)

    @router.get("/next", summary="rq next --json")
    def next_read(request: Request, n: Limit = 5, section: Section = None) -> dict:
        return engine_of(request).next(n, section)

    @router.get("/related", summary="rq related --json")
    def related(request: Request, ref: Text, n: Limit = 5, text: bool = False) -> dict:
        return engine_of(request).related(ref, n, text)

    @router.get("/items", summary="rq ls --json")
    def items(request: Request, section: Section = None, unread: bool = False, failed: bool = False,
              n: Annotated[int | None, Query(ge=1)] = None) -> list[dict]:
        return engine_of(request).items(section, unread, failed, n)

    @router.get("/item/{ref:path}", summary="rq show --json")
    def item(request: Request, ref: Annotated[str, Path(max_length=1000)],
             chars: Annotated[int, Query(ge=0, le=10_000_000)] = 800) -> dict:
        return engine_of(request).item(ref, chars)

    @router.get("/clusters", summary="rq clusters --json")
    def clusters(request: Request, k: Annotated[str, Query(max_length=8, pattern=r"^(auto|\d+)$")] = "auto") -> dict:
        return engine_of(request).clusters(k if k == "auto" else int(k))

    @router.get("/health", summary="rq health --json")
    def health(request: Request, reason: Annotated[str | None, Query(max_length=40)] = None) -> dict:
        report = engine_of(request).health()
        if reason:
            report["by_reason"] = {k: v for k, v in report["by_reason"].items() if k == reason}
        return report

    @router.get("/status", summary="rq status --json")
    def status(request: Request) -> dict:
        return engine_of(request).status()

    @router.get("/alive", summary="Whether the engine runs, and whether it is re-indexing")
    async def alive(request: Request) -> dict:
        # async: answered on the event loop, while the worker threads answer others (rq.serve.client).
        return {"alive": True, "reindexing": engine_of(request).reindexing}

    @router.get("/engine", summary="The engine itself: re-indexing now, changes seen")
    def engine(request: Request) -> dict:
        warm = engine_of(request)
        warm.fresh()
        return {"reindexing": warm.reindexing, "changes": warm.changes, "queue": str(warm.location.queue_path),
                "index": str(warm.location.index_dir)}

    @router.post("/done", summary="rq done --json: tick the item's checkbox")
    def done(request: Request, ref: Annotated[str, Body(embed=True, max_length=1000)]) -> dict:
        return _mark(request, ref, "read")

    @router.post("/todo", summary="rq todo --json: untick the item's checkbox")
    def todo(request: Request, ref: Annotated[str, Body(embed=True, max_length=1000)]) -> dict:
        return _mark(request, ref, "unread")

    return router


def _mark(request: Request, ref: str, state: str) -> dict:
    engine = engine_of(request)
    answer, warnings = engine.mark(ref, state)
    for warning in warnings:
        engine.log(f"warning: {warning}")
    return answer
