"""Deduplication by hard links, as `nix-store --optimise`, within one store and across stores.

Each store has `<real dir>/.links/<nix32 of the file's NAR sha256>`, a hard link to one copy of every
distinct file (the NAR hash includes the executable bit, so an executable and a plain file with the
same bytes stay apart; symlinks are linked too, as Nix does on Linux). Every other identical file
becomes a hard link to that copy. Since store files are canonical (read-only, mtime 1, one owner),
sharing an inode changes nothing a reader can see, and real Nix keeps verifying the store.

Across stores on one file system the first store's `.links` inode is adopted by the later stores'
`.links`, so identical files in `/a/store` and `/b/store` end up as one inode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from storekit.progress import Progress, ProgressEvent
from storekit.store.canonical import writable_dir
from storekit.store.local import LocalStore


@dataclass(slots=True)
class OptimiseStats:
    files_linked: int = 0
    bytes_freed: int = 0
    blocks_freed: int = 0


@dataclass(frozen=True, slots=True)
class _Shared:
    """A `.links` entry seen in an earlier store: where it is and on which device."""

    link: str
    dev: int
    ino: int


def optimise_stores(stores: Sequence[LocalStore], progress: Progress | None = None) -> OptimiseStats:
    """Hard-link identical files within each store and, on one file system, across all of them."""
    stats = OptimiseStats()
    shared: dict[str, _Shared] = {}
    for store in stores:
        _adopt_shared_links(store, shared)
        _optimise_one(store, stats, shared, progress)
        _remember_links(store, shared)
    return stats


def _optimise_one(
    store: LocalStore, stats: OptimiseStats, shared: dict[str, _Shared], progress: Progress | None
) -> None:
    paths = sorted(store.query_all_valid_paths())
    inodes = _link_inodes(store.links_dir)
    for i, path in enumerate(paths):
        if progress:
            progress(ProgressEvent("optimise", i, len(paths), item=str(path)))
        store.add_temp_root(path)
        if store.is_valid_path(path):
            _optimise_tree(store, store.real_path(path), inodes, stats, shared)
    if progress:
        progress(ProgressEvent("optimise", len(paths), len(paths), phase="done"))


def _link_inodes(links_dir: str) -> set[int]:
    with os.scandir(links_dir) as entries:
        return {e.inode() for e in entries}


def _optimise_tree(
    store: LocalStore, top: str, inodes: set[int], stats: OptimiseStats, shared: dict[str, _Shared]
) -> None:
    stack = [top]
    while stack:
        path = stack.pop()
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(path) as entries:
                stack.extend(e.path for e in entries if e.inode() not in inodes)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            _optimise_file(store, path, st, inodes, stats, shared)


def _optimise_file(
    store: LocalStore,
    path: str,
    st: os.stat_result,
    inodes: set[int],
    stats: OptimiseStats,
    shared: dict[str, _Shared],
) -> None:
    from storekit.nar.fs import hash_path

    if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IWUSR:
        return  # a writable file in the store is suspicious: leave it alone, as Nix does
    if st.st_nlink > 1 and st.st_ino in inodes:
        return
    name = hash_path(path)[0].nix32
    link = os.path.join(store.links_dir, name)
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(link).st_size != st.st_size:
            os.unlink(link)  # corrupt link: `storekit store verify --check-contents --repair` finds more
    if not os.path.lexists(link) and not _link_from_shared(link, name, st.st_dev, shared):
        try:
            os.link(path, link, follow_symlinks=False)
            inodes.add(st.st_ino)
            return
        except FileExistsError:
            pass  # another process linked it first: use theirs
        except OSError as e:
            if e.errno == errno.ENOSPC:
                return  # the links directory is full: skip deduplicating this file
            raise
    link_st = os.lstat(link)
    inodes.add(link_st.st_ino)
    if link_st.st_ino == st.st_ino:
        return
    if _replace_with_link(store, path, link):
        stats.files_linked += 1
        stats.bytes_freed += st.st_size
        stats.blocks_freed += st.st_blocks


def _replace_with_link(store: LocalStore, path: str, link: str) -> bool:
    """Atomically swap `path` for a hard link to `link` (the parent dir is writable only meanwhile)."""
    parent = os.path.dirname(path)
    temp = os.path.join(store.real_dir, f".tmp-link-{os.getpid()}-{os.urandom(4).hex()}")
    toggle = writable_dir(parent) if parent != store.real_dir else contextlib.nullcontext()
    with toggle:
        try:
            os.link(link, temp, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.EMLINK:
                return False  # too many links to one inode (e.g. empty files): leave this one
            raise
        try:
            os.rename(temp, path)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    return True


def _link_from_shared(link: str, name: str, dev: int, shared: dict[str, _Shared]) -> bool:
    """Make this store's `.links/<name>` the inode an earlier store already has, if on one device."""
    other = shared.get(name)
    if other is None or other.dev != dev:
        return False
    try:
        os.link(other.link, link, follow_symlinks=False)
    except FileExistsError:
        return True
    except OSError:
        return False
    return True


def _adopt_shared_links(store: LocalStore, shared: dict[str, _Shared]) -> None:
    """Re-point this store's existing `.links` entries at inodes earlier stores use for the same hash."""
    if not shared:
        return
    with os.scandir(store.links_dir) as entries:
        mine = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
    for name, st in mine:
        other = shared.get(name)
        if other is None or other.dev != st.st_dev or other.ino == st.st_ino:
            continue
        temp = os.path.join(store.links_dir, f".tmp-{os.getpid()}-{name}")
        try:
            os.link(other.link, temp, follow_symlinks=False)
            os.rename(temp, os.path.join(store.links_dir, name))
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _remember_links(store: LocalStore, shared: dict[str, _Shared]) -> None:
    with os.scandir(store.links_dir) as entries:
        for e in entries:
            if e.name not in shared and not e.name.startswith("."):
                st = e.stat(follow_symlinks=False)
                shared[e.name] = _Shared(e.path, st.st_dev, st.st_ino)
