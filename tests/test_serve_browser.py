"""The web app in a real browser (issue 15): Debian's chromium driven by Playwright through
``executable_path`` (never a downloaded browser build). Typing a query shows the right result;
"mark read" changes one checkbox in the file and the list updates; the map asks nothing of any
host but the engine; with JavaScript off the search form still works. The README's screenshot
is taken here (RQ_UPDATE_SCREENSHOT=1 writes it to docs/rq-serve.png)."""

import os
import shutil
from pathlib import Path

import pytest
from support.serving import Engine, build_library, isolated_env

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "rq-serve.png"

if CHROMIUM is None:
    pytest.skip("no chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def served(tmp_path_factory, http_server, _session_cache):
    folder = tmp_path_factory.mktemp("serve-browser")
    env = isolated_env(folder, _session_cache)
    queue, index = build_library(folder, http_server, env)
    engine = Engine.start(queue, index, env)
    yield engine, queue
    engine.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def test_typing_a_query_shows_the_right_result(served, browser, tmp_path):
    engine, _ = served
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(engine.url("/"))
    page.locator("#q").press_sequentially("contextual bandits exploration", delay=20)
    first = page.locator("#results li.hit a.title").first
    sync_api.expect(first).to_have_text("Bandits for recsys", timeout=30_000)
    # Search as you type replaced the results in place and kept the address shareable.
    assert "q=contextual+bandits+exploration" in page.url
    sync_api.expect(page.locator("#results mark").first).to_be_visible()
    # README's picture: written into docs/ only when asked, so a test run leaves the tree clean.
    shot = page.screenshot(path=str(SCREENSHOT if os.environ.get("RQ_UPDATE_SCREENSHOT") else tmp_path / "rq.png"))
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    page.close()


def test_mark_read_ticks_one_checkbox_and_the_list_updates(served, browser):
    engine, queue = served
    before = queue.read_bytes()
    page = browser.new_page()
    page.goto(engine.url("/next?n=10"))
    item = page.locator("li.suggestion", has=page.locator("a.title", has_text="Code review habits"))
    sync_api.expect(item).to_have_count(1)
    loads = []
    page.on("load", lambda: loads.append(1))
    item.get_by_role("button", name="mark read").click()
    # Read items leave the next list, in place: no page load.
    sync_api.expect(titled(page, "Code review habits")).to_have_count(0, timeout=30_000)
    sync_api.expect(page.locator("li.suggestion a", has_text="Code review habits").first).to_be_visible()  # now a "because"
    assert not loads
    after = queue.read_bytes()
    assert after == before.replace(b"* [ ] [Code review habits]", b"* [x] [Code review habits]")
    assert sum(a != b for a, b in zip(before, after)) == 1
    page.close()
    httpx_undo(engine, "Code review habits")
    assert queue.read_bytes() == before


def titled(page, title):
    """The next list's entries for ``title`` (not the "because you read" links to it)."""
    return page.locator("li.suggestion > a.title", has_text=title)


def httpx_undo(engine, title):
    import httpx

    page = httpx.get(engine.url("/next"), timeout=60).text
    csrf = page.split('name="rq-csrf" content="', 1)[1].split('"', 1)[0]
    httpx.post(engine.url("/api/todo"), json={"ref": title}, headers={"X-Rq-CSRF": csrf},
               timeout=60).raise_for_status()


def test_the_map_asks_nothing_outside_the_engine(served, browser):
    engine, _ = served
    page = browser.new_page()
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(engine.url("/map"))
    frame = page.frame_locator("#map")
    sync_api.expect(frame.locator("svg circle")).to_have_count(6, timeout=60_000)
    page.locator("#map-q").press_sequentially("recommendations", delay=20)
    sync_api.expect(page.locator("#map-count")).to_contain_text("matching points", timeout=30_000)
    assert any(u.startswith(engine.url("/api/search")) for u in asked)
    outside = [u for u in asked if not u.startswith(engine.base + "/")]
    assert not outside, outside
    page.close()


def test_with_javascript_off_the_search_form_still_works(served, browser):
    engine, _ = served
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(engine.url("/"))
    page.fill("#q", "feature store training serving")
    page.select_option("select[name=state]", "unread")
    page.press("#q", "Enter")
    page.wait_for_load_state()
    assert "q=feature+store+training+serving" in page.url and "state=unread" in page.url
    sync_api.expect(page.locator("#results li.hit a.title").first).to_have_text("Feature stores")
    # Mark read works as a plain form post too (then undone).
    page.goto(engine.url("/next?n=10"))
    page.locator("li.suggestion", has=page.locator("a.title", has_text="Feature stores")).get_by_role("button", name="mark read").click()
    page.wait_for_load_state()
    assert page.url.endswith("/next?n=10"), page.content()[-800:]
    sync_api.expect(titled(page, "Feature stores")).to_have_count(0)
    context.close()
    httpx_undo(engine, "Feature stores")
