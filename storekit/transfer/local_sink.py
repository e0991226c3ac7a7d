"""Copying into a local store: the destination side of `copy_closure` for a `LocalStore`."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator

from storekit.store.base import Store, ValidPathInfo
from storekit.store.canonical import canonicalise_path, delete_path
from storekit.store.install import Staged, install_staged_batch, take_lock
from storekit.store.link import LinkMode, local_source_path, stage_by_linking, stage_nar
from storekit.store.local import LocalStore

Moved = Callable[[ValidPathInfo, int], None]


def _max_held() -> int:
    """Locks held at most for staged paths waiting to be installed: each is an open file, so half the
    soft limit on open files (512 under the usual 1,024), at most 4,096. Past that,
    `install_staged_batch` takes a path's lock when it installs it, on the committing thread, after
    the walk: creating a lock file is a new inode, which on a loaded ext4 costs as much as the rest of
    a small path, so the more the stagers take while the closure is walked the shorter that tail."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 512 if soft == resource.RLIM_INFINITY else max(64, min(4096, soft // 2))


MAX_HELD = _max_held()


class LocalSink:
    """A local store: stage in parallel (link files or restore the NAR), install and register in order,
    a run of ready paths at a time (`install_staged_batch`: one transaction for the run).

    The slow per-path work happens on the workers: each stages into one staging dir of its own for
    the whole copy (`<stage>/<n>`: no directory made and removed per path, which on a loaded disk
    was most of a small path's time), makes the tree canonical there and takes the path's lock if it
    is free. This thread then writes the temp roots of a run at once, renames its trees into place
    and registers them.
    Once another process is seen holding a path's lock, workers stop taking locks and every lock they
    hold is let go before this thread waits (see `install_staged_batch`).
    """

    def __init__(self, src: Store, dst: Store, link: LinkMode, moved: Moved) -> None:
        assert isinstance(dst, LocalStore)
        self.src, self.dst, self.link, self.moved = src, dst, link, moved
        self._stages = contextlib.ExitStack()
        self._local = threading.local()
        self._guard = threading.Lock()
        self._count = itertools.count()
        self._held: set[Staged] = set()
        self._lock_early = True
        self._closers: list[Callable[[], object]] = []
        #: Where a path's NAR comes from (a download started ahead, say); by default the source store.
        self.nar_of: Callable[[ValidPathInfo], Iterable[bytes]] = lambda info: src.nar_from_path(info.path)

    def _stage(self) -> str:
        stage: str | None = getattr(self._local, "stage", None)
        if stage is None:
            with self._guard:
                stage = self._local.stage = self._stages.enter_context(self.dst.staging())
        return stage

    def prepare(self, info: ValidPathInfo, nar: Iterable[bytes] | None = None) -> object:
        """Stage `info` from `nar` (by default `nar_of(info)`); on any thread, several at once."""
        stage, name = self._stage(), f"p{next(self._count)}"
        self.dst.check_info_alone(info)  # here rather than on the committing thread
        try:
            real = local_source_path(self.src, info.path) if self.link is not LinkMode.STREAM else None
            canonical = False
            if real is not None:
                tree = stage_by_linking(real, stage, info, self.link, self.src.uri, name)
            else:
                chunks = _counted(self.nar_of(info) if nar is None else nar, info, self.moved)
                tree, canonical = stage_nar(chunks, stage, info, name)
            if not canonical:
                canonicalise_path(tree)
        except BaseException:
            self._remove(os.path.join(stage, name))
            raise
        staged = Staged(info, tree, canonical=True, checked=True)
        if self._lock_early and len(self._held) < MAX_HELD:  # outside the guard (a file made, a flock)
            lock = take_lock(self.dst, info)
            with self._guard:
                if lock is not None and self._lock_early:
                    staged.lock = lock
                    self._held.add(staged)
                    lock = None
            if lock is not None:  # `_let_go` ran meanwhile: hold nothing from now on
                lock.close()
        return staged

    def _let_go(self) -> None:
        """Before waiting for another process: no lock held for a path not yet installed."""
        with self._guard:
            self._lock_early = False
            held, self._held = self._held, set()
        for staged in held:
            staged.release()

    def commit(self, info: ValidPathInfo, prepared: object) -> None:
        self.commit_many([(info, prepared)])

    def commit_many(self, items: list[tuple[ValidPathInfo, object]]) -> None:
        run = [_staged(prepared) for _, prepared in items]
        with self._guard:
            self._held.difference_update(run)
        moved: list[bool] = []
        try:
            self.dst.add_temp_roots([staged.info.path for staged in run])  # before they are in place
            moved = install_staged_batch(self.dst, run, self._let_go)
        finally:
            for i, staged in enumerate(run):
                if i < len(moved) and moved[i]:
                    staged.release()  # its tree is the store path now: nothing left to delete
                else:
                    self.discard(staged)  # not moved into place (already valid, or a failure)

    def discard(self, prepared: object) -> None:
        staged = _staged(prepared)
        with self._guard:
            self._held.discard(staged)
        staged.release()
        self._remove(staged.tree)

    def _remove(self, tree: str) -> None:
        if os.path.lexists(tree):
            delete_path(tree)

    def at_close(self, fn: Callable[[], object]) -> None:
        """Run `fn` on `close`, before the staging dirs go (to stop what still stages into them)."""
        self._closers.append(fn)

    def close(self) -> None:
        try:
            for fn in reversed(self._closers):
                fn()
        finally:
            self._stages.close()


def _staged(prepared: object) -> Staged:
    assert isinstance(prepared, Staged)
    return prepared


def _counted(chunks: Iterable[bytes], info: ValidPathInfo, moved: Moved) -> Iterator[bytes]:
    """`chunks`, reporting each one's size as it is taken (for the progress bar)."""
    for chunk in chunks:
        moved(info, len(chunk))
        yield chunk
