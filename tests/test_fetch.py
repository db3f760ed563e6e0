"""fetch.py and netguard.py against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections import Counter

import email.utils

import httpcore
import httpx
import pytest

from support.http import FixtureServer, closed_port, static
from support.routes import dribble, gzip_bomb as make_gzip_bomb, quietly, redirect, reset, sequence, slow, streamed
from rq.fetch import netguard
from rq.fetch.client import REASONS, FetchClient, FetchRequest, fetch_all, fetch_one
from rq.fetch.failures import retry_after as _retry_after
from rq.settings import Settings

FAST = dict(allow_private=True, fetch_host_delay=0.0, connect_timeout=2.0, read_timeout=1.0,
            total_timeout=4.0, retries=1, backoff=0.05, retry_after_max=2.0)


def fast(**changes) -> Settings:
    return Settings(**{**FAST, **changes})


def get(url: str, **changes):
    result = fetch_one(FetchRequest(url), fast(**changes))
    assert result.reason is None or result.reason in REASONS
    return result


# -- routes ---------------------------------------------------------------------------------


def header(req, name: str) -> str | None:
    return next((v for k, v in req.headers.items() if k.lower() == name.lower()), None)


def sent_headers(server: FixtureServer, path: str) -> list[dict]:
    return [{k.lower(): v for k, v in h.items()} for _, p, h in server.requests if p == path]


# -- basic outcomes -------------------------------------------------------------------------


def test_good_page_returns_body_type_and_validators(http_server):
    url = http_server.route("/f/good", static(b"<html><title>Hi</title></html>", headers={
        "ETag": '"abc"', "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    r = get(url, user_agent="rq-test/1")
    assert (r.outcome, r.reason, r.http_status, r.attempts) == ("ok", None, 200, 1)
    assert r.body == b"<html><title>Hi</title></html>"
    assert r.content_type == "text/html; charset=utf-8"
    assert r.etag == '"abc"' and r.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert r.final_url == url and r.redirects == () and r.detail == "HTTP 200 OK"
    sent = sent_headers(http_server, "/f/good")[-1]
    assert sent["user-agent"] == "rq-test/1"
    assert sent["accept"] == "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.5"
    assert "gzip" in sent["accept-encoding"] and "if-none-match" not in sent


@pytest.mark.parametrize("encoding, encode", [
    ("gzip", lambda b: zlib.compress(b, wbits=31)),
    ("deflate", zlib.compress),
    ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw deflate, as some servers send it
])
def test_compressed_body_is_decoded(http_server, encoding, encode):
    body = b"<p>" + b"compress me " * 5000 + b"</p>"
    path = f"/f/enc-{encoding}-{id(encode)}"
    url = http_server.route(path, static(encode(body), headers={"Content-Encoding": encoding}))
    r = get(url)
    assert r.outcome == "ok" and r.body == body


def test_unknown_encoding_is_an_error_not_garbage(http_server):
    url = http_server.route("/f/zstd", static(b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"}))
    r = get(url)
    assert (r.outcome, r.reason) == ("failed", "error") and "zstd" in r.detail


@pytest.mark.parametrize("status", [404, 410])
def test_not_found_is_never_retried(http_server, status):
    path = f"/f/gone-{status}"
    url = http_server.route(path, static(b"gone", status=status))
    r = get(url, retries=3)
    assert (r.outcome, r.reason, r.http_status, r.attempts) == ("failed", "not_found", status, 1)
    assert http_server.hits[path] == 1


def test_other_4xx_is_http_error_without_retry(http_server):
    url = http_server.route("/f/forbidden", static(b"no", status=403))
    r = get(url, retries=3)
    assert (r.reason, r.http_status, r.detail) == ("http_error", 403, "HTTP 403 Forbidden")
    assert http_server.hits["/f/forbidden"] == 1


def test_server_error_then_success_is_retried(http_server):
    url = http_server.route("/f/flaky", sequence(static(b"oops", status=500), static(b"fine")))
    r = get(url)
    assert (r.outcome, r.attempts, r.body) == ("ok", 2, b"fine")


def test_persistent_server_error_gives_up_after_the_retries(http_server):
    url = http_server.route("/f/down", static(b"down", status=503))
    r = get(url, retries=2)
    assert (r.reason, r.http_status, r.attempts) == ("http_error", 503, 3)
    assert http_server.hits["/f/down"] == 3 and "3 attempts" in r.detail


def test_429_retry_after_is_honoured(http_server):
    url = http_server.route("/f/busy", sequence(
        static(b"slow down", status=429, headers={"Retry-After": "1"}), static(b"now ok")))
    r = get(url)
    assert (r.outcome, r.attempts) == ("ok", 2)
    assert r.elapsed >= 0.9


def test_retry_after_past_the_deadline_gives_up_at_once(http_server):
    url = http_server.route("/f/later", static(b"", status=503, headers={"Retry-After": "60"}))
    r = get(url, retries=3, retry_after_max=120)
    assert (r.reason, r.attempts) == ("http_error", 1) and r.elapsed < 1


def test_redirects_are_followed_and_recorded(http_server):
    end = http_server.route("/f/r-end", static(b"arrived"))
    mid = http_server.route("/f/r-mid", redirect("/f/r-end", 301))
    start = http_server.route("/f/r-start", redirect(mid, 307))
    r = get(start)
    assert (r.outcome, r.body, r.final_url) == ("ok", b"arrived", end)
    assert r.redirects == (mid, end)


def test_cookie_check_redirect_is_not_a_loop(http_server):
    def handle(req):
        if header(req, "Cookie") == "seen=1":
            static(b"welcome")(req)
        else:
            static(b"", status=302, headers={"Location": "/f/cookie", "Set-Cookie": "seen=1; Path=/"})(req)

    r = get(http_server.route("/f/cookie", handle))
    assert (r.outcome, r.body, len(r.redirects)) == ("ok", b"welcome", 1)


# -- timeouts and broken connections --------------------------------------------------------


def test_slow_response_times_out(http_server):
    url = http_server.route("/f/slow", slow(1.5, static(b"late")))
    r = get(url, read_timeout=0.3, retries=0)
    assert (r.outcome, r.reason) == ("failed", "timeout")
    assert "0.3s" in r.detail and r.elapsed < 1.2


def test_dribbling_server_is_cut_at_the_total_deadline(http_server):
    # each byte well inside the read timeout, the whole far past the deadline
    url = http_server.route("/f/dribble", dribble(100, 0.4, "text/plain"))
    r = get(url, read_timeout=1.0, total_timeout=2.0, retries=2)
    assert (r.outcome, r.reason, r.attempts) == ("failed", "timeout", 1)
    assert 1.9 <= r.elapsed < 2.5
    assert "within 2s" in r.detail


def test_a_timeout_is_retried(http_server):
    url = http_server.route("/f/slow-once", sequence(slow(1.0, static(b"late")), static(b"quick")))
    r = get(url, read_timeout=0.3)
    assert (r.outcome, r.attempts, r.body) == ("ok", 2, b"quick")


def test_dribbled_headers_are_cut_at_the_total_deadline(http_server):
    def dribble_headers(req):
        req.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(100):
            req.wfile.write(f"X-Filler-{n}: x\r\n".encode())
            time.sleep(0.4)

    url = http_server.route("/f/dribble-head", quietly(dribble_headers))
    r = get(url, read_timeout=1.0, total_timeout=1.5)
    assert (r.reason, r.http_status) == ("timeout", None) and r.elapsed < 2.0


def test_connection_reset_is_reported_and_retried(http_server):
    url = http_server.route("/f/reset", reset)
    r = get(url)
    assert (r.outcome, r.reason, r.attempts) == ("failed", "reset", 2)
    assert http_server.hits["/f/reset"] == 2


def test_unresolvable_host_is_gone_dns():
    r = get("http://nonexistent.invalid/", retries=2)
    assert (r.outcome, r.reason, r.attempts) == ("failed", "gone_dns", 1)


def test_closed_port_is_refused():
    r = get(f"http://127.0.0.1:{closed_port()}/")
    assert (r.outcome, r.reason, r.attempts) == ("failed", "refused", 1)


# -- size caps ------------------------------------------------------------------------------


def test_declared_length_over_the_cap_is_refused_early(http_server):
    url = http_server.route("/f/big", static(b"x" * 5000))
    r = get(url, max_bytes=1000)
    assert (r.reason, r.body) == ("too_large", None) and "Content-Length" in r.detail


def test_undeclared_body_over_the_cap_is_cut_while_streaming(http_server):
    url = http_server.route("/f/endless", streamed(b"y" * 2_000_000, "text/plain", chunk=10_000))
    r = get(url, max_bytes=50_000)
    assert r.reason == "too_large" and "50 kB" in r.detail


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return make_gzip_bomb(50)  # 50 MB inflated


def test_gzip_bomb_is_cut_without_inflating_it(http_server, gzip_bomb):
    assert len(gzip_bomb) < 100_000
    url = http_server.route("/f/bomb", static(gzip_bomb, headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        r = get(url, max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (r.outcome, r.reason) == ("failed", "too_large")
    assert peak < 8_000_000, f"peak traced memory {peak / 1e6:.1f} MB"


# -- redirects gone wrong -------------------------------------------------------------------


def test_redirect_loop(http_server):
    http_server.route("/f/loop-a", redirect("/f/loop-b"))
    http_server.route("/f/loop-b", redirect("/f/loop-a"))
    r = get(http_server.url("/f/loop-a"), max_redirects=10)
    assert (r.outcome, r.reason) == ("failed", "redirect_loop")
    assert http_server.hits["/f/loop-a"] == 1 and http_server.hits["/f/loop-b"] == 1


def test_too_many_redirects(http_server):
    for i in range(6):
        http_server.route(f"/f/chain-{i}", redirect(f"/f/chain-{i + 1}"))
    r = get(http_server.url("/f/chain-0"), max_redirects=3)
    assert (r.outcome, r.reason) == ("failed", "too_many_redirects")
    assert len(r.redirects) == 4 and http_server.hits["/f/chain-4"] == 0


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/"])
def test_redirect_to_another_scheme_is_blocked(http_server, target):
    path = f"/f/to-{target.split(':')[0]}"
    r = get(http_server.route(path, redirect(target)))
    assert (r.outcome, r.reason) == ("failed", "blocked") and r.final_url.startswith(target.split(":")[0])


def test_credentials_are_dropped_when_a_redirect_changes_origin(http_server):
    http_server.route("/f/cred-end", static(b"done"))
    http_server.route("/f/cred-start", redirect(f"http://localhost:{http_server.port}/f/cred-end"))
    r = get(f"http://user:secret@127.0.0.1:{http_server.port}/f/cred-start")
    assert r.outcome == "ok"
    assert "authorization" in sent_headers(http_server, "/f/cred-start")[-1]
    assert "authorization" not in sent_headers(http_server, "/f/cred-end")[-1]


# -- conditional GET ------------------------------------------------------------------------


def test_conditional_get_gives_not_modified(http_server):
    def handle(req):
        if header(req, "If-None-Match") == '"v7"':
            req.send_response(304)
            req.send_header("ETag", '"v7"')
            req.end_headers()
        else:
            static(b"<html>v7</html>", headers={"ETag": '"v7"'})(req)

    url = http_server.route("/f/cond", handle)
    first = get(url)
    assert first.outcome == "ok" and first.etag == '"v7"'
    second = fetch_one(FetchRequest(url, etag=first.etag, key="k1"), fast())
    assert (second.outcome, second.http_status, second.body) == ("not_modified", 304, None)
    assert second.etag == '"v7"' and second.request.key == "k1"


def test_conditional_get_sends_if_modified_since(http_server):
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = http_server.route("/f/ims", lambda req: static(b"", status=304)(req)
                            if header(req, "If-Modified-Since") == stamp else static(b"new")(req))
    r = fetch_one(FetchRequest(url, last_modified=stamp), fast())
    assert r.outcome == "not_modified" and r.last_modified == stamp


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["not a url", "http://", "mailto:someone@example.com", "ftp://example.com/f",
                                 "http://exa mple.com/", "http://example.com:99999/"])
def test_bad_urls(url):
    r = get(url)
    assert (r.outcome, r.reason, r.attempts) == ("failed", "bad_url", 0), r.detail


def test_a_shared_client_serves_many_fetches(http_server):
    url = http_server.route("/f/shared", static(b"same"))
    settings = fast()
    with FetchClient(settings) as client:
        results = [fetch_one(FetchRequest(url), settings, client=client) for _ in range(3)]
    assert [r.body for r in results] == [b"same"] * 3


def test_retry_after_forms():
    assert _retry_after(httpx.Headers({"Retry-After": "7"})) == 7
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 15 < _retry_after(httpx.Headers({"Retry-After": later})) <= 20
    assert _retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert _retry_after(httpx.Headers()) is None


def test_fetch_one_refuses_an_unguarded_client():
    with pytest.raises(TypeError):
        fetch_one(FetchRequest("http://example.com/"), fast(), client=httpx.Client())


# -- SSRF guard -----------------------------------------------------------------------------


@pytest.fixture
def no_connect(monkeypatch):
    """Record and refuse every outgoing connect, so a guard bug can never send a packet."""
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise ConnectionRefusedError("connect disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


BLOCKED = [
    "http://127.0.0.1:{port}{path}",
    "http://2130706433:{port}{path}",
    "http://0177.0.0.1:{port}{path}",
    "http://0x7f.1:{port}{path}",
    "http://127.1:{port}{path}",
    "http://[::ffff:127.0.0.1]:{port}{path}",
    "http://0.0.0.0:{port}{path}",
    "http://[::]:{port}{path}",
    "http://[::1]:{port}{path}",
    "http://169.254.169.254{path}",
    "http://100.64.0.1{path}",
    "http://[64:ff9b::a00:1]{path}",
    "http://10.0.0.1{path}",
    "http://192.168.1.1{path}",
    "http://[fd00::1]{path}",
    "http://localhost:{port}{path}",
    "http://LocalHost:{port}{path}",
    "http://user@127.0.0.1:{port}{path}",
    "https://127.0.0.1:{port}{path}",
]


@pytest.mark.parametrize("n, template", list(enumerate(BLOCKED)))
def test_private_addresses_are_blocked_before_connecting(http_server, no_connect, n, template):
    path = f"/f/guard-{n}"
    http_server.route(path, static(b"secret"))
    url = template.format(port=http_server.port, path=path)
    r = fetch_one(FetchRequest(url), Settings(fetch_host_delay=0, retries=2))
    assert (r.outcome, r.reason, r.attempts) == ("failed", "blocked", 1 if "localhost" in url.lower() else 0)
    assert no_connect == [] and http_server.hits[path] == 0


def test_allow_hosts_lets_one_private_host_through(http_server):
    url = http_server.route("/f/allowed", static(b"mine"))
    r = fetch_one(FetchRequest(url), Settings(fetch_host_delay=0, allow_hosts=("127.0.0.1",)))
    assert (r.outcome, r.body) == ("ok", b"mine")


def test_redirect_from_an_allowed_host_to_a_private_one_is_blocked(http_server):
    http_server.route("/f/inner", static(b"secret"))
    url = http_server.route("/f/outer", redirect(f"http://localhost:{http_server.port}/f/inner"))
    r = fetch_one(FetchRequest(url), Settings(fetch_host_delay=0, allow_hosts=("127.0.0.1",)))
    assert (r.outcome, r.reason) == ("failed", "blocked")
    assert r.final_url.endswith("/f/inner") and http_server.hits["/f/inner"] == 0


def test_a_name_resolving_to_a_private_address_is_blocked(monkeypatch, no_connect):
    answers = {"evil.test": ["93.184.216.34", "10.0.0.5"]}
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]])
    r = fetch_one(FetchRequest("http://evil.test/"), Settings(retries=0))
    assert r.reason == "blocked" and "10.0.0.5" in r.detail and no_connect == []


def test_the_socket_connects_to_the_address_that_was_vetted(monkeypatch, no_connect):
    """DNS rebinding: a second lookup would say 127.0.0.1; there must be no second lookup."""
    lookups = []

    def rebinding(host, port, *a, **k):
        lookups.append(host)
        ip = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    r = fetch_one(FetchRequest("http://rebind.test:8080/"), Settings(retries=0))
    assert lookups == ["rebind.test"] and no_connect == [("93.184.216.34", 8080)]
    assert r.reason == "refused"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1",
    "255.255.255.255", "240.0.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1",
    "fd12:3456::1", "ff02::1", "fec0::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2002:a00:1::",
    "::127.0.0.1", "2001:db8::1",
])
def test_forbidden_addresses(address):
    assert netguard.forbidden_reason(address)


@pytest.mark.parametrize("address", [
    "8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1", "11.0.0.1", "2606:4700:4700::1111",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses(address):
    assert netguard.forbidden_reason(address) is None


@pytest.mark.parametrize("host, expected", [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("[::1]", "::1"), ("8.8.8.8", "8.8.8.8"),
    ("example.com", None), ("cafe", None), ("localhost", None),
])
def test_literal_address_forms(host, expected):
    got = netguard.literal_address(host)
    assert got == (ipaddress.ip_address(expected) if expected else None)


def test_guard_settings():
    strict = netguard.Guard()
    with pytest.raises(netguard.BlockedAddress):
        strict.check_resolved("intranet", ["10.0.0.7"])
    strict.check_resolved("example.com", ["93.184.216.34"])
    netguard.Guard(allow_hosts=("Intranet.",)).check_resolved("intranet", ["10.0.0.7"])
    netguard.Guard(allow_private=True).check_literal("127.1")
    assert issubclass(netguard.BlockedAddress, httpcore.ConnectError)


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FixtureServer()
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    server.start()
    server.route("/secure", static(b"over tls"))
    yield server, cert
    server.stop()


def test_tls_checks_the_host_name_although_the_socket_dials_an_address(tls_server, monkeypatch):
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    r = get(f"https://localhost:{server.port}/secure")
    assert (r.outcome, r.body) == ("ok", b"over tls")
    r = get(f"https://127.0.0.1:{server.port}/secure")  # the certificate names localhost only
    assert (r.outcome, r.reason) == ("failed", "tls")


def test_untrusted_certificate_fails_without_fallback(tls_server):
    server, _ = tls_server
    r = get(f"https://localhost:{server.port}/secure")
    assert (r.outcome, r.reason, r.attempts) == ("failed", "tls", 1)
    assert "certificate" in r.detail


# -- many links -----------------------------------------------------------------------------


class Gauge:
    """Counts requests in flight per Host header, server side."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now: Counter = Counter()
        self.peak: Counter = Counter()
        self.starts: list[float] = []

    def route(self, delay: float, body: bytes = b"ok"):
        def handle(req):
            host = header(req, "Host").rsplit(":", 1)[0]
            with self.lock:
                self.starts.append(time.monotonic())
                self.now[host] += 1
                self.peak[host] = max(self.peak[host], self.now[host])
            time.sleep(delay)
            with self.lock:  # before answering: the client may start its next request right after
                self.now[host] -= 1
            static(body)(req)

        return handle


