"""Files in a store are canonical: read-only (0444, or 0555 when executable, and for directories),
modification time 1 (one second into the epoch), owned by the store's user, no extended attributes.

Canonical metadata is what makes a store path's bytes depend only on its NAR, so two stores holding
the same path can share it (hard links in `.links`, `optimise` across stores) and real Nix accepts it.
This module also deletes such read-only trees (the GC, failed adds) the way Nix's `deletePath` does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from storekit.errors import StoreError
from storekit.fdtree import DirChain, remove_tree, show_path, walk_below

MTIME_STORE = 1
#: Extended attributes Nix leaves alone (its `ignored-acls` default).
IGNORED_XATTRS = frozenset({"security.selinux", "system.nfs4_acl", "security.csm"})


def canonicalise_path(path: str) -> None:
    """Nix's `canonicalisePathMetaData`: make a freshly written store path canonical, all of it.

    The walk is iterative and relative to directory descriptors (`DirChain`), never following a
    symlink, so a tree of any depth is made canonical and nothing outside it is touched.
    """
    p = os.fsencode(path)
    parent, name = os.path.split(p.rstrip(b"/") or p)
    parent_fd = os.open(parent or b".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        _canonicalise_entry(parent_fd, name, st, p)
        if stat.S_ISDIR(st.st_mode):
            _canonicalise_below(DirChain.open(p, parent_fd, name))
    finally:
        os.close(parent_fd)


def _canonicalise_below(chain: DirChain) -> None:
    """Every entry under the directory `chain` is at, each directory before its entries."""
    for name, st in walk_below(chain):
        _canonicalise_entry(chain.fd, name, st, name, chain)


def _canonicalise_entry(
    dir_fd: int, name: bytes, st: os.stat_result, shown: bytes, chain: DirChain | None = None
) -> None:
    """One entry `name` of the directory `dir_fd`: type checked, xattrs dropped, mode, mtime, owner."""

    def where() -> str:
        return show_path(chain.path(name) if chain is not None else shown)

    mode = st.st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise StoreError(f"file '{where()}' has an unsupported type (only files, dirs, symlinks)")
    _remove_xattrs(b"/proc/self/fd/%d/" % dir_fd + name)
    if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) not in (0o444, 0o555):
        new_mode = 0o444 | (0o111 if mode & stat.S_IXUSR else 0)
        _chmod(dir_fd, name, new_mode)
    if int(st.st_mtime) != MTIME_STORE or st.st_mtime_ns % 1_000_000_000:
        os.utime(name, ns=(st.st_atime_ns, MTIME_STORE * 1_000_000_000), dir_fd=dir_fd, follow_symlinks=False)
    euid = os.geteuid()
    if st.st_uid != euid:
        try:
            os.chown(name, euid, os.getegid(), dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError as e:
            raise StoreError(f"cannot change the owner of '{where()}' to uid {euid}: {e.strerror}") from e


def canonicalise_timestamp_and_permissions(path: str, st: os.stat_result | None = None) -> None:
    st = st or os.lstat(path)
    if not stat.S_ISLNK(st.st_mode):
        mode = stat.S_IMODE(st.st_mode)
        if mode not in (0o444, 0o555):
            os.chmod(path, 0o444 | (0o111 if st.st_mode & stat.S_IXUSR else 0))
    if int(st.st_mtime) != MTIME_STORE or st.st_mtime_ns % 1_000_000_000:
        os.utime(path, ns=(st.st_atime_ns, MTIME_STORE * 1_000_000_000), follow_symlinks=False)


def _chmod(dir_fd: int, name: bytes, mode: int) -> None:
    """chmod without following a symlink; glibc needs /proc for that, so without it, plain fchmodat
    (`name` was just seen not to be a symlink, in a tree only the store's user writes)."""
    try:
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    except (NotImplementedError, ValueError):
        os.chmod(name, mode, dir_fd=dir_fd)


def _remove_xattrs(path: bytes) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EPERM, errno.ENOENT):  # ENOENT: no /proc
            return
        raise
    for name in names:
        if name not in IGNORED_XATTRS:
            os.removexattr(path, name, follow_symlinks=False)


def make_movable(path: str) -> None:
    """A directory moves to another parent only if writable (its `..` changes): make it so for now.

    Root does not need this, which is how a rename of a canonical (0555) output once worked in every
    test and failed for the first user who built without root. `canonicalise_path` restores the mode.
    """
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IWUSR:
        os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)


def delete_path(path: str) -> int:
    """Delete a (read-only) tree; returns the bytes it likely freed, counted like Nix's `deletePath`."""
    return remove_tree(path)


@contextlib.contextmanager
def writable_dir(path: str) -> Iterator[None]:
    """Let this process change entries of a read-only store directory, then make it canonical again."""
    st = os.lstat(path)
    os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
    try:
        yield
    finally:
        canonicalise_timestamp_and_permissions(path)
