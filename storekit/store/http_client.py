"""HTTP for binary caches over urllib3: kept-alive connections, bounded concurrency, timeouts, resumes.

One `HttpClient` per cache holds a pool of HTTP/1.1 connections to its origin, reused from request to
request (a closure of a thousand small paths costs a handful of TCP handshakes, not two thousand)
and shared by the copy's worker threads: at most `connections` requests are in flight, a thread
past that waits for a free connection. Every request has a connect timeout and a read timeout (the
longest silence while waiting for bytes), and a failure names which one ran out and after how long.

Bodies are never decoded by urllib3: a narinfo's `Content-Encoding` is decoded by
`content_encoding.decode_body`, which bounds the output, and a NAR's bytes are hashed as sent.
A NAR download cut off mid-body resumes with a `Range` request (`If-Range` pinned to the ETag or
Last-Modified of the first answer, so a file replaced meanwhile is sent whole and refused by its hash
rather than spliced); a server that ignores ranges sends it whole and the part already read is skipped.

Redirects are followed here, not by urllib3, so that each hop can be checked: only within the cache's
origin unless the cache's URL says `?redirects=any`.
"""

from __future__ import annotations

import contextlib
import io
import urllib.parse
from typing import Any

import urllib3
import urllib3.exceptions

from storekit.errors import SubstituteError
from storekit.store.http_limits import CONNECT_TIMEOUT_S, CONNECTIONS, MISSING, READ_TIMEOUT_S

__all__ = ["CONNECTIONS", "CONNECT_TIMEOUT_S", "MISSING", "READ_TIMEOUT_S", "HttpClient", "ResumingBody"]
RESUMES = 5
MAX_REDIRECTS = 5
DRAIN_LIMIT = 64 << 10
_REDIRECTS = (301, 302, 303, 307, 308)

