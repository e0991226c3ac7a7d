"""Copying what a builder wrote into fresh inodes of the store's own, before anything is hashed.

Renaming the builder's files into the store keeps their inodes, and whoever still holds a writable fd
of one (a process the builder handed it to over a unix socket) can change the store path after its
hash was recorded: Nix's CVE-2024-27297 (GHSA-2ffj-w4mj-pg37) and, between two builds, CVE-2025-46416.
A copy made by storekit is out of reach of any such fd. Nix's first fix copied by path and followed
symlinks, so an output that *was* a symlink to a host file copied the host file in
(GHSA-g3g9-5vj6-r3gj); here nothing is followed:

- every entry is looked at with `lstat` relative to its directory's fd, opened with `O_NOFOLLOW`
  (and `O_NONBLOCK`, so a FIFO put in a file's place cannot hang the copy), and checked again with
  `fstat` on what was opened; symlinks are copied as symlinks (`readlinkat`), other kinds refused;
- the walk is iterative and holds one source and one destination directory fd (deep outputs neither
  recurse nor exhaust fds), climbing back through `..` and checking the inode it arrives at.

File contents go through `copy_file_range` (a reflink on file systems that share extents, an in-kernel
copy elsewhere). Permissions are carried over (so the group/world-writable check still sees them);
`canonical.canonicalise_path` makes them canonical afterwards.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping

from storekit.errors import BuildError, StoreError
from storekit.store.deferred import later
from storekit.store.fsdelete import remove_tree

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CHUNK = 1 << 30


class _Frame:
    __slots__ = ("dst_id", "pending", "src_id")
    src_id: tuple[int, int]
    dst_id: tuple[int, int]
    pending: list[str]

    def __init__(
        self,
        src_id: tuple[int, int],
        dst_id: tuple[int, int],
        pending: list[str] | None = None,
    ) -> None:
        self.src_id = src_id
        self.dst_id = dst_id
        self.pending = list() if pending is None else pending


def copy_outputs(label: str, stage: str, scratch: str, built: Mapping[str, str]) -> dict[str, str]:
    """Copy each output (name -> path inside `stage/scratch`) to `stage/<its base name>`, then hand the
    builder's `scratch` dir to the background deletions (`store.deferred`: in a run of builds it goes
    off the critical path, before the staging dir it is in); returns where the copies are.
    `BuildError` (for the build `label`) when an output cannot be copied; a missing one is left for
    the caller's check to report."""
    copies = {}
    stage_fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        scratch_fd = os.open(scratch, _DIR, dir_fd=stage_fd)
        try:
            for name, location in built.items():
                base = os.path.basename(location)
                copies[name] = os.path.join(stage, base)
                try:
                    os.stat(base, dir_fd=scratch_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                try:
                    copy_output(scratch_fd, base, stage_fd, base)
                except StoreError as e:
                    raise BuildError(label, f"output '{name}': {e}") from e
                except OSError as e:
                    raise BuildError(
                        label, f"output '{name}': cannot copy it into the store: {e.strerror}"
                    ) from e
        finally:
            os.close(scratch_fd)

        def remove_scratch() -> None:
            remove_tree(stage, scratch)

        later(remove_scratch)
    finally:
        os.close(stage_fd)
    return copies


def copy_output(src_dir: int, name: str, dst_dir: int, dst_name: str) -> int:
    """Copy entry `name` of directory fd `src_dir` to a new entry `dst_name` of `dst_dir`; returns
    the bytes of file contents copied. `StoreError` for a file kind a store path cannot hold."""
    st = _lstat(src_dir, name)
    if not stat.S_ISDIR(st.st_mode):
        return _copy_leaf(src_dir, name, dst_dir, dst_name, st)
    src = _open_dir(src_dir, name)
    os.mkdir(dst_name, 0o700, dir_fd=dst_dir)
    dst = os.open(dst_name, _DIR, dir_fd=dst_dir)
    try:
        copied = _walk(src, dst, (_id(os.fstat(src_dir)), _id(os.fstat(dst_dir))))
    finally:
        os.chmod(dst_name, stat.S_IMODE(st.st_mode) & 0o777 | 0o700, dir_fd=dst_dir)
    return copied


def _walk(src: int, dst: int, parents: tuple[tuple[int, int], tuple[int, int]]) -> int:
    """Copy the contents of directory `src` into the empty directory `dst`; consumes both fds."""
    frames = [_Frame(_id(os.fstat(src)), _id(os.fstat(dst)), sorted(os.listdir(src), reverse=True))]
    copied = 0
    try:
        while frames:
            frame = frames[-1]
            if frame.pending:
                child = frame.pending.pop()
                st = _lstat(src, child)
                if not stat.S_ISDIR(st.st_mode):
                    copied += _copy_leaf(src, child, dst, child, st)
                    continue
                sub_src = _open_dir(src, child)
                os.mkdir(child, 0o700, dir_fd=dst)
                sub_dst = os.open(child, _DIR, dir_fd=dst)
                os.close(src)
                os.close(dst)
                src, dst = sub_src, sub_dst
                frames.append(
                    _Frame(_id(os.fstat(src)), _id(os.fstat(dst)), sorted(os.listdir(src), reverse=True))
                )
                continue
            frames.pop()
            want_src, want_dst = (frames[-1].src_id, frames[-1].dst_id) if frames else parents
            src = _climb(src, want_src)
            dst = _climb(dst, want_dst)
    finally:
        os.close(src)
        os.close(dst)
    return copied


def _climb(fd: int, want: tuple[int, int]) -> int:
    up = os.open("..", _DIR, dir_fd=fd)
    os.close(fd)
    if _id(os.fstat(up)) != want:
        os.close(up)
        raise StoreError("an output was moved while storekit copied it")
    return up


def _id(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _lstat(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def _open_dir(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except PermissionError:
        return _reopen(dir_fd, name, os.O_DIRECTORY, _DIR)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StoreError(f"'{name}' changed kind while storekit copied it") from e
        raise


def _reopen(dir_fd: int, name: str, kind: int, flags: int) -> int:
    """Open an entry its owner made unreadable: pin it (O_PATH), give the owner read, open the pin."""
    pinned = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | kind, dir_fd=dir_fd)
    try:
        st = os.fstat(pinned)
        if stat.S_ISLNK(st.st_mode):
            raise StoreError(f"'{name}' changed kind while storekit copied it")
        os.chmod(f"/proc/self/fd/{pinned}", stat.S_IMODE(st.st_mode) | 0o500)
        return os.open(f"/proc/self/fd/{pinned}", flags & ~os.O_NOFOLLOW)
    finally:
        os.close(pinned)


def _copy_leaf(src_dir: int, name: str, dst_dir: int, dst_name: str, st: os.stat_result) -> int:
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
        return 0
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"file '{name}' has an unsupported type (only files, dirs, symlinks)")
    try:
        src = os.open(name, _FILE, dir_fd=src_dir)
    except PermissionError:
        src = _reopen(dir_fd=src_dir, name=name, kind=0, flags=_FILE)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"'{name}' changed kind while storekit copied it") from e
        raise
    try:
        fst = os.fstat(src)
        if not stat.S_ISREG(fst.st_mode):
            raise StoreError(f"'{name}' changed kind while storekit copied it")
        mode = stat.S_IMODE(fst.st_mode) & 0o777 | 0o600
        dst = os.open(
            dst_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=dst_dir,
        )
        try:
            copied = _copy_bytes(src, dst)
            os.fchmod(dst, stat.S_IMODE(fst.st_mode) & 0o777)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return copied


def _copy_bytes(src: int, dst: int) -> int:
    """Everything from `src` to `dst`, in the kernel when it can (copy_file_range), else read/write."""
    total = 0
    try:
        while n := os.copy_file_range(src, dst, _CHUNK):
            total += n
        return total
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while data := os.read(src, 1 << 20):
        os.write(dst, data)
        total += len(data)
    return total
