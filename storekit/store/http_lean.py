"""Small answers of an `http://` cache on the event loop, on connections of our own: llhttp parses.

Substituting a closure of many small paths is two requests per path, each answered with a few hundred
bytes. Through aiohttp (`http_async`) a request cost about 150 µs of Python (the request object, URL
handling, cookie jar, tracing hooks, timers), and importing aiohttp at all about 0.25 s of CPU (two
SSL contexts made at import, the CA bundle parsed twice) for every `storekit copy` from a cache:
together a quarter of the client's CPU on 1,000 small paths. Here a request is one formatted line
written on a kept-alive connection (an `asyncio.Protocol` on the loop, at most `connections` of
them), and the answer is parsed by llhttp, Node.js's HTTP parser, through httptools (uvloop's
authors' binding): a third of the CPU per request, and nothing to import but a C extension.

Only the plain case is handled, as in `http_async`, whose interface this keeps (`LeanHttp` is an
`AsyncHttp` with another `get`): a `200` with its whole body (`Content-Length` or chunked), or a
missing file (403/404/410). Anything else (a redirect, another status, a body delimited by the end
of the connection, a connection refused or broken before the answer) gets `FALLBACK`, and the caller
asks again through `http_client.HttpClient` (urllib3), which follows redirects within the origin,
words every failure and resumes with `Range`; a body cut midway comes back as `Partial` for that.
A connection the server closed while it was idle (a keep-alive timeout) is found out when a request
on it gets no byte back: that request is sent once more, on a new connection.
https:// caches stay on aiohttp (its TLS handling is not redone here).
"""

from __future__ import annotations

import asyncio
import collections
import time
import urllib.parse

import httptools

from storekit.errors import SubstituteError
from storekit.store.http_async import FALLBACK, AsyncHttp, Partial, Whole, _broken, _Fallback
from storekit.store.http_limits import MISSING

Answer = Whole | Partial | _Fallback | None


class LeanHttp(AsyncHttp):
    """`AsyncHttp` for an `http://` cache, its `get` on this module's connections (`_Pool`)."""

    def __init__(
        self, cache_url: str, *, connect_timeout: float, read_timeout: float, connections: int
    ) -> None:
        super().__init__(
            cache_url, connect_timeout=connect_timeout, read_timeout=read_timeout, connections=connections
        )
        parts = urllib.parse.urlsplit(cache_url)
        assert parts.scheme == "http", "https:// stays on aiohttp"
        self._host, self._port = parts.hostname or "localhost", parts.port or 80
        self._netloc = parts.netloc.rsplit("@", 1)[-1]
        self._origin = f"http://{self._netloc}/"
        self._pool: _Pool | None = None

    def _conns(self) -> _Pool:
        if self._pool is None:  # on the loop: its connections belong to it
            self._pool = _Pool(self)
            self._sessions[0] = self._pool  # closed by `close()` or the finalizer, as a session is
        return self._pool

    async def get(self, url: str, limit: int) -> Whole | Partial | _Fallback | None:
        """`url`'s body (at most `limit` bytes are read: more is the caller's to refuse), None when
        missing, or `FALLBACK`."""
        if url.startswith(self._origin):  # the usual case: a name under the cache's URL
            target = url[len(self._origin) - 1 :]
        else:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "http" or parts.netloc.rsplit("@", 1)[-1] != self._netloc:
                return FALLBACK  # not this cache's origin: the synchronous client decides
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if "#" in target or not target.startswith("/"):
            return FALLBACK
        request = (f"GET {target} HTTP/1.1\r\nHost: {self._netloc}\r\nUser-Agent: storekit\r\n\r\n").encode(
            "latin-1"
        )
        pool = self._conns()
        for attempt in range(2):
            try:
                conn = await pool.acquire(url)
            except OSError:  # refused, unreachable: the synchronous client words it
                return FALLBACK
            reused = conn.served > 0
            try:
                answer = await conn.exchange(request, limit)
            finally:
                pool.release(conn)
            if isinstance(answer, _Stale):
                if reused and not attempt:
                    continue
                return FALLBACK
            return answer
        return FALLBACK

    def _silence(self) -> str:
        return f"the server sent nothing for {self.read_timeout:g} s (read timeout)"

    async def _close_session(self) -> None:
        pool, self._pool, self._sessions[0] = self._pool, None, None
        if pool is not None:
            await pool.close()


class _Stale:
    def __repr__(self) -> str:
        return "STALE"


#: The connection closed before any byte of the answer: on a reused connection, ask again once.
_STALE = _Stale()


