"""The HTTP server under `storekit cache serve`: aiohttp's, on an event loop of its own.

Why aiohttp rather than the standard library's `http.server`: HTTP/1.1 keep-alive, chunked
encoding, HEAD, `Range` on files (with sendfile), limits on request lines and headers and idle
timeouts come from a maintained server, and one event loop holds many idle keep-alive connections
where `http.server` kept a thread per connection. Handlers are async; the stores under them are
synchronous (SQLite, files, urllib), so a store call that may wait runs on a thread pool
(`blocking`) and the event loop moves bytes (a subclass may answer a read that cannot wait, such as
a local store's, on the loop itself: `CacheServer._lookup`).

`HttpServer` keeps the socketserver-like interface its callers and tests used: the socket is bound
in the constructor (so `url` is known at once and a taken port is a `StorekitError`),
`serve_forever()` runs until `shutdown()` is called from another thread (or Ctrl-C), and
`server_close()` releases the socket. Subclasses answer `handle(request)`; a `StorekitError` from it
becomes a 500 whose body and log line say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from storekit.errors import StorekitError

T = TypeVar("T")
Log = Callable[[str], None]

#: An idle keep-alive connection is closed after this long (nginx's default is 75 s too).
KEEPALIVE_S = 75.0
#: A client that accepts no byte of an answer for this long is cut off.
SEND_TIMEOUT_S = 60.0
#: On shutdown, answers in progress get this long to finish.
SHUTDOWN_S = 2.0


class HttpServer(ABC):
    """An aiohttp server on one bound socket; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log: Log | None = None,
        access_log: bool = False,
        workers: int = 16,
        send_timeout: float = SEND_TIMEOUT_S,
    ) -> None:
        self.log = log
        self.access_log = access_log
        self.send_timeout = send_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._sock = socket.create_server((host, port), family=family, backlog=128)
        except OSError as e:
            raise StorekitError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        self.server_address: tuple[str, int] = self._sock.getsockname()[:2]
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cache-serve")
        self._state = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @abstractmethod
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The answer to a GET or HEAD; raise `web.HTTPNotFound` (or return `not_found()`) for a miss."""

    # --- running -----------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until `shutdown()` (another thread) or KeyboardInterrupt (the CLI's Ctrl-C)."""
        self._stopped.clear()
        try:
            asyncio.run(self._serve())
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` (called from another thread) and wait until it returned."""
        with self._state:
            self._stop_requested = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
            self._stopped.wait()

    def server_close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sock.close()

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_close()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        app.router.add_route("HEAD", "/{tail:.*}", self.handle)
        runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=KEEPALIVE_S, shutdown_timeout=SHUTDOWN_S
        )
        await runner.setup()
        stop = asyncio.Event()
        with self._state:  # a shutdown() before this point finds no loop and leaves the flag instead
            stopped_early = self._stop_requested
            if not stopped_early:
                self._loop, self._stop = asyncio.get_running_loop(), stop
        if stopped_early:
            await runner.cleanup()
            return
        try:
            await web.SockSite(runner, self._sock).start()
            await stop.wait()
        finally:
            with self._state:
                self._loop = self._stop = None
            await runner.cleanup()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """A `StorekitError` is a 500 saying why (and a log line); with `access_log`, one line a request."""
        try:
            response = await handler(request)
        except web.HTTPException as e:  # raised, not returned: aiohttp wants it so
            if self.access_log:
                self._say(f'{request.remote} "{request.method} {request.path_qs}" {e.status}')
            raise
        except StorekitError as e:
            self._say(f"{request.method} {request.path}: {e}")
            response = text(f"{e}\n", status=500)
        if self.access_log:
            self._say(f'{request.remote} "{request.method} {request.path_qs}" {response.status}')
        return response

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    # --- helpers for handlers ----------------------------------------------------------------------

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous (store, file, network) call on the server's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def stream(
        self,
        request: web.Request,
        chunks: Iterator[bytes],
        *,
        content_type: str,
        length: int | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send `chunks` (pulled on the thread pool): `length` bytes, or chunked when None.

        Once the status line is out, a failure can only be told by closing the connection early: a
        client then sees a body shorter than its Content-Length (or without its last chunk).
        """
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = content_type
        if length is not None:
            response.content_length = length
        else:
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            if request.method != "HEAD":
                while (chunk := await self.blocking(next, chunks, None)) is not None:
                    async with asyncio.timeout(self.send_timeout):
                        await response.write(chunk)
                await response.write_eof()
        except (ConnectionError, StorekitError, TimeoutError) as e:
            if isinstance(e, ConnectionError):
                why = f"client disconnected ({e.strerror or type(e).__name__})"
            elif isinstance(e, TimeoutError):
                why = f"client accepted nothing for {self.send_timeout:g} s"
            else:
                why = str(e)
            self._say(f"{request.method} {request.path}: answer cut short: {why}")
            if request.transport is not None:
                request.transport.close()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await self.blocking(close)
        return response


def text(body: str, content_type: str = "text/plain", status: int = 200) -> web.Response:
    return web.Response(body=body.encode(), status=status, content_type=content_type)


def not_found() -> web.Response:
    return text("not found\n", status=404)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a `Range: bytes=…` header over `size` bytes; None: send it all.

    One range only (`a-b`, `a-`, `-n`): a NAR download resumes at one offset, and a server may
    answer any other Range with the whole body. A range past the end raises 416.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, dash, last = header[6:].strip().partition("-")
    if not dash or not (first or last) or not all(x.isdigit() for x in (first, last) if x):
        return None
    if last and first and int(last) < int(first):
        return None  # a malformed range is ignored, as RFC 9110 lets a server do
    if not first:  # the last n bytes
        if int(last) == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - int(last)), size
    if int(first) >= size:
        raise _unsatisfiable(size)
    return int(first), min(size, int(last) + 1) if last else size


def _unsatisfiable(size: int) -> web.HTTPRequestRangeNotSatisfiable:
    return web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})


def byte_slice(chunks: Iterator[bytes], start: int, end: int) -> Iterator[bytes]:
    """The bytes [start, end) of a stream of chunks (a resumed download of a NAR made on the fly)."""
    offset = 0
    try:
        for chunk in chunks:
            lo, hi = max(start - offset, 0), min(end - offset, len(chunk))
            offset += len(chunk)
            if lo < hi:
                yield chunk[lo:hi]
            if offset >= end:
                return
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
