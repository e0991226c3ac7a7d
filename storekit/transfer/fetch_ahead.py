"""Substitution as one stream: a path's NAR is asked for as soon as its narinfo arrives, and its
references are asked for at once, while the rest of the closure is still being discovered.

Walking a closure a level at a time, then downloading, leaves the connections idle at the end of
each level and between the two phases; on a closure of many small paths that idle time is most of
the copy (NixOS/nix#5118). Here `walk_closure` keeps every query it can make in flight and hands
each answer to the caller's `on_info` as it comes (in `copy_closure`: check the signature, skip what
the destination has, start staging the path). Nothing is installed before the walk is complete and
every path passed the signature policy, so a failure anywhere still leaves the destination as it was.

From an `http(s)://` cache (`cache_source.CacheSource`) the walk runs on the transport's event loop,
which also downloads and stages each small path as soon as it is admitted; any other store is
queried on a thread pool (`StoreSource`) and its NARs are read by the workers. Either way a NAR
passes the same checks (`BinaryCacheStore.open_nar`: file size and hash, decompression bounded by
`NarSize`; the NAR hash by the staging).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from storekit.errors import PathNotValid, StorekitError, SubstituteError
from storekit.store.base import Store, ValidPathInfo
from storekit.store.substituters import Substituters
from storekit.store.transport import HttpTransport
from storekit.storepath import StorePath

#: Paths staged at most on workers while the closure is still being walked (a source that stages
#: on its own loop, `stage_ahead`, is not counted: it holds one download per connection at most).
STAGE_AHEAD = 256
#: Lookups in flight at once from a store queried on threads (an HTTP cache's are bounded by its
#: connections instead).
QUERY_JOBS = 16

Prepare = Callable[[ValidPathInfo, Iterable[bytes]], object]


class Source(Protocol):
    """Where a walk's paths come from: lookups as futures, NARs fetched ahead or on demand."""

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]: ...

    def walk(
        self, roots: Iterable[StorePath], on_infos: Callable[[list[ValidPathInfo]], None], uri: str
    ) -> dict[StorePath, ValidPathInfo]:
        """`walk_closure` of this source, the infos passed on in runs (`on_infos` may run on another
        thread, one call at a time)."""

    def stage_ahead(self, info: ValidPathInfo, prepare: Prepare) -> Future[object] | None:
        """Fetch `info`'s NAR and stage it (`prepare`) where the source can do both itself; None
        where it cannot (a worker then stages it)."""

    def fetch(self, info: ValidPathInfo) -> bool:
        """Start getting `info`'s NAR now, for a later `nar_of`; False where there is no gain (the
        worker then reads the NAR itself)."""

    def nar_of(self, info: ValidPathInfo) -> Iterator[bytes]:
        """The NAR of `info` (on a worker thread: may wait for a download `fetch` started)."""

    def close(self) -> None:
        """Cancel what is still in flight; no staging the source started runs once this returns."""


def source_for(src: Store, queries: ThreadPoolExecutor) -> Source:
    from storekit.store.binary_cache import BinaryCacheStore

    if isinstance(src, BinaryCacheStore) and isinstance(src.transport, HttpTransport):
        from storekit.transfer.cache_source import CacheSource

        return CacheSource(src, src.transport)
    return StoreSource(src, queries)


class StoreSource:
    """Any store: lookups on a thread pool, NARs read by the worker."""

    def __init__(self, src: Store, queries: ThreadPoolExecutor) -> None:
        self.src, self.queries = src, queries

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]:
        return self.queries.submit(self.src.lookup_path_info, path)

    def walk(
        self, roots: Iterable[StorePath], on_infos: Callable[[list[ValidPathInfo]], None], uri: str
    ) -> dict[StorePath, ValidPathInfo]:
        return walk_closure(self, roots, lambda info: on_infos([info]), uri)

    def stage_ahead(self, info: ValidPathInfo, prepare: Prepare) -> Future[object] | None:
        return None

    def fetch(self, info: ValidPathInfo) -> bool:
        return False

    def nar_of(self, info: ValidPathInfo) -> Iterator[bytes]:
        return self.src.nar_from_path(info.path)

    def close(self) -> None:
        pass


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
    admit: Callable[[list[ValidPathInfo]], list[ValidPathInfo | None]],
    sink: object,
    pool: ThreadPoolExecutor,
    started: dict[StorePath, Future[object]],
) -> tuple[dict[StorePath, ValidPathInfo], list[StorePath], Callable[[ValidPathInfo], Future[object]]]:
    """Walk the closure of `roots` in `src` and stage what the destination lacks as it is found.

    `admit(infos)` gives, for each of a run of infos, the info to install (None: the destination has
    the path; it raises for a path to refuse, such as an untrusted one). Each admitted path is
    staged at once (into `started`, path -> future): by the source itself where it can
    (`stage_ahead`), else on `pool`, the first `STAGE_AHEAD` of those. A staging that fails is
    raised when its turn to be installed comes, as it would be without the walk (the paths before
    it are installed). Returns the closure's infos, the admitted paths (sorted) and how to start
    staging one more path.
    On an error, everything started is cancelled or discarded before it is raised.
    """
    from storekit.transfer.local_sink import LocalSink

    assert isinstance(sink, LocalSink), "staging in any order is safe in a local store only"
    missing: list[StorePath] = []
    with ThreadPoolExecutor(QUERY_JOBS, thread_name_prefix="storekit-query") as queries:
        source = source_for(src, queries)
        sink.nar_of = source.nar_of
        sink.at_close(source.close)
        on_workers = [0]

        def start(info: ValidPathInfo) -> Future[object]:
            ahead = source.stage_ahead(info, sink.prepare)
            if ahead is not None:
                return ahead
            source.fetch(info)
            return pool.submit(sink.prepare, info)

        def on_infos(infos: list[ValidPathInfo]) -> None:
            for info, wanted in zip(infos, admit(infos), strict=True):
                if wanted is None:
                    continue
                missing.append(info.path)
                ahead = source.stage_ahead(wanted, sink.prepare)
                if ahead is not None:
                    started[info.path] = ahead
                elif on_workers[0] < STAGE_AHEAD:
                    on_workers[0] += 1
                    source.fetch(wanted)
                    started[info.path] = pool.submit(sink.prepare, wanted)

        try:
            infos = source.walk(roots, on_infos, src.uri)
        except BaseException:
            source.close()  # stagings on the source's loop stop before their trees are let go
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