class _Pool:
    """At most `client.connections` connections to the cache's origin; idle ones kept for reuse."""

    def __init__(self, client: LeanHttp) -> None:
        self.client = client
        self.idle: list[_Conn] = []
        self.open = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False

    async def acquire(self, url: str) -> _Conn:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if conn.usable():
                    return conn
                self.open -= 1
            if self.open < self.client.connections:
                self.open += 1
                try:
                    return await self._connect(url)
                except BaseException:
                    self.open -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake()  # woken, but cancelled meanwhile: pass the turn on
                raise

    async def _connect(self, url: str) -> _Conn:
        client = self.client
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(client), client._host, client._port),
                client.connect_timeout,
            )
        except TimeoutError as e:
            reason = f"no connection within the connect timeout of {client.connect_timeout:g} s"
            raise SubstituteError(client._unreachable(url, reason)) from e
        return conn

    def release(self, conn: _Conn) -> None:
        if conn.usable() and not self.closed:
            self.idle.append(conn)
        else:
            conn.close()
            self.open -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()
        self.open -= len(idle)


class _Conn(asyncio.Protocol):
    """One kept-alive connection: one request at a time, its answer parsed by llhttp as it arrives."""

    def __init__(self, client: LeanHttp) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()  # made by the loop's `create_connection`
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.served = 0
        self.broken = False
        self._reset()

    def _reset(self) -> None:
        self.done: asyncio.Future[Answer | _Stale] | None = None
        self.limit = 0
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.parts: list[bytes] = []
        self.got = 0
        self.started = False  # a byte of the answer arrived
        self.complete = False
        self.timer: asyncio.TimerHandle | None = None
        self.last = 0.0

    def usable(self) -> bool:
        return not self.broken and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.close()

    # --- one exchange -------------------------------------------------------------------------------

    async def exchange(self, request: bytes, limit: int) -> Answer | _Stale:
        assert self.transport is not None and self.done is None
        loop = self.loop
        done: asyncio.Future[Answer | _Stale] = loop.create_future()
        self.done = done
        self.limit = limit
        self.last = time.monotonic()
        self.timer = loop.call_at(loop.time() + self.client.read_timeout, self._check_silence)
        self.transport.write(request)
        try:
            return await done
        finally:
            if self.timer is not None:
                self.timer.cancel()
            if not self.complete:  # cancelled or cut: what is left of the answer is not read
                self.close()
            self.served += 1
            self._reset()

    def _finish(self, answer: Answer | _Stale) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(answer)

    def _check_silence(self) -> None:
        left = self.last + self.client.read_timeout - time.monotonic()
        if left > 0.001:
            self.timer = self.loop.call_later(left, self._check_silence)
            return
        self.timer = None
        self._cut(self.client._silence())

    def _cut(self, cause: str) -> None:
        """The answer ends here, before its end: what came is `Partial` where it can resume."""
        self.close()
        if not self.started:  # closed or broken before the answer: stale, if it was kept alive
            self._finish(FALLBACK if cause == self.client._silence() else _STALE)
        elif self.status != 200:
            self._finish(FALLBACK)
        else:
            length = self.headers.get(b"content-length")
            size = int(length) if length is not None and length.isdigit() else None
            if cause == _CLOSED:
                cause = f"the connection closed at byte {self.got} of {size}"
            self._finish(_broken(self.parts, size, self._validator(), cause))

    def _validator(self) -> str | None:
        etag = self.headers.get(b"etag", b"").decode("latin-1")
        if etag and not etag.startswith("W/"):
            return etag
        modified = self.headers.get(b"last-modified")
        return None if modified is None else modified.decode("latin-1")

    # --- asyncio.Protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.done is None or self.done.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted to frame answers
            return
        self.started = True
        self.last = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.close()
            self._finish(FALLBACK)
        except httptools.HttpParserError:
            self.close()
            self._finish(FALLBACK)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; `connection_lost` words it

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        if self.done is not None and not self.done.done():
            self._cut(_CLOSED if exc is None else f"the connection broke: {exc}")

    # --- llhttp's callbacks ------------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        headers = self.headers
        if (
            self.status == 200
            and b"content-length" not in headers
            and b"chunked" not in headers.get(b"transfer-encoding", b"").lower()
        ):
            self.close()  # a body up to the connection's end: not framed, the slow path's to read
            self._finish(FALLBACK)

    def on_body(self, body: bytes) -> None:
        if self.got < self.limit:
            self.parts.append(body[: self.limit - self.got])
        self.got += len(body)
        if self.got >= self.limit and self.status == 200:
            self.close()  # the caller refuses what is longer: the rest is not read
            self._finish(self._answer())

    def on_message_complete(self) -> None:
        self.complete = not self.broken
        if not self.parser.should_keep_alive():
            self.broken = True
            if self.transport is not None:
                self.transport.close()
        if self.status in MISSING:
            self._finish(None)
        elif self.status != 200:
            self._finish(FALLBACK)
        else:
            self._finish(self._answer())

    def _answer(self) -> Whole:
        encoding = self.headers.get(b"content-encoding")
        data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        return Whole(data, None if encoding is None else encoding.decode("latin-1"), self._validator())


_CLOSED = "closed"
