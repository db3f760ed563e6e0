"""The test harness, one copy, shared by tests/ and benchmarks/.

    http     FixtureServer (a real HTTP server on 127.0.0.1 whose routes are plain functions), static
    routes   route helpers (redirect, reset, slow, sequence, ...), CatchAll, and HTML page builders
    pdf      make_pdf: small, valid PDFs with real text
    queues   write_queue / queue_text: small Markdown queue files
    crash    the crash harness: SIGKILL rq at random moments and check what it leaves

Tests import it as ``support`` (pytest puts tests/ on sys.path: tests/conftest.py has no
package around it); benchmarks put ``ROOT / "tests"`` on sys.path first.
"""