Response = urllib3.BaseHTTPResponse


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, with the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class HttpClient:
    """Requests to one cache (`cache_url` names it in errors) through one pool of connections."""

    def __init__(
        self,
        cache_url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        connections: int = CONNECTIONS,
        any_redirect: bool = False,
    ) -> None:
        self.cache_url = cache_url
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.any_redirect = any_redirect
        # One retry of a request whose kept-alive connection the server had closed meanwhile (a
        # read error before any byte of the answer); no retry of a refused connection, a status or
        # a redirect: those are answers, reported as they are.
        retries = urllib3.Retry(total=1, connect=0, read=1, redirect=False, status=0, other=0)
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max(1, connections),
            block=True,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=retries,
            headers={"User-Agent": "storekit"},
        )

    def close(self) -> None:
        self._pool.clear()

    def get(self, url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> Response | None:
        """The answer to `url` (headers read, body not yet), or None for a missing file.

        Redirects are followed (see the module docstring); any other status from 300 up raises.
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers)
            if response.status in _REDIRECTS and response.headers.get("Location"):
                target = urllib.parse.urljoin(url, response.headers["Location"])
                discard(response)
                if not self.any_redirect and origin(target) != origin(self.cache_url):
                    raise SubstituteError(
                        f"binary cache '{self.cache_url}' redirected '{url}' to another origin "
                        f"('{target}'); refused (add '?redirects=any' to the cache's URL to follow such "
                        "redirects)"
                    )
                url = target
                continue
            if response.status in MISSING:
                discard(response)
                return None
            if response.status >= 300 or (response.status == 206 and not (headers or {}).get("Range")):
                reason = response.reason or ""
                discard(response)
                raise SubstituteError(
                    f"binary cache '{self.cache_url}': HTTP {response.status} {reason} for '{url}'".rstrip()
                )
            return response
        raise SubstituteError(
            f"binary cache '{self.cache_url}': more than {MAX_REDIRECTS} redirects at '{url}'"
        )

    def _send(self, method: str, url: str, headers: dict[str, str] | None) -> Response:
        try:
            return self._pool.request(
                method, url, headers=headers, preload_content=False, decode_content=False, redirect=False
            )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise SubstituteError(
                f"cannot reach binary cache '{self.cache_url}' ({url}): {self.explain(e)}"
            ) from e

    def explain(self, e: BaseException) -> str:
        """What went wrong, in words: which timeout ran out, a refused connection, a cut connection."""
        if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason is not None:
            e = e.reason
        if isinstance(e, urllib3.exceptions.ConnectTimeoutError):
            return f"no connection within the connect timeout of {self.connect_timeout:g} s"
        if isinstance(e, urllib3.exceptions.ReadTimeoutError):
            return f"the server sent nothing for {self.read_timeout:g} s (read timeout)"
        if isinstance(e, urllib3.exceptions.NewConnectionError):
            return f"cannot connect: {_root_cause(e)}"
        if isinstance(e, urllib3.exceptions.ProtocolError):
            return f"the connection broke: {_root_cause(e)}"
        return str(e) or type(e).__name__


def _root_cause(e: BaseException) -> str:
    for arg in getattr(e, "args", ()):
        if isinstance(arg, BaseException):
            return _root_cause(arg)
    cause = e.__cause__ or e.__context__
    if isinstance(e, urllib3.exceptions.HTTPError) and cause is not None:
        return _root_cause(cause)
    text = getattr(e, "strerror", None) or str(e)
    return text.split(": ", 1)[-1] if isinstance(e, urllib3.exceptions.NewConnectionError) else text


def discard(response: Response) -> None:
    """Give a connection back when its answer is done (or little of it is left: a 404 page, say);
    close it when much is unread, rather than read a NAR to its end for nothing."""
    with contextlib.suppress(Exception):
        remaining = response.length_remaining
        if remaining is not None and remaining <= DRAIN_LIMIT:
            response.drain_conn()
            response.release_conn()
        else:
            response.close()


def announced_length(response: Response) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


class ResumingBody(io.RawIOBase):
    """The body of a GET that continues with a `Range` request when the connection breaks.

    Reads end (0 bytes) only at the end of the file; a cut that cannot be resumed (no length
    announced, `RESUMES` used up, the server gone) raises OSError, which `transport.Download`
    reports as a truncated download with the byte count.
    """

    def __init__(self, client: HttpClient, url: str, response: Response) -> None:
        super().__init__()
        self._client, self._url = client, url
        self._response: Response | None = response
        self.size = announced_length(response)
        etag = response.headers.get("ETag") or ""
        strong = etag and not etag.startswith("W/")  # If-Range takes only a strong ETag
        self._validator = etag if strong else response.headers.get("Last-Modified")
        self.position = 0
        self.resumed = 0

    @classmethod
    def continuing(
        cls, client: HttpClient, url: str, *, size: int, position: int, validator: str | None, cause: str
    ) -> ResumingBody:
        """The rest of a body another client read `position` bytes of before `cause` cut it: resumed
        at once, by the same rules (and count of resumes) as a cut under this client."""
        self = cls.__new__(cls)
        io.RawIOBase.__init__(self)
        self._client, self._url, self._response = client, url, None
        self.size, self._validator = size, validator
        self.position, self.resumed = position, 0
        self._resume(cause)
        return self

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while True:
            assert self._response is not None
            try:
                data = self._response.read1(len(buffer))  # what has come: a stall loses nothing
            except (urllib3.exceptions.HTTPError, OSError) as e:
                self._resume(self._client.explain(e))
                continue
            if not data:
                if self.size is not None and self.position < self.size:
                    self._resume(f"the connection closed at byte {self.position} of {self.size}")
                    continue
                discard(self._response)
                return 0
            n = len(data)
            buffer[:n] = data
            self.position += n
            return n

    def _resume(self, cause: str) -> None:
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        if self.size is None:
            raise OSError(f"{cause}; the server announced no length, so the download cannot resume")
        if self.resumed >= RESUMES:
            raise OSError(f"{cause}; gave up after {self.resumed} resumed requests")
        self.resumed += 1
        headers = {"Range": f"bytes={self.position}-"}
        if self._validator:
            headers["If-Range"] = self._validator
        try:
            response = self._client.get(self._url, headers=headers)
        except SubstituteError as e:
            raise OSError(f"{cause}; resuming at byte {self.position} failed: {e}") from e
        if response is None:
            raise OSError(f"{cause}; the file vanished while it was being downloaded")
        if response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != self.position:
                discard(response)
                raise OSError(f"{cause}; the server resumed at byte {start}, not {self.position}")
        else:  # the whole file again: skip what was read (its hash is checked as a whole anyway)
            try:
                _skip(response, self.position)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                discard(response)
                raise OSError(f"{cause}; the new request broke too: {self._client.explain(e)}") from e
        self._response = response

    def close(self) -> None:
        if not self.closed and self._response is not None:
            discard(self._response)
        super().close()


def _range_start(content_range: str) -> int | None:
    """The first byte of `bytes START-END/TOTAL`."""
    unit, _, spec = content_range.partition(" ")
    start = spec.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _skip(response: Any, count: int) -> None:
    while count > 0:
        data = response.read(min(count, 1 << 20))
        if not data:
            raise OSError(f"the server sent the file again, but shorter than the {count} bytes already read")
        count -= len(data)
