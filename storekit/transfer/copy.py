"""Copying closures between stores: `storekit copy`, substitution, pushing to and pulling from caches.

The workflow, as Nix's `copyPaths`: take the closure of the wanted paths in the source, keep the ones
the destination lacks, check every one against the signature policy *before* installing any, then
transfer. Substituting into a local store does the first and the last at once (`fetch_ahead`: a
path's NAR is fetched and staged as soon as its own narinfo arrived and passed the policy).

Transfers run in a thread pool (`jobs`), but a path becomes valid only after its references did, so
a destination is never left with a path whose closure is incomplete. Each transfer is split into a
slow half that needs no reference to be valid (download + restore into a staging dir, or writing a
cache's compressed NAR) run in the pool, and a quick commit (registration, or the narinfo) run on the
caller's thread in dependency order.

Between two local stores the NAR stream is skipped: files are hard-linked (when canonical and ours),
reflinked, or copied with `copy_file_range`, then the result's NAR hash is computed and checked against
the source's metadata, so a damaged source file is refused as a streamed one would be.

A store dir change cannot be a plain copy (every path would change); `check_store_dirs` is the one place
that refuses it, unless `relocate` asks for `storekit.relocate` to rewrite the closure on the way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from storekit.errors import DependencyCycle, PathNotValid, RelocationError, StorekitError, SubstituteError
from storekit.graph import toposort
from storekit.progress import Progress, ProgressEvent
from storekit.signing import SecretKey
from storekit.store.base import Store, ValidPathInfo
from storekit.store.link import LinkMode
from storekit.store.streams import ChunkReader
from storekit.store.substituters import SignaturePolicy, Substituters, is_untrusted_source
from storekit.storepath import StorePath
from storekit.transfer.fetch_ahead import abandon, failure_naming, stage_while_walking
from storekit.transfer.realisations import copy_realisations

__all__ = [
    "CopyResult",
    "LinkMode",
    "check_store_dirs",
    "copy_closure",
    "dependency_order",
    "refuse_default_cache_store_dir",
]

DEFAULT_JOBS = 4
#: Paths committed at once at most (one DB transaction for a local store), and prepared ahead at least.
BATCH = 64
AHEAD = 32
QUERY_JOBS = 16


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy did; `relocated` maps each path asked for to its name in the target (relocating only)."""

    copied: tuple[StorePath, ...] = ()
    already_valid: tuple[StorePath, ...] = ()
    nar_bytes: int = 0
    relocated: tuple[tuple[StorePath, StorePath], ...] = ()


def check_store_dirs(src: Store, dst: Store) -> None:
    """The one place a store dir change is decided: relocation (its own issue) will hook in here."""
    if src.store_dir == dst.store_dir:
        return
    refuse_default_cache_store_dir(src, dst)
    raise RelocationError(
        f"cannot copy from '{src.uri}' (store dir '{src.store_dir}') to '{dst.uri}' (store dir "
        f"'{dst.store_dir}'): a path's name depends on its store dir, so this needs relocation: pass "
        "--relocate (content-addressed names, references rewritten), or use `storekit relocate`"
    )


def refuse_default_cache_store_dir(src: Store, dst: Store) -> None:
    """A cache named without `?store=` is for /nix/store, as in Nix: most often the user meant theirs.

    Called before the paths are looked up too (`storekit copy`), since a path of the user's store dir
    is not even a path of such a cache.
    """
    from storekit.store.binary_cache import BinaryCacheStore
    from storekit.storepath import DEFAULT_STORE_DIR

    if src.store_dir == dst.store_dir:
        return
    for cache, other in ((dst, src), (src, dst)):
        if isinstance(cache, BinaryCacheStore) and cache.store_dir.path == DEFAULT_STORE_DIR:
            if "store=" in cache.uri:
                continue
            named = f"{cache.uri}{'&' if '?' in cache.uri else '?'}store={other.store_dir}"
            raise RelocationError(
                f"binary cache '{cache.uri}' is for store dir {DEFAULT_STORE_DIR} (the default when a "
                f"cache's URI names none), not '{other.store_dir}': name the store dir in the cache's "
                f"URI, '{named}'"
            )