def test_fetch_all_returns_one_result_per_link_and_limits_each_host(http_server):
    gauge = Gauge()
    port = http_server.port
    expected = {}
    for i in range(8):
        expected[http_server.route(f"/f/m-ok-{i}", gauge.route(0.15))] = ("ok", None)
    for i in range(4):
        http_server.route(f"/f/m-lh-{i}", gauge.route(0.15))
        expected[f"http://localhost:{port}/f/m-lh-{i}"] = ("ok", None)
    for i in range(3):
        expected[http_server.url(f"/f/m-missing-{i}")] = ("failed", "not_found")
    for i in range(2):
        expected[http_server.route(f"/f/m-500-{i}", static(b"", status=500))] = ("failed", "http_error")
    http_server.route("/f/m-moved", redirect("/f/m-ok-0"))
    expected[http_server.url("/f/m-moved")] = ("ok", None)
    expected["ftp://example.com/file"] = ("failed", "bad_url")
    expected["http://nonexistent.invalid/x"] = ("failed", "gone_dns")
    assert len(expected) == 20

    seen = []
    requests = [FetchRequest(url, key=f"k{n}") for n, url in enumerate(expected)]
    results = list(fetch_all(requests, fast(fetch_concurrency=6, fetch_per_host=2), on_result=seen.append))

    assert len(results) == 20 and seen == results
    assert sorted(r.request.key for r in results) == sorted(r.key for r in requests)
    for r in results:
        assert (r.outcome, r.reason) == expected[r.request.url], (r.request.url, r.detail)
    assert gauge.peak["127.0.0.1"] == 2 and gauge.peak["localhost"] <= 2


