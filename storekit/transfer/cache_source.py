"""Substituting from an `http(s)://` cache: the transport's event loop walks the closure and
downloads the small NARs, two threads restore them.

Profiled (py-spy, strace -c, perf) substituting 1,000 small paths, the copy spent much of its CPU
handing work between threads: the main thread walked the closure with the answers the loop thread
sent it one by one, and each system call of the busy threads (a SQLite query, a file created, a
lock taken) released the GIL and had to win it back from the others: 120,000 futex calls and
10,000 context switches for 1,000 paths. Now the walk runs on the loop thread itself: a narinfo's
arrival is parsed and checked there (the caller's `on_info`: signature policy, is the path in the
destination already), its references are asked for at once, and its NAR download starts; when the
NAR arrives, it goes to one of `STAGERS` threads to be staged (decompressed, restored, hash
checked, canonicalised, locked: `stage_ahead`). The calling thread only waits for the walk, then
commits in dependency order. About 100 context switches remain, and a fifth less CPU.

A NAR downloaded ahead is one whose file (`FileSize`) is at most `SMALL_NAR` and whose NAR
(`NarSize`) at most `INLINE_NAR`; a larger one streams on a worker (`fetch`, `nar_of`). Every NAR
passes the same checks either way (`BinaryCacheStore.open_nar`: file size and hash, decompression
bounded by `NarSize`; the NAR hash and size by the staging).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, BinaryIO

from storekit.errors import PathNotValid
from storekit.store.base import ValidPathInfo
from storekit.store.compression import CHUNK
from storekit.store.transport import Download, HttpTransport, name_problem
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.narinfo import NarInfo
    from storekit.store.binary_cache import BinaryCacheStore

#: The largest NAR file (as its narinfo's `FileSize` says) downloaded ahead into memory; a larger one
#: streams to the worker that stages it (constant memory, resumed with `Range`).
SMALL_NAR = 256 << 10
#: The largest NAR (`NarSize`) downloaded ahead into memory (decompressed, a small file can be large).
INLINE_NAR = 1 << 20

#: Threads restoring the NARs the loop downloaded. A small path's restore is mostly the kernel
#: creating files (on a loaded ext4 without a journal, its inode allocation was 40% of the copy's
#: CPU, in Nix's copy as much), done with the GIL released: two threads put both cores to it, and
#: the loop thread keeps requests going meanwhile. More threads mostly wait for the GIL.
STAGERS = 2

Prepare = Callable[[ValidPathInfo, Iterable[bytes]], object]


class CacheSource:
    """An `http(s)://` cache: the walk and small NARs on the transport's event loop, their staging on
    `STAGERS` threads."""

    def __init__(self, store: BinaryCacheStore, transport: HttpTransport) -> None:
        self.store, self.transport = store, transport
        self._guard = threading.Lock()
        self._nars: dict[StorePath, Future[Download | None]] = {}
        self._stagings: set[asyncio.Task[None]] = set()
        self._stagers = _Stagers(STAGERS)
        self._closed = False

    # --- the walk -------------------------------------------------------------------------------------

    def walk(
        self, roots: Iterable[StorePath], on_infos: Callable[[list[ValidPathInfo]], None], uri: str
    ) -> dict[StorePath, ValidPathInfo]:
        """`fetch_ahead.walk_closure`, on the event loop: `on_infos` runs on the loop thread, with
        the infos that arrived together (one database query for them all, in `copy_closure`)."""
        future = self.transport.fast.submit(self._walk(sorted(set(roots)), on_infos, uri))
        try:
            return future.result()
        except BaseException:
            future.cancel()  # an interrupt while waiting: the walk's tasks are cancelled on the loop
            raise

    async def _walk(
        self, roots: list[StorePath], on_infos: Callable[[list[ValidPathInfo]], None], uri: str
    ) -> dict[StorePath, ValidPathInfo]:
        infos: dict[StorePath, ValidPathInfo] = {}
        asked: set[StorePath] = set(roots)
        arrived: list[ValidPathInfo] = []

        async def hand_on() -> None:
            await asyncio.sleep(0)  # let the answers ready in this turn of the loop join the run
            run = arrived[:]
            arrived.clear()
            on_infos(run)

        async def visit(path: StorePath, group: asyncio.TaskGroup) -> None:
            info = await self._lookup(path)
            if info is None:
                raise PathNotValid(str(path), uri)
            infos[path] = info
            for ref in sorted(info.references):
                if ref not in asked:
                    asked.add(ref)
                    group.create_task(visit(ref, group))
            if not arrived:
                group.create_task(hand_on())
            arrived.append(info)

        try:
            async with asyncio.TaskGroup() as group:
                for root in roots:
                    group.create_task(visit(root, group))
        except BaseExceptionGroup as e:
            raise _first(e) from None
        return infos

    def lookup(self, path: StorePath) -> Future[ValidPathInfo | None]:
        return self.transport.fast.submit(self._lookup(path))

    async def _lookup(self, path: StorePath) -> ValidPathInfo | None:
        from storekit.store.binary_cache import path_info_of

        if path.store_dir != self.store.store_dir:
            return None
        data = await self.transport.read_async(self.store.narinfo_name(path.hash_part))
        narinfo = self.store.narinfo_from_bytes(path.hash_part, data)
        return None if narinfo is None or narinfo.store_path != path else path_info_of(narinfo)

    # --- staging as downloads arrive ----------------------------------------------------------------

    def stage_ahead(self, info: ValidPathInfo, prepare: Prepare) -> Future[object] | None:
        """Download `info`'s NAR on the loop and `prepare(info, chunks)` it on a stager as soon as it
        arrives; None where the NAR is too large for that (the caller stages it on a worker)."""
        narinfo = self.store.lookup_narinfo(info.path)  # remembered by the lookup: no request
        if narinfo is None or name_problem(narinfo.url) is not None:
            return None  # `open_nar` words the refusal when a worker gets there
        if not (0 < narinfo.file_size <= SMALL_NAR and 0 < info.nar_size <= INLINE_NAR):
            return None
        future: Future[object] = Future()
        fast = self.transport.fast
        loop = fast.loop

        def spawn() -> None:
            with self._guard:
                if self._closed:
                    future.cancel()
                    return
                task = loop.create_task(self._stage(info, prepare, future))
                self._stagings.add(task)
            task.add_done_callback(self._stagings.discard)

        if fast.on_loop():
            spawn()
        else:
            loop.call_soon_threadsafe(spawn)
        return future

    async def _stage(self, info: ValidPathInfo, prepare: Prepare, future: Future[object]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            narinfo = self.store.lookup_narinfo(info.path)
            assert narinfo is not None, "stage_ahead checked it"
            download = await self.transport.open_async(narinfo.url, narinfo.file_size)
        except BaseException as e:  # the committing thread raises it when this path's turn comes
            future.set_exception(e)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            return
        self._stagers.put((prepare, info, _nar_chunks(self.store, narinfo, download), future))

    # --- NARs for the workers ----------------------------------------------------------------------------

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
        """Cancel what is in flight; when this returns no staging runs on the loop any more."""
        with self._guard:
            self._closed = True
            futures, self._nars = list(self._nars.values()), {}
        for future in futures:
            future.cancel()
            if future.done() and not future.cancelled() and future.exception() is None:
                download = future.result()
                if download is not None:
                    download.close()
        if self._stagings and not self.transport.fast.on_loop():
            self.transport.fast.submit(self._cancel_stagings()).result()
        self._stagers.close()  # a staging under way finishes (its tree is let go), the others are cancelled

    async def _cancel_stagings(self) -> None:
        tasks = list(self._stagings)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_Job = tuple[Prepare, ValidPathInfo, Iterable[bytes], "Future[object]"]


class _Stagers:
    """`count` threads running `prepare(info, chunks)` for the jobs the loop puts, each outcome set on
    the job's future (already running: `stage_ahead` made it). A `ThreadPoolExecutor.submit` per NAR
    (a second future, a work item, a semaphore) was a fifth of the loop thread's time on a closure
    of small paths; a put on a `SimpleQueue` is a call into C."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()
        self._closed = False

    def put(self, job: _Job) -> None:
        with self._guard:
            if self._closed:
                job[3].set_exception(CancelledError())
                return
            while len(self._threads) < self._count:  # started on the first job
                name = f"storekit-stage_{len(self._threads)}"
                thread = threading.Thread(target=self._run, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            self._queue.put(job)  # under the guard: `close` never leaves a job behind its sentinels

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            prepare, info, chunks, future = job
            try:
                result = prepare(info, chunks)
            except BaseException as e:  # the committing thread raises it when this path's turn comes
                future.set_exception(e)
            else:
                future.set_result(result)

    def close(self) -> None:
        """Cancel the jobs not started (their futures get `CancelledError`), wait for the others."""
        with self._guard:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[3].set_exception(CancelledError())
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended a walk: an interrupt before anything else, else the first raised."""
    found = list(_leaves(group))
    for e in found:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            return e
    return next((e for e in found if not isinstance(e, asyncio.CancelledError)), found[0])


def _leaves(e: BaseException) -> Iterator[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            yield from _leaves(inner)
    else:
        yield e


def _nar_chunks(store: BinaryCacheStore, narinfo: NarInfo, download: Download | None) -> Iterator[bytes]:
    """The NAR of a download, decoded where it is iterated (on a stager): at once when it came whole
    and passes every check (`compression.decode_whole`), else through `open_nar`'s streaming checks."""
    if download is not None and download.whole is not None:
        from storekit.store.compression import decode_whole

        nar = decode_whole(narinfo, download.whole, download.expected)
        if nar is not None:
            yield nar
            return
    yield from _chunks(store.open_nar(narinfo, lambda: download))


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk
