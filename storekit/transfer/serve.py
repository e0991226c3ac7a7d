"""`storekit cache serve`: any store served over HTTP as a Nix binary cache (like nix-serve).

Routes: `/nix-cache-info`, `/<hashpart>.narinfo`, `/nar/<hashpart>-<nar hash>.nar[.xz|.zst]`. A NAR's
URL names the path and its NAR hash, so the server needs no state: it looks the path up, checks the
hash is still the one it advertised, and streams `dump_path` output straight to the socket
(uncompressed with a `Content-Length` and `Range` support, so an interrupted download resumes; xz or
zstd compressed on the fly, chunked). Narinfos are signed on the fly when a secret key is given. It
binds to 127.0.0.1 unless told otherwise: serving a store to a network is a decision. The HTTP
server is aiohttp's (`http_server.py`); `pull_through.py` is the other kind of `cache serve`, a
cache of upstream caches.

A storekit extension, given a `relocator` (`cache serve --relocate-from`): `GET /relocate/<hash part>`
relocates the closure of the upstream path with that hash part and answers its new store path as
text (404: the upstream lacks it; 500: refused, the reason in the body and the server's log). Real
Nix never calls it; it is how a client learns a content-addressed name it cannot compute itself.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from aiohttp import web

from storekit.errors import StorekitError
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.signing import SecretKey
from storekit.store.base import Store, ValidPathInfo
from storekit.store.compression import EXTENSIONS, compressor_for
from storekit.store.local import LocalStore
from storekit.store.overlay import OverlayStore
from storekit.storepath import StorePath
from storekit.transfer.http_server import HttpServer, Log, byte_range, byte_slice, not_found, text

T = TypeVar("T")
COMPRESSIONS = ("none", "xz", "zstd")
_NARINFO = re.compile(r"^/([0-9a-df-np-sv-z]{32})\.narinfo$")
_RELOCATE = re.compile(r"^/relocate/([0-9a-df-np-sv-z]{32})$")
_NAR = re.compile(r"^/nar/([0-9a-df-np-sv-z]{32})-([0-9a-df-np-sv-z]{52})\.nar(\.xz|\.zst)?$")
NAR_TYPE = "application/x-nix-nar"
#: The largest NAR read whole into memory to be answered (larger ones stream, a chunk at a time).
SMALL_NAR = 64 << 10


class CacheServer(HttpServer):
    """An HTTP server over one store; `url` is where it listens (port 0 picks a free one)."""

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        compression: str = "none",
        secret_keys: Iterable[SecretKey] = (),
        priority: int = 30,
        relocator: Callable[[str], StorePath | None] | None = None,
        log: Log | None = None,
        access_log: bool = False,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise StorekitError(f"cache serve: compression must be one of {', '.join(COMPRESSIONS)}")
        self.store = store
        self.compression = compression
        self.secret_keys = tuple(secret_keys)
        self.cache_info = NixCacheInfo(store.store_dir.path, want_mass_query=True, priority=priority)
        self.relocator = relocator
        self.store_lock = threading.Lock()  # one store handle (one SQLite connection) for all threads
        self._local = isinstance(store, (LocalStore, OverlayStore))
        super().__init__(host, port, log=log, access_log=access_log)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/nix-cache-info":
            return text(self.cache_info.to_text(), "text/x-nix-cache-info")
        if m := _NARINFO.match(path):
            narinfo = await self._lookup(self.narinfo, m.group(1))
            if narinfo is not None:
                return text(narinfo.to_text(), "text/x-nix-narinfo")
        elif (m := _NAR.match(path)) and (m.group(3) or "") == EXTENSIONS[self.compression]:
            if self.compression == "none":
                found = await self._lookup(self.nar, m.group(1), m.group(2))
            else:  # compressing even a small NAR is too long to hold the loop for
                found = await self.blocking(self.nar, m.group(1), m.group(2))
            if found is not None:
                return await self._send_nar(request, *found)
        elif m := _RELOCATE.match(path):
            new = await self.blocking(self.relocated, m.group(1))
            if new is not None:
                return text(f"{new}\n")
        return not_found()

    async def _lookup(self, fn: Callable[..., T], *args: str) -> T:
        """A narinfo's or a NAR's lookup: on the event loop itself for a store on this machine, whose
        database answers a read at once (WAL: a writer never blocks it) and whose small NARs are read
        whole from local files, in less time than handing the call to a thread and back took; on the
        thread pool for a store elsewhere (a cache over the network). A large NAR's chunks are read on
        the pool either way (`stream`)."""
        if self._local:
            return fn(*args)
        return await self.blocking(fn, *args)

    def narinfo(self, hash_part: str) -> NarInfo | None:
        with self.store_lock:
            path = self.store.query_path_from_hash_part(hash_part)
            info = None if path is None else self.store.lookup_path_info(path)
        return None if info is None else self._narinfo_of(info)

    def _narinfo_of(self, info: ValidPathInfo) -> NarInfo:
        plain = self.compression == "none"
        return NarInfo(
            store_path=info.path,
            url=f"nar/{info.path.hash_part}-{info.nar_hash.nix32}.nar{EXTENSIONS[self.compression]}",
            nar_hash=info.nar_hash,
            nar_size=info.nar_size,
            compression=self.compression,
            file_hash=info.nar_hash if plain else None,
            file_size=info.nar_size if plain else 0,
            references=tuple(sorted(r.base_name for r in info.references)),
            deriver=info.deriver.base_name if info.deriver else None,
            sigs=tuple(sorted(info.sigs | {k.sign(info.fingerprint()) for k in self.secret_keys})),
            ca=info.ca,
        )

    def relocated(self, hash_part: str) -> StorePath | None:
        """`/relocate/<hash part>`: the new path of that upstream path (None: no relocator, or unknown)."""
        if self.relocator is None:
            return None
        with self.store_lock:
            return self.relocator(hash_part)

    def nar(self, hash_part: str, nar_hash: str) -> tuple[int, Iterator[bytes] | bytes] | None:
        """(NAR size, its chunks) of the path with this hash part, if its NAR hash is still `nar_hash`;
        a NAR of at most `SMALL_NAR` bytes comes whole (compressed as served): one turn on the thread
        pool instead of one per chunk, the most of a small path's cost to this server."""
        with self.store_lock:
            path = self.store.query_path_from_hash_part(hash_part)
            info = None if path is None else self.store.lookup_path_info(path)
            if info is None or info.nar_hash.nix32 != nar_hash:
                return None
            chunks = self.store.nar_from_path(info.path)
            if info.nar_size > SMALL_NAR:
                return info.nar_size, chunks
            if self.compression != "none":
                chunks = _compressed(chunks, self.compression)
            return info.nar_size, b"".join(chunks)

    async def _send_nar(
        self, request: web.Request, size: int, chunks: Iterator[bytes] | bytes
    ) -> web.StreamResponse:
        """Uncompressed: a Content-Length and `Range`; compressed on the fly: chunked, the whole NAR
        (a small one, whole with its length)."""
        if isinstance(chunks, bytes):
            return _whole(request, size, chunks, self.compression)
        if self.compression != "none":
            return await self.stream(
                request, _compressed(chunks, self.compression), content_type=NAR_TYPE, length=None
            )
        headers = {"Accept-Ranges": "bytes"}
        try:
            wanted = byte_range(request.headers.get("Range"), size)
        except web.HTTPException:
            await self.blocking(_close, chunks)
            raise
        if wanted is None:
            return await self.stream(request, chunks, content_type=NAR_TYPE, length=size, headers=headers)
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        part = byte_slice(chunks, start, end)
        return await self.stream(
            request, part, content_type=NAR_TYPE, length=end - start, status=206, headers=headers
        )


def _whole(request: web.Request, size: int, data: bytes, compression: str) -> web.Response:
    """A small NAR's answer: its bytes (or the part a `Range` asks for, uncompressed only)."""
    if compression != "none":
        return web.Response(body=data, content_type=NAR_TYPE)
    headers = {"Accept-Ranges": "bytes"}
    wanted = byte_range(request.headers.get("Range"), size)
    if wanted is None:
        return web.Response(body=data, content_type=NAR_TYPE, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return web.Response(body=data[start:end], status=206, content_type=NAR_TYPE, headers=headers)


def _compressed(chunks: Iterator[bytes], compression: str) -> Iterator[bytes]:
    """A NAR compressed as it is made (xz as Nix's settings make it, or zstd)."""
    compressor = compressor_for(compression)
    assert compressor is not None
    try:
        for chunk in chunks:
            if data := compressor.compress(chunk):
                yield data
        yield compressor.flush()
    finally:
        _close(chunks)


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
