"""The FastAPI application: the API, the pages and the static files, behind the guard.

``create_app(engine, guard)`` is all a server (or a test) needs; ``rq.serve.run`` binds the
socket, writes the engine file and runs uvicorn.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from rq import __version__
from rq.errors import NotFoundError, RqError
from rq.serve.api import api_router
from rq.serve.engine import WarmEngine
from rq.serve.pages import page_router, templates
from rq.serve.security import Guard, GuardMiddleware


def create_app(engine: WarmEngine, guard: Guard) -> FastAPI:
    # No /docs or /redoc: FastAPI's pages load their script from a CDN, and rq serve works
    # offline; the schema itself is at /openapi.json.
    app = FastAPI(title="rq serve", version=__version__, docs_url=None, redoc_url=None,
                  description="The warm engine of one reading queue: the JSON of `rq ... --json`, over HTTP. "
                              "POST requests need the X-Rq-CSRF header (the token in every page's "
                              "<meta name=rq-csrf>) and a same-site Origin.")
    app.state.engine = engine
    app.state.guard = guard
    app.state.templates = templates()
    app.include_router(api_router())
    app.include_router(page_router())
    from importlib import resources

    app.mount("/static", StaticFiles(directory=str(resources.files("rq.serve") / "static")), name="static")
    app.add_exception_handler(RqError, _rq_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)
    # Outermost: nothing reaches a route, the docs or the static files before the guard.
    app.add_middleware(GuardMiddleware, guard=guard)
    return app


def error_body(message: str, code: int) -> dict:
    """The CLI's --json error object (rq.cli.output.report_failure)."""
    return {"error": {"code": code, "message": " ".join(message.split())}}


async def _rq_error(request: Request, exc: RqError) -> JSONResponse:
    status = 400 if exc.exit_code == 2 else 404 if isinstance(exc, NotFoundError) else 409
    return JSONResponse(error_body(str(exc), exc.exit_code), status_code=status)


async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
                         for e in exc.errors())
    return JSONResponse(error_body(problems or "bad request", 2), status_code=400)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse(error_body(str(exc.detail), 1), status_code=exc.status_code)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    # The person gets one line; the log gets the kind of error (no traceback is sent anywhere).
    request.app.state.engine.log(f"unexpected error on {request.url.path}: {type(exc).__name__}: {exc}")
    return JSONResponse(error_body(f"unexpected error ({type(exc).__name__}); this is a bug in rq", 1),
                        status_code=500)
