"""`rq serve` binds a port on the user's machine (issue 15, "Security"): a foreign Host header,
a cross-site form post, a missing token on a non-loopback bind, oversized requests, and an
archived page whose text holds markup."""

import subprocess
import sys

import httpx
import pytest
from support.serving import HOSTILE_TEXT, Engine, running_library

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory, http_server, _session_cache):
    with running_library(tmp_path_factory.mktemp("serve-security"), http_server, _session_cache) as (engine, queue):
        yield engine, queue


def csrf_of(engine) -> str:
    page = httpx.get(engine.url("/next"), timeout=60).text
    return page.split('name="rq-csrf" content="', 1)[1].split('"', 1)[0]


def test_a_foreign_host_header_is_refused(served):
    engine, _ = served
    for path in ("/", "/api/status", "/openapi.json", "/static/app.js"):
        answer = httpx.get(engine.url(path), headers={"Host": "evil.example"}, timeout=30)
        assert answer.status_code == 403, path
        answer = httpx.get(engine.url(path), headers={"Host": f"evil.example:{engine.info['port']}"}, timeout=30)
        assert answer.status_code == 403, path
    assert httpx.get(engine.url("/api/status"), headers={"Host": f"localhost:{engine.info['port']}"},
                     timeout=30).status_code == 200


def test_a_cross_site_post_ticks_no_box(served):
    engine, queue = served
    before = queue.read_bytes()
    csrf = csrf_of(engine)
    form = {"ref": "Feature stores", "state": "read", "back": "/next"}
    # What a foreign page's form (or script) can send: another Origin, with or without the token.
    for origin in ("http://evil.example", "null"):
        for fields in (form, {**form, "csrf": csrf}):
            answer = httpx.post(engine.url("/mark"), data=fields, headers={"Origin": origin}, timeout=30)
            assert answer.status_code == 403
    # Same-site form without the page's token, and the JSON API without its header.
    assert httpx.post(engine.url("/mark"), data=form, headers={"Origin": engine.base}, timeout=30).status_code == 403
    assert httpx.post(engine.url("/api/done"), json={"ref": "Feature stores"}, timeout=30).status_code == 403
    assert httpx.post(engine.url("/api/done"), json={"ref": "Feature stores"}, timeout=30,
                      headers={"Sec-Fetch-Site": "cross-site", "X-Rq-CSRF": csrf}).status_code == 403
    # A GET never changes anything.
    assert httpx.get(engine.url("/api/done"), params={"ref": "Feature stores"}, timeout=30).status_code == 405
    assert queue.read_bytes() == before
    # The page's own form, with its token, does tick the box (and is then undone).
    ok = httpx.post(engine.url("/mark"), data={**form, "csrf": csrf}, headers={"Origin": engine.base}, timeout=30)
    assert ok.status_code == 303 and ok.headers["location"] == "/next"
    assert queue.read_bytes() == before.replace(b"* [ ] [Feature stores]", b"* [x] [Feature stores]")
    httpx.post(engine.url("/mark"), data={**form, "state": "unread", "csrf": csrf}, timeout=30)
    assert queue.read_bytes() == before


def test_no_cors_and_closed_headers(served):
    engine, _ = served
    preflight = httpx.request("OPTIONS", engine.url("/api/done"), timeout=30, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    answer = httpx.get(engine.url("/api/status"), headers={"Origin": "http://evil.example"}, timeout=30)
    for response in (preflight, answer):
        assert not any(k.lower().startswith("access-control-") for k in response.headers)
    page = httpx.get(engine.url("/"), timeout=30)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


def test_request_sizes_are_limited(served):
    engine, _ = served
    assert httpx.get(engine.url("/api/search"), params={"q": "x" * 5000}, timeout=30).status_code == 414
    assert httpx.get(engine.url("/api/search"), params={"q": "x" * 1500}, timeout=30).status_code == 400
    big = httpx.post(engine.url("/api/done"), content=b"{" + b" " * 100_000 + b"}", timeout=30,
                     headers={"Content-Type": "application/json", "X-Rq-CSRF": csrf_of(engine)})
    assert big.status_code == 413


def test_archived_markup_is_shown_as_text(served):
    engine, _ = served
    hostile = next(h for h in httpx.get(engine.url("/api/items"), timeout=30).json() if h["title"] == "Markup in text")
    assert HOSTILE_TEXT in httpx.get(engine.url(f"/api/item/{hostile['id']}"), timeout=30).json()["text_head"]
    page = httpx.get(engine.url(f"/item/{hostile['id']}"), timeout=60).text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<iframe src=\"http://evil" not in page
    assert page.count("<script") == 1  # rq's own app.js, nothing else
    # A queue note with markup is text on every page too.
    results = httpx.get(engine.url("/"), params={"q": "code review"}, timeout=60).text
    assert "<b>bold</b>" not in results and "note" in results


def test_a_non_loopback_bind_needs_a_token(tmp_path, served):
    engine, queue = served
    refused = subprocess.run([sys.executable, "-m", "rq", "serve", "--host", "0.0.0.0", "--port", "0",
                              "--queue", queue, "--index", engine.index], capture_output=True, text=True,
                             timeout=60, env=engine.env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()] and "--token" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_every_request_carries_the_token_on_a_wildcard_bind(tmp_path, served):
    first, queue = served
    token = "a-long-enough-token-for-the-test"
    index = tmp_path / "ix"
    import shutil

    shutil.copytree(first.index, index, ignore=shutil.ignore_patterns("serve.json", ".lock"))
    engine = Engine.start(queue, index, first.env, args=("--host", "0.0.0.0", "--token", token))
    try:
        assert httpx.get(engine.url("/api/status"), timeout=30).status_code == 401
        assert httpx.get(engine.url("/"), timeout=30).status_code == 401
        assert httpx.get(engine.url("/api/status"), headers={"X-Rq-Token": "wrong" * 8}, timeout=30).status_code == 401
        assert httpx.get(engine.url("/api/status"), headers={"Authorization": f"Bearer {token}"},
                         timeout=30).status_code == 200
        # The address rq serve prints carries the token; the browser keeps it in a cookie.
        with httpx.Client(base_url=engine.base, timeout=60) as browser:
            assert browser.get("/", params={"token": token}).status_code == 200
            assert browser.get("/next").status_code == 200
    finally:
        engine.stop()
