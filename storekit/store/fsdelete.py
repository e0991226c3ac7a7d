"""Deleting a tree that someone else may be changing: fd-relative, never following a symlink, iterative.

A build directory, a builder's scratch store dir or an unpacked NAR is shaped by whoever wrote it, and
may still be changed by a process storekit does not control while it is deleted. Deleting by path
(`lstat(p)` then `scandir(p)` then `unlink(p/x)`) follows a directory that was swapped for a symlink
between two calls, and deletes the files the symlink points to with storekit's rights: Nix's
CVE-2025-46415 and CVE-2025-52991/52992/52993. So here every step is relative to an open directory fd:

- a directory is entered with `openat(O_NOFOLLOW | O_DIRECTORY)`, so a symlink put in its place is
  refused (and then unlinked as the symlink it is), never followed;
- entries are removed with `unlinkat` relative to the fd of the directory that was listed;
- the walk is iterative and holds one directory fd at a time (a 100,000-level tree neither recurses
  nor runs out of fds): it climbs back with `openat(fd, "..")` and checks that it arrived at the very
  directory (device and inode) it came from; if the tree was moved meanwhile it stops with an error
  rather than delete somewhere else.

Read-only directories (store paths) are made writable through their own fd first.
"""

from __future__ import annotations

import errno
import os
import stat

from storekit.errors import StoreError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: How often one entry may change kind, or one directory be refilled, before storekit gives up.
_RETRIES = 3


class _Frame:
    __slots__ = ("dev", "ino", "name", "pending", "relisted")
    name: str
    """The directory's name in its parent."""
    dev: int
    ino: int
    pending: list[str]
    relisted: int

    def __init__(
        self,
        name: str,
        dev: int,
        ino: int,
        pending: list[str] | None = None,
        relisted: int = 0,
    ) -> None:
        self.name = name
        self.dev = dev
        self.ino = ino
        self.pending = list() if pending is None else pending
        self.relisted = relisted


def remove_tree(parent: int | str, name: str) -> int:
    """Delete `name` (a file, symlink or whole directory tree) inside the directory `parent`.

    `parent` is an open directory fd (left open) or a trusted path. Nothing is followed: a symlink is
    removed, not its target. Missing is fine. Returns the bytes freed, counted like Nix's `deletePath`
    (files with at most two links). Raises `StoreError` when the tree is moved away or keeps being
    refilled while it is deleted, or cannot be deleted.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"remove_tree takes one name inside the parent, not {name!r}")
    parent_fd = os.open(parent, _DIR_FLAGS & ~os.O_NOFOLLOW) if isinstance(parent, str) else os.dup(parent)
    try:
        top = os.fstat(parent_fd)
        fd, freed = _remove_entry(parent_fd, name)
        if fd is None:
            return freed
        return freed + _walk(fd, name, (top.st_dev, top.st_ino))
    finally:
        os.close(parent_fd)


def _remove_entry(dir_fd: int, name: str) -> tuple[int | None, int]:
    """Unlink a non-directory (returns None, bytes freed) or open a directory (returns its fd, 0)."""
    for _ in range(_RETRIES):
        st = _lstat(dir_fd, name)
        if st is None:
            return None, 0
        if stat.S_ISDIR(st.st_mode):
            fd = _enter(dir_fd, name)
            if fd is not None:
                return fd, 0
            continue  # no longer a directory: look again
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return None, 0
        except IsADirectoryError:
            continue  # swapped for a directory since the lstat
        return None, st.st_size if st.st_nlink <= 2 else 0
    raise StoreError(f"'{name}' keeps changing while storekit deletes it; stopped there")


def _walk(fd: int, name: str, parent_id: tuple[int, int]) -> int:
    """Delete the contents of the open directory `fd` (named `name` in a parent with `parent_id`), then
    the directory itself; consumes `fd`. Depth-first, one fd open at a time."""
    st = os.fstat(fd)
    frames = [_Frame(name, st.st_dev, st.st_ino, os.listdir(fd))]
    freed = 0
    try:
        while frames:
            frame = frames[-1]
            if frame.pending:
                child = frame.pending.pop()
                sub, n = _remove_entry(fd, child)
                freed += n
                if sub is not None:
                    os.close(fd)
                    fd = sub
                    sst = os.fstat(fd)
                    frames.append(_Frame(child, sst.st_dev, sst.st_ino, os.listdir(fd)))
                continue
            if frame.relisted < _RETRIES:  # catch what was added meanwhile
                frame.relisted += 1
                frame.pending = os.listdir(fd)
                if frame.pending:
                    continue
            frames.pop()
            above = (frames[-1].dev, frames[-1].ino) if frames else parent_id
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            ust = os.fstat(fd)
            if (ust.st_dev, ust.st_ino) != above:
                raise StoreError(f"'{frame.name}' was moved while storekit deleted it; stopped there")
            _rmdir(fd, frame.name)
    finally:
        os.close(fd)
    return freed


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _enter(dir_fd: int, name: str) -> int | None:
    """An fd of the directory `name`, made readable and writable for its owner; None if not a dir."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            return None
        if e.errno != errno.EACCES:
            raise
        reopened = _open_unreadable(dir_fd, name)
        if reopened is None:
            return None
        fd = reopened
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
        except PermissionError as e:
            os.close(fd)
            raise StoreError(f"cannot delete the directory '{name}': {e.strerror}") from e
    return fd


def _open_unreadable(dir_fd: int, name: str) -> int | None:
    """Open a directory without read permission: pin it with O_PATH, chmod that inode, then open it."""
    try:
        pinned = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
            return None
        raise
    try:
        st = os.fstat(pinned)
        try:
            os.chmod(f"/proc/self/fd/{pinned}", stat.S_IMODE(st.st_mode) | 0o700)
        except PermissionError as e:
            raise StoreError(f"cannot delete the directory '{name}': {e.strerror}") from e
        return os.open(".", _DIR_FLAGS, dir_fd=pinned)
    finally:
        os.close(pinned)


def _rmdir(dir_fd: int, name: str) -> None:
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno == errno.ENOTEMPTY:
            raise StoreError(f"'{name}' keeps being refilled while storekit deletes it; stopped there") from e
        raise StoreError(f"cannot delete the directory '{name}': {e.strerror}") from e
