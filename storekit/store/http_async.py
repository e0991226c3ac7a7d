"""Small HTTP answers of a binary cache on one event loop: aiohttp's client, for the common case only.

Substituting a closure of many small paths is two requests per path (narinfo, NAR), and with
urllib3 under a thread each request costs about 0.4 ms of Python (header parsing in `http.client`,
pool bookkeeping, thread hand-offs under the GIL). aiohttp parses in C and needs no thread per
request: one event-loop thread per cache (uvloop's loop, libuv in C) holds its kept-alive
connections (at most `connections` at once) and answers for a third of that CPU time, so requests
for a whole closure can be in flight without a thread each.

Only the plain case is handled here: a `200` with its whole body, or a missing file (403/404/410).
Everything else (a redirect, another status, a connection that breaks or stays silent before the
answer) gets `FALLBACK`, and the caller asks again through `http_client.HttpClient`, which follows
redirects within the origin, retries a stale kept-alive connection once and words every failure; a
body that breaks midway comes back as `Partial`, to be resumed there with `Range` by the same
client, so none of its rules are written twice. Timeouts are the client's (`connect-timeout`, the
longest silence `stalled-download-timeout`); a connect timeout is reported at once, in the words
`HttpClient.explain` uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from storekit.errors import SubstituteError
from storekit.store.http_limits import MISSING

if TYPE_CHECKING:
    import aiohttp  # imported where a session is made: an http:// cache never needs it (http_lean)

T = TypeVar("T")


class _Closable(Protocol):
    async def close(self) -> None: ...


_Sessions = list[_Closable | None]


class _Fallback:
    def __repr__(self) -> str:
        return "FALLBACK"


#: Ask again through the synchronous client: this answer is not one handled here.
FALLBACK: Final = _Fallback()


@dataclass(frozen=True, slots=True)
class Whole:
    """A `200` answer read to its end."""

    data: bytes
    encoding: str | None
    validator: str | None


@dataclass(frozen=True, slots=True)
class Partial:
    """A `200` answer whose body broke after `data`, of `size` announced; `cause` says how."""

    data: bytes
    size: int
    validator: str | None
    cause: str


class AsyncHttp:
    """An event loop on a thread of its own with one aiohttp session to one cache; started on first use.

    `close()` stops the loop and drops the connections; a later request starts them again.
    """

    def __init__(
        self, cache_url: str, *, connect_timeout: float, read_timeout: float, connections: int
    ) -> None:
        self.cache_url = cache_url
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.connections = max(1, connections)
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._finalizer: weakref.finalize[[asyncio.AbstractEventLoop, _Sessions], AsyncHttp] | None = None
        self._sessions: _Sessions = [None]  # shared with the finalizer

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = new_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=_run_loop, args=(loop, started), name="storekit-http", daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
                # dropped without `close()`: the loop still stops, its connections closed, quietly
                self._finalizer = weakref.finalize(self, _stop_loop, loop, self._sessions)
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; its result (or exception) in a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def on_loop(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:  # on the loop: a session belongs to the loop that made it
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            )
            self._session = self._sessions[0] = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                headers={"User-Agent": "storekit"},
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._session

    async def get(self, url: str, limit: int) -> Whole | Partial | _Fallback | None:
        """`url`'s body (at most `limit` bytes are read: more is the caller's to refuse), None when
        missing, or `FALLBACK`."""
        import aiohttp

        try:
            response = await self._client().get(url, allow_redirects=False)
        except aiohttp.ConnectionTimeoutError as e:
            reason = f"no connection within the connect timeout of {self.connect_timeout:g} s"
            raise SubstituteError(self._unreachable(url, reason)) from e
        except (aiohttp.ClientError, OSError):  # a silence too: asked again, as urllib3 retries once
            return FALLBACK
        async with response:
            if response.status in MISSING:
                return None
            if response.status != 200:
                return FALLBACK
            headers = response.headers
            length = headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            etag = headers.get("ETag") or ""
            validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
            parts: list[bytes] = []
            got = 0
            try:
                while got < limit and (chunk := await response.content.read(limit - got)):
                    parts.append(chunk)
                    got += len(chunk)
            except aiohttp.SocketTimeoutError:
                return _broken(parts, size, validator, self._silence())
            except (aiohttp.ClientError, OSError) as e:
                return _broken(parts, size, validator, f"the connection broke: {e}")
            if size is not None and got < size and got < limit:
                return _broken(parts, size, validator, f"the connection closed at byte {got} of {size}")
            return Whole(b"".join(parts), headers.get("Content-Encoding"), validator)

    def _silence(self) -> str:
        return f"the server sent nothing for {self.read_timeout:g} s (read timeout)"

    def _unreachable(self, url: str, reason: str) -> str:
        return f"cannot reach binary cache '{self.cache_url}' ({url}): {reason}"

    def close(self) -> None:
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            if self._finalizer is not None:
                self._finalizer.detach()
        if loop is None or thread is None:
            return
        if threading.current_thread() is not thread:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close_session(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()

    async def _close_session(self) -> None:
        session, self._session, self._sessions[0] = self._session, None, None
        if session is not None:
            await session.close()


def _stop_loop(loop: asyncio.AbstractEventLoop, sessions: _Sessions) -> None:
    """The finalizer of an `AsyncHttp` never closed: close its session on its loop, then stop that."""

    async def stop() -> None:
        session, sessions[0] = sessions[0], None
        try:
            if session is not None:
                await session.close()
        finally:
            loop.stop()

    with contextlib.suppress(RuntimeError):  # the loop is gone already (interpreter exit)
        asyncio.run_coroutine_threadsafe(stop(), loop)


def _broken(parts: list[bytes], size: int | None, validator: str | None, cause: str) -> Partial | _Fallback:
    """A body cut midway: resumable where its length was announced and something came, else asked again."""
    data = b"".join(parts)
    if size is None or not data:
        return FALLBACK
    return Partial(data, size, validator, cause)


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop (libuv, in C), or asyncio's where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_loop(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()