def test_fetch_all_spaces_requests_to_one_host(http_server):
    gauge = Gauge()
    urls = [http_server.route(f"/f/polite-{i}", gauge.route(0.0)) for i in range(3)]
    results = list(fetch_all([FetchRequest(u) for u in urls], fast(fetch_host_delay=0.3)))
    assert [r.outcome for r in results] == ["ok"] * 3
    gaps = [b - a for a, b in zip(sorted(gauge.starts), sorted(gauge.starts)[1:])]
    assert min(gaps) >= 0.25


def test_closing_fetch_all_early_cancels_the_rest(http_server):
    quick = http_server.route("/f/c-quick", static(b"quick"))
    stuck = [http_server.route(f"/f/c-stuck-{i}", slow(3.0, static(b"late"))) for i in range(3)]
    results = fetch_all([FetchRequest(u) for u in [quick, *stuck]],
                        fast(read_timeout=5.0, total_timeout=10.0, fetch_per_host=4))
    first = next(results)
    assert first.request.url == quick
    began = time.monotonic()
    results.close()
    assert time.monotonic() - began < 1.0


def test_fetch_all_of_nothing():
    assert list(fetch_all([], fast())) == []


def test_a_request_added_while_fetch_all_runs_goes_ahead_of_its_hosts_waiting_links(http_server):
    urls = [http_server.route(f"/f/a-{i}", static(b"page")) for i in range(5)]
    follow_up = http_server.route("/f/a-follow-up", static(b"extra"))
    added: list[FetchRequest] = []
    order = []
    for result in fetch_all([FetchRequest(u) for u in urls], fast(fetch_per_host=1, fetch_concurrency=1),
                            added=added):
        order.append(result.request.url)
        if result.request.url == urls[0]:
            added.append(FetchRequest(follow_up, key="follow-up"))
    assert order == [urls[0], follow_up, *urls[1:]]  # one result per request, the follow-up included


def test_a_refused_private_address_names_the_flag_that_allows_it(http_server):
    r = fetch_one(FetchRequest(http_server.route("/f/hint", static(b"x"))), Settings(fetch_host_delay=0))
    assert r.reason == "blocked" and "pass --allow-private, or list the host in allow_hosts" in r.detail
