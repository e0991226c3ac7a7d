"""Substitution as one stream: a path's NAR is asked for as soon as its narinfo arrives, and its
references are asked for at once, while the rest of the closure is still being discovered.

Walking a closure a level at a time, then downloading, leaves the connections idle at the end of
each level and between the two phases; on a closure of many small paths that idle time is most of
the copy (NixOS/nix#5118). Here `walk_closure` keeps every query it can make in flight and hands
each answer to the caller's `on_info` as it comes (in `copy_closure`: check the signature, skip what
the destination has, start staging the path). Nothing is installed before the walk is complete and
every path passed the signature policy, so a failure anywhere still leaves the destination as it was.

A source (`CacheSource`) answers lookups as futures and, for an `http(s)://` cache, fetches a small
NAR (up to `SMALL_NAR`) on the transport's event loop (`store.http_async`), so the worker that
stages it finds it downloaded; any other store is queried on a thread pool (`StoreSource`) and its
NARs are read by the worker, as before. Either way the NAR passes the same checks
(`BinaryCacheStore.open_nar`: file size and hash, decompression bounded by `NarSize`; the NAR hash
by the destination).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Protocol

from storekit.errors import PathNotValid, StorekitError, SubstituteError
from storekit.store.base import Store, ValidPathInfo
from storekit.store.compression import CHUNK
from storekit.store.substituters import Substituters
from storekit.store.transport import Download, HttpTransport, name_problem
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.store.binary_cache import BinaryCacheStore

#: The largest NAR file (as its narinfo's `FileSize` says) downloaded ahead into memory; a larger one
#: streams to the worker that stages it (constant memory, resumed with `Range`).
SMALL_NAR = 256 << 10
#: Paths staged at most while the closure is still being walked (their NARs fetched ahead).
STAGE_AHEAD = 256
#: Threads staging NARs downloaded ahead (restoring a small NAR is a few system calls: more threads
#: would mostly wait for each other's turn at the GIL).
AHEAD_JOBS = 2
#: Lookups in flight at once from a store queried on threads (an HTTP cache's are bounded by its
#: connections instead).
QUERY_JOBS = 16


class Source(Protocol):
    """Where a walk's paths come from: lookups as futures, NARs fetched ahead or on demand."""

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]: ...

    def fetch(self, info: ValidPathInfo) -> bool:
        """Start getting `info`'s NAR now, for a later `nar_of`; False where there is no gain (the
        worker then reads the NAR itself)."""

    def nar_of(self, info: ValidPathInfo) -> Iterator[bytes]:
        """The NAR of `info` (on a worker thread: may wait for a download `fetch` started)."""

    def close(self) -> None:
        """Cancel what is still in flight."""


def source_for(src: Store, queries: ThreadPoolExecutor) -> Source:
    from storekit.store.binary_cache import BinaryCacheStore

    if isinstance(src, BinaryCacheStore) and isinstance(src.transport, HttpTransport):
        return CacheSource(src, src.transport)
    return StoreSource(src, queries)


class StoreSource:
    """Any store: lookups on a thread pool, NARs read by the worker."""

    def __init__(self, src: Store, queries: ThreadPoolExecutor) -> None:
        self.src, self.queries = src, queries

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]:
        return self.queries.submit(self.src.lookup_path_info, path)

    def fetch(self, info: ValidPathInfo) -> bool:
        return False

    def nar_of(self, info: ValidPathInfo) -> Iterator[bytes]:
        return self.src.nar_from_path(info.path)

    def close(self) -> None:
        pass