def copy_closure(
    src: Store,
    dst: Store,
    paths: Iterable[StorePath],
    *,
    policy: SignaturePolicy | None = None,
    sign_keys: Sequence[SecretKey] = (),
    jobs: int = DEFAULT_JOBS,
    link: LinkMode = LinkMode.AUTO,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy the closure of `paths` from `src` to `dst`; the paths `dst` already has are left alone.

    `policy` decides which paths to trust; by default paths from a binary cache need a signature by a
    trusted key (none is trusted unless given), as Nix's `require-sigs` does, and other sources are
    trusted. `sign_keys` add signatures to what is copied. Raises before installing anything if a
    path is untrusted (an untrusted path's NAR is never fetched); a failed transfer leaves that path
    and its referrers invalid in `dst`.
    Into a `dst` with another store dir, use `transfer.relocating.relocating_copy` instead.
    """
    from storekit.store.local import LocalStore

    check_store_dirs(src, dst)
    if policy is None:
        policy = SignaturePolicy(require_sigs=is_untrusted_source(src))
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="storekit-copy") as pool:
        reporter = _Reporter(progress, src, [])
        sink = _sink_for(src, dst, link, reporter.moved)
        try:
            started: dict[StorePath, Future[object]] = {}
            if _streams(src, sink):

                def admit(infos: list[ValidPathInfo]) -> list[ValidPathInfo | None]:
                    assert isinstance(dst, LocalStore)
                    valid = dst.valid_among(i.path for i in infos)  # one query for a burst of answers
                    admitted: list[ValidPathInfo | None] = []
                    for info in infos:
                        if info.path in valid:
                            admitted.append(None)
                            continue
                        policy.check(info, dst.store_dir, _source_of(src, info.path).uri)
                        admitted.append(_for_destination(info, sign_keys))
                    return admitted

                infos, missing, start = stage_while_walking(src, paths, admit, sink, pool, started)
            else:
                infos = closure_infos(src, paths, pool)
                missing = _missing(dst, sorted(infos), pool)
                for path in missing:
                    policy.check(infos[path], dst.store_dir, _source_of(src, path).uri)

                def start(info: ValidPathInfo) -> Future[object]:
                    return pool.submit(sink.prepare, info)

            order = dependency_order({p: infos[p] for p in missing})
            wanted = [_for_destination(infos[p], sign_keys) for p in order]
            reporter.expect(wanted)
            _transfer(sink, wanted, start, max(1, jobs), reporter, src, started)
        finally:
            sink.close()
    copy_realisations(src, dst, infos, sign_keys)  # CA derivations' outputs are found through them
    already = tuple(sorted(set(infos) - set(missing)))
    return CopyResult(tuple(order), already, sum(infos[p].nar_size for p in order))


def _streams(src: Store, sink: _Sink) -> bool:
    """Substituting into a local store walks the closure and fetches NARs at once (`fetch_ahead`):
    a local store's staging never waits for another path, so paths can be staged in any order."""
    from storekit.transfer.local_sink import LocalSink

    return isinstance(sink, LocalSink) and is_untrusted_source(src)


Start = Callable[[ValidPathInfo], "Future[object]"]


def closure_infos(
    src: Store, paths: Iterable[StorePath], pool: ThreadPoolExecutor
) -> dict[StorePath, ValidPathInfo]:
    """The infos of the closure of `paths` in `src`, fetched a level at a time.

    From a cache, a level's narinfos are fetched `QUERY_JOBS` at a time whatever `jobs` is: a query
    is a small request whose time is mostly the round trip, as Nix's `http-connections` are.
    """
    infos: dict[StorePath, ValidPathInfo] = {}
    frontier = set(paths)
    if not is_untrusted_source(src):
        return _closure_infos(src, frontier, infos, map)
    with ThreadPoolExecutor(QUERY_JOBS, thread_name_prefix="storekit-query") as queries:
        return _closure_infos(src, frontier, infos, queries.map)


def _closure_infos(
    src: Store,
    frontier: set[StorePath],
    infos: dict[StorePath, ValidPathInfo],
    mapper: Callable[..., Iterable[ValidPathInfo | None]],
) -> dict[StorePath, ValidPathInfo]:
    while frontier:
        batch = sorted(frontier)
        found = list(mapper(src.lookup_path_info, batch))
        frontier = set()
        for path, info in zip(batch, found, strict=True):
            if info is None:
                raise PathNotValid(str(path), src.uri)
            infos[path] = info
            frontier |= info.references
        frontier -= infos.keys()
    return infos


def _missing(dst: Store, paths: list[StorePath], pool: ThreadPoolExecutor) -> list[StorePath]:
    parallel = is_untrusted_source(dst)
    valid = list(pool.map(dst.is_valid_path, paths) if parallel else map(dst.is_valid_path, paths))
    return [p for p, ok in zip(paths, valid, strict=True) if not ok]


def dependency_order(infos: dict[StorePath, ValidPathInfo]) -> list[StorePath]:
    """The paths of `infos` with each after its references (ties broken by name)."""

    def references(path: StorePath) -> list[StorePath]:
        return sorted(r for r in infos[path].references if r in infos and r != path)

    try:
        return toposort(sorted(infos), references)
    except DependencyCycle as e:
        stuck = sorted(set(map(str, e.cycle)))
        raise SubstituteError(f"the references of {', '.join(stuck[:3])} form a cycle") from e


def _for_destination(info: ValidPathInfo, keys: Sequence[SecretKey]) -> ValidPathInfo:
    """A copied path is not `ultimate` (Nix's `copyStorePath`); sign it with each key given."""
    info = info.replace(ultimate=False)
    return info.with_sigs(key.sign(info.fingerprint()) for key in keys) if keys else info


def _source_of(src: Store, path: StorePath) -> Store:
    return src.source_of(path) if isinstance(src, Substituters) else src


class _Reporter:
    """Turns bytes moved (from any transfer thread) and paths made valid into `ProgressEvent`s, one at a time.

    `done` counts bytes: a streamed path's as they move, a path copied without a stream (hard-linked
    between local stores) all at once when it becomes valid.
    """

    def __init__(self, progress: Progress | None, src: Store, infos: list[ValidPathInfo]) -> None:
        self.progress, self.src = progress, src
        self.expect(infos)
        self.done = self.valid_paths = 0
        self.streamed: dict[StorePath, int] = {}
        self.lock = threading.Lock()

    def expect(self, infos: list[ValidPathInfo]) -> None:
        """The paths to copy (known once the closure was walked; bytes may have moved before)."""
        self.total_paths, self.total_bytes = len(infos), sum(i.nar_size for i in infos)

    def moved(self, info: ValidPathInfo, n: int) -> None:
        with self.lock:
            self.streamed[info.path] = self.streamed.get(info.path, 0) + n
            self.done += n
            self._send(info)

    def valid(self, info: ValidPathInfo) -> None:
        with self.lock:
            self.done += info.nar_size - self.streamed.pop(info.path, 0)
            self.valid_paths += 1
            self._send(info)

    def _send(self, info: ValidPathInfo) -> None:
        if self.progress is None:
            return
        uri = _source_of(self.src, info.path).uri
        message = f"{self.valid_paths}/{self.total_paths} paths"
        self.progress(
            ProgressEvent(
                "copy", self.done, self.total_bytes, "bytes", item=str(info.path), source=uri, message=message
            )
        )


Moved = Callable[[ValidPathInfo, int], None]


def _counted(chunks: Iterable[bytes], info: ValidPathInfo, moved: Moved) -> Iterator[bytes]:
    """`chunks`, reporting each one's size as it is taken."""
    for chunk in chunks:
        moved(info, len(chunk))
        yield chunk


# --- sinks: how one path gets into one kind of destination -----------------------------------------------


class _Sink(Protocol):
    def prepare(self, info: ValidPathInfo) -> object:
        """The slow half, on a worker thread; must not need the references to be valid."""

    def commit(self, info: ValidPathInfo, prepared: object) -> None:
        """Make the path valid, on the caller's thread, after its references."""

    def commit_many(self, items: list[tuple[ValidPathInfo, object]]) -> None:
        """`commit` of a run of paths in dependency order, at once where the destination can."""

    def discard(self, prepared: object) -> None: ...

    def close(self) -> None:
        """After the last prepare and commit: let go of what the sink held for all paths."""


class _OneByOne:
    """Sinks without a batch commit: `commit_many` commits each in turn."""

    def commit(self, info: ValidPathInfo, prepared: object) -> None:
        raise NotImplementedError

    def commit_many(self, items: list[tuple[ValidPathInfo, object]]) -> None:
        for info, prepared in items:
            self.commit(info, prepared)

    def close(self) -> None:
        pass


class _StreamSink(_OneByOne):
    """Any destination: the NAR streams into `add_from_nar` at commit time, one path at a time."""

    def __init__(self, src: Store, dst: Store, moved: Moved) -> None:
        self.src, self.dst, self.moved = src, dst, moved

    def prepare(self, info: ValidPathInfo) -> object:
        return None

    def commit(self, info: ValidPathInfo, prepared: object) -> None:
        with ChunkReader(_counted(self.src.nar_from_path(info.path), info, self.moved)) as source:
            self.dst.add_from_nar(info, source)

    def discard(self, prepared: object) -> None:
        pass


class _CacheSink(_OneByOne):
    """A binary cache: NAR files and narinfos are written on the workers, as Nix's `copyPaths` does;
    a narinfo waits for its references' (submitted earlier, so the earliest unfinished path never
    waits and the pool cannot deadlock), and a failed reference makes `publish` refuse its referrers.
    """

    def __init__(self, src: Store, dst: Store, moved: Moved) -> None:
        from storekit.store.binary_cache import BinaryCacheStore

        assert isinstance(dst, BinaryCacheStore)
        self.src, self.dst, self.moved = src, dst, moved
        self._lock = threading.Lock()
        self._done: dict[StorePath, threading.Event] = {}

    def _event(self, path: StorePath) -> threading.Event:
        with self._lock:
            return self._done.setdefault(path, threading.Event())

    def prepare(self, info: ValidPathInfo) -> object:
        try:
            source = _counted(self.src.nar_from_path(info.path), info, self.moved)
            narinfo = self.dst.upload_chunks(info, source)
            for ref in sorted(info.references - {info.path}):
                if not self.dst.is_valid_path(ref):  # being copied: wait for its narinfo
                    self._event(ref).wait()
                    if not self.dst.is_valid_path(ref):  # it failed: no narinfo may name a missing path
                        raise SubstituteError(f"not publishing '{info.path}': its reference '{ref}' failed")
            if narinfo is not None:
                self.dst.publish(narinfo)
        finally:
            self._event(info.path).set()
        return None

    def commit(self, info: ValidPathInfo, prepared: object) -> None:
        pass

    def discard(self, prepared: object) -> None:
        pass


def _sink_for(src: Store, dst: Store, link: LinkMode, moved: Moved) -> _Sink:
    from storekit.store.binary_cache import BinaryCacheStore
    from storekit.store.local import LocalStore

    if isinstance(dst, LocalStore):
        from storekit.transfer.local_sink import LocalSink

        return LocalSink(src, dst, link, moved)
    if isinstance(dst, BinaryCacheStore):
        return _CacheSink(src, dst, moved)
    return _StreamSink(src, dst, moved)


def _transfer(
    sink: _Sink,
    infos: list[ValidPathInfo],
    start: Start,
    jobs: int,
    reporter: _Reporter,
    src: Store,
    started: dict[StorePath, Future[object]],
) -> None:
    """Prepare paths ahead (`start`: on the pool); commit them in order on this thread, each run of
    consecutive paths already prepared at once (up to `BATCH`), so many small paths share one commit.
    `started` are preparations begun earlier (while the closure was walked), taken as they come."""
    futures: dict[int, Future[object]] = {}
    submitted = 0
    ahead = max(2 * jobs, AHEAD)
    i = 0
    try:
        while i < len(infos):
            while submitted < len(infos) and (submitted < i + ahead or infos[submitted].path in started):
                info = infos[submitted]
                futures[submitted] = started.pop(info.path) if info.path in started else start(info)
                submitted += 1
            run: list[tuple[ValidPathInfo, object]] = []
            try:
                run.append((infos[i], futures.pop(i).result()))
                while len(run) < BATCH and (n := i + len(run)) in futures and futures[n].done():
                    if futures[n].exception() is not None:
                        break  # raised with its own path next time round
                    run.append((infos[n], futures.pop(n).result()))
                sink.commit_many(run)
            except StorekitError as e:
                abandon(sink, [], run)
                wrapped = failure_naming(e, [info.path for info, _ in run] or [infos[i].path], src)
                if wrapped is e:
                    raise
                raise wrapped from e
            except BaseException:
                abandon(sink, [], run)
                raise
            for info, _ in run:
                reporter.valid(info)
            i += len(run)
    finally:
        abandon(sink, [*futures.values(), *started.values()])
