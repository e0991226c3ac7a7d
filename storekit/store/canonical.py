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

MTIME_STORE = 1
#: Extended attributes Nix leaves alone (its `ignored-acls` default).
IGNORED_XATTRS = frozenset({"security.selinux", "system.nfs4_acl", "security.csm"})


def canonicalise_path(path: str) -> None:
    """Nix's `canonicalisePathMetaData`: make a freshly written store path canonical, recursively."""
    euid, egid = os.geteuid(), os.getegid()
    stack = [path]
    while stack:
        current = stack.pop()
        st = os.lstat(current)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise StoreError(f"file '{current}' has an unsupported type (only files, dirs, symlinks)")
        _remove_xattrs(current)
        canonicalise_timestamp_and_permissions(current, st)
        if st.st_uid != euid:
            try:
                os.lchown(current, euid, egid)
            except PermissionError as e:
                raise StoreError(f"cannot change the owner of '{current}' to uid {euid}: {e.strerror}") from e
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(current) as entries:
                stack.extend(e.path for e in entries)


def canonicalise_timestamp_and_permissions(path: str, st: os.stat_result | None = None) -> None:
    st = st or os.lstat(path)
    if not stat.S_ISLNK(st.st_mode):
        mode = stat.S_IMODE(st.st_mode)
        if mode not in (0o444, 0o555):
            os.chmod(path, 0o444 | (0o111 if st.st_mode & stat.S_IXUSR else 0))
    if int(st.st_mtime) != MTIME_STORE or st.st_mtime_ns % 1_000_000_000:
        os.utime(path, ns=(st.st_atime_ns, MTIME_STORE * 1_000_000_000), follow_symlinks=False)


def _remove_xattrs(path: str) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EPERM):
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
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        freed = st.st_size if st.st_nlink <= 2 else 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return freed
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700)
    freed = 0
    with os.scandir(path) as entries:
        names = [e.path for e in entries]
    for child in names:
        freed += delete_path(child)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)
    return freed


@contextlib.contextmanager
def writable_dir(path: str) -> Iterator[None]:
    """Let this process change entries of a read-only store directory, then make it canonical again."""
    st = os.lstat(path)
    os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
    try:
        yield
    finally:
        canonicalise_timestamp_and_permissions(path)