class CacheSource:
    """An `http(s)://` cache: narinfos and small NARs on the transport's event loop."""

    def __init__(self, store: BinaryCacheStore, transport: HttpTransport) -> None:
        self.store, self.transport = store, transport
        self._guard = threading.Lock()
        self._nars: dict[StorePath, Future[Download | None]] = {}
        self._closed = False

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]:
        return self.transport.fast.submit(self._lookup(path))

    async def _lookup(self, path: StorePath) -> ValidPathInfo | None:
        from storekit.store.binary_cache import path_info_of

        if path.store_dir != self.store.store_dir:
            return None
        data = await self.transport.read_async(self.store.narinfo_name(path.hash_part))
        narinfo = self.store.narinfo_from_bytes(path.hash_part, data)
        return None if narinfo is None or narinfo.store_path != path else path_info_of(narinfo)

    def fetch(self, info: ValidPathInfo) -> bool:
        narinfo = self.store.lookup_narinfo(info.path)  # remembered by the lookup: no request
        if narinfo is None or name_problem(narinfo.url) is not None:
            return False  # `open_nar` words the refusal when the worker gets there
        if not 0 < narinfo.file_size <= SMALL_NAR:
            return False
        with self._guard:
            if self._closed:
                return False
            if info.path not in self._nars:
                self._nars[info.path] = self.transport.fast.submit(
                    self.transport.open_async(narinfo.url, narinfo.file_size)
                )
        return True

    def nar_of(self, info: ValidPathInfo) -> Iterator[bytes]:
        with self._guard:
            future = self._nars.pop(info.path, None)
        narinfo = self.store.lookup_narinfo(info.path)
        if future is None or narinfo is None:
            return self.store.nar_from_path(info.path)
        return _chunks(self.store.open_nar(narinfo, future.result))

    def close(self) -> None:
        with self._guard:
            self._closed = True
            futures, self._nars = list(self._nars.values()), {}
        for future in futures:
            future.cancel()
            if future.done() and not future.cancelled() and future.exception() is None:
                download = future.result()
                if download is not None:
                    download.close()


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def walk_closure(
    source: Source,
    roots: Iterable[StorePath],
    on_info: Callable[[ValidPathInfo], None],
    uri: str,
) -> dict[StorePath, ValidPathInfo]:
    """The infos of the closure of `roots`, each path's references asked for as soon as its info
    arrives; `on_info` sees each info once, on this thread, in the order they arrive.

    A path `source` lacks raises `PathNotValid` (naming `uri`); any error (from a lookup or from
    `on_info`) cancels the lookups still waiting and is raised here.
    """
    infos: dict[StorePath, ValidPathInfo] = {}
    answers: queue.SimpleQueue[tuple[StorePath, Future[ValidPathInfo | None]]] = queue.SimpleQueue()
    waiting: dict[StorePath, Future[ValidPathInfo | None]] = {}

    def ask(path: StorePath) -> None:
        future = source.lookup(path)
        waiting[path] = future
        future.add_done_callback(lambda f: answers.put((path, f)))

    try:
        for root in sorted(set(roots)):
            ask(root)
        while waiting:
            path, future = answers.get()
            del waiting[path]
            info = future.result()
            if info is None:
                raise PathNotValid(str(path), uri)
            infos[path] = info
            for ref in sorted(info.references):
                if ref not in infos and ref not in waiting:
                    ask(ref)
            on_info(info)
    finally:
        for future in waiting.values():
            future.cancel()
        for future in waiting.values():  # let none run on after the walk (a query in the pool)
            with contextlib.suppress(BaseException):
                future.exception()
    return infos


def stage_while_walking(
    src: Store,
    roots: Iterable[StorePath],
    admit: Callable[[ValidPathInfo], ValidPathInfo | None],
    sink: object,
    pool: ThreadPoolExecutor,
    started: dict[StorePath, Future[object]],
) -> tuple[dict[StorePath, ValidPathInfo], list[StorePath], Callable[[ValidPathInfo], Future[object]]]:
    """Walk the closure of `roots` in `src` and stage what the destination lacks as it is found.

    `admit(info)` gives the info to install (None: the destination has the path; it raises for a
    path to refuse, such as an untrusted one). The first `STAGE_AHEAD` admitted paths are staged at
    once on `pool` (into `started`, path -> future); a staging that fails is raised when its turn to
    be installed comes, as it would be without the walk (the paths before it are installed). Returns
    the closure's infos, the admitted paths (sorted) and how to start staging one more path.
    On an error, everything started is cancelled or discarded before it is raised.
    """
    from storekit.transfer.local_sink import LocalSink

    assert isinstance(sink, LocalSink), "staging in any order is safe in a local store only"
    missing: list[StorePath] = []
    with ThreadPoolExecutor(QUERY_JOBS, thread_name_prefix="storekit-query") as queries:
        source = source_for(src, queries)
        sink.nar_of = source.nar_of
        small = ThreadPoolExecutor(AHEAD_JOBS, thread_name_prefix="storekit-stage")

        def finish() -> None:
            source.close()
            small.shutdown(cancel_futures=True)

        sink.at_close(finish)

        def start(info: ValidPathInfo) -> Future[object]:
            return (small if source.fetch(info) else pool).submit(sink.prepare, info)

        def on_info(info: ValidPathInfo) -> None:
            wanted = admit(info)
            if wanted is None:
                return
            missing.append(info.path)
            if len(started) < STAGE_AHEAD:
                started[info.path] = start(wanted)

        try:
            infos = walk_closure(source, roots, on_info, src.uri)
        except BaseException:
            abandon(sink, started.values())
            started.clear()
            raise
    return infos, sorted(missing), start


def failure_naming(e: StorekitError, failed: list[StorePath], src: Store) -> StorekitError:
    """`e`, or an error naming the paths it stopped when `e` does not (a lower layer's words)."""
    if any(str(p) in str(e) for p in failed):
        return e
    uri = (src.source_of(failed[0]) if isinstance(src, Substituters) else src).uri
    what = f"'{failed[0]}'" if len(failed) == 1 else f"{len(failed)} paths from '{failed[0]}' on"
    return SubstituteError(f"cannot copy {what} from '{uri}': {e}")


class _Discards(Protocol):
    def discard(self, prepared: object) -> None: ...


def abandon(
    sink: _Discards, futures: Iterable[Future[object]], prepared: Iterable[tuple[ValidPathInfo, object]] = ()
) -> None:
    """Let go of paths prepared but not committed: cancel what has not started, discard the rest."""
    futures = list(futures)
    for future in futures:
        future.cancel()
    done = [item for _, item in prepared]
    for future in futures:
        if not future.cancelled():
            with contextlib.suppress(BaseException):
                done.append(future.result())
    for item in done:
        with contextlib.suppress(BaseException):
            sink.discard(item)
