"""Response bodies read with a memory bound: ``read_body`` undoes the Content-Encoding
(identity, gzip/deflate, brotli) while it streams and stops at the size cap; ``drain``
reads a short unwanted body so the connection can be reused.

httpx's own decoders inflate a whole network read at once: 64 KB of gzip can be
64 MB of zeros. These never produce more than _CHUNK bytes per step.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from typing import Iterator

import httpx

from rq.fetch.failures import Failure

_CHUNK = 64 * 1024  # most decoded bytes produced per step: what bounds a gzip bomb's memory


def _brotli():
    """The brotli module if it can decode in bounded steps (Brotli >= 1.2), else None."""
    try:
        import brotli
    except ImportError:
        return None
    return brotli if hasattr(brotli.Decompressor(), "can_accept_more_data") else None


_BROTLI = _brotli()
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI else "gzip, deflate"  # what read_body can undo


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data


class _Inflate:
    def __init__(self, name: str):
        self._name = name
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)  # | 32: zlib or gzip header
        self._raw_ok = name == "deflate"  # some servers send deflate without the zlib header
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while not self._z.eof:
            try:
                out = self._z.decompress(data, _CHUNK)
            except zlib.error:
                if self._raw_ok and not self._started:
                    self._raw_ok = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise Failure("error", f"body is not valid {self._name} data") from None
            self._started = True
            data = self._z.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < _CHUNK:  # input used up and nothing held back
                return


class _Brotli:
    def __init__(self, brotli):
        self._brotli = brotli
        self._d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._d.process(data, output_buffer_limit=_CHUNK)
            while out:
                yield out
                out = b"" if self._d.can_accept_more_data() else self._d.process(b"", output_buffer_limit=_CHUNK)
        except self._brotli.error:
            raise Failure("error", "body is not valid brotli data") from None


def _decoder(content_encoding: str | None):
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflate("deflate" if codings[0] == "deflate" else "gzip")
    if codings == ["br"] and _BROTLI:
        return _Brotli(_BROTLI)
    raise Failure("error", f"unsupported Content-Encoding: {content_encoding}")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


# What a person can do about it; the next ingest fetches the link again once the cap changes.
_CAP_HINT = " (raise max_bytes, e.g. RQ_MAX_BYTES=100000000)"


def read_body(response: httpx.Response, cap: int, cancelled: threading.Event) -> bytes:
    """The decoded body, or Failure("too_large") as soon as it (or its Content-Length) passes ``cap``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise Failure("too_large", f"Content-Length {_size(int(declared))} over the {_size(cap)} cap{_CAP_HINT}")
    decoder = _decoder(response.headers.get("content-encoding"))
    body = bytearray()
    for raw in response.iter_raw():
        for piece in decoder.feed(raw):
            body += piece
            if len(body) > cap:
                raise Failure("too_large", f"body over the {_size(cap)} cap{_CAP_HINT}")
        if cancelled.is_set():
            raise Failure("error", "cancelled")
    return bytes(body)


def drain(response: httpx.Response) -> None:
    """Read a short error or redirect body, so the connection can be reused rather than reset."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= _CHUNK:
        with contextlib.suppress(httpx.HTTPError):
            for _ in response.iter_raw():
                pass
