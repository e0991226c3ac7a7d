"""Staging a path into a local store: from a NAR stream, or by linking the files of another local store.

Both produce a tree in a staging dir that `LocalStore.install_staged` then moves into place and
registers. Both check the result against the path's metadata first (NAR hash, size, content address),
so whether bytes came over the network or as hard links, nothing unverified becomes valid.

Linking shares a file's inode with the source store, which is safe only because store files are
immutable: a file is hard-linked only when it is already canonical (read-only, mtime 1) and ours, so
making the new copy canonical cannot change the source. Otherwise it is reflinked (`ioctl FICLONE`,
on btrfs, XFS, …) or copied in the kernel (`copy_file_range`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from enum import Enum
from typing import BinaryIO

from storekit.errors import HashMismatch, StoreError
from storekit.store.base import Store, ValidPathInfo
from storekit.store.pipeline import HashedPrefetch
from storekit.storepath import StorePath

FICLONE = 0x40049409  # _IOW(0x94, 9, int), from <linux/fs.h>
_NOT_SUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}


class LinkMode(Enum):
    """How files get from one local store to another on the same machine."""

    AUTO = "auto"  # hard link canonical files, else reflink, else copy
    REFLINK = "reflink"  # reflink, else copy: independent inodes, shared extents
    COPY = "copy"  # copy file contents (still no NAR serialisation)
    STREAM = "stream"  # serialise to a NAR and restore it, as `nix copy` does


def local_source_path(src: Store, path: StorePath) -> str | None:
    """Where `path`'s files are, if `src` keeps them on this machine (a local or overlay store)."""
    from storekit.store.local import LocalStore
    from storekit.store.overlay import OverlayStore
    from storekit.store.substituters import Substituters

    if isinstance(src, Substituters):
        src = src.source_of(path)
    if isinstance(src, OverlayStore):
        return src.real_path(path)
    if isinstance(src, LocalStore):
        return src.real_path(path)
    return None


def stage_from_nar(chunks: Iterator[bytes], stage: str, info: ValidPathInfo) -> str:
    """Restore a NAR into `<stage>/x`, checking its hash, size and content address; returns the tree."""
    from storekit.nar.fs import restore

    staged = os.path.join(stage, "x")
    with HashedPrefetch(chunks) as source:
        restore(source, staged)
        got_hash, got_size = source.finish()
    _check(info, staged, got_hash, got_size, "")
    return staged


def stage_by_linking(real: str, stage: str, info: ValidPathInfo, mode: LinkMode, src_uri: str) -> str:
    """Recreate the tree at `real` in `<stage>/x` from links or copies, then check its NAR hash."""
    from storekit.nar.fs import hash_path

    staged = os.path.join(stage, "x")
    _link_tree(real, staged, mode)
    got_hash, got_size = hash_path(staged)
    _check(info, staged, got_hash, got_size, f" (linked from '{src_uri}')")
    return staged


def _check(info: ValidPathInfo, staged: str, got_hash: object, got_size: int, how: str) -> None:
    from storekit.store.local import check_content_address  # the same rule LocalStore applies

    if got_hash != info.nar_hash:
        raise HashMismatch(f"NAR of '{info.path}'{how}", str(info.nar_hash), str(got_hash))
    if got_size != info.nar_size:
        raise StoreError(
            f"size mismatch importing path '{info.path}'{how}: specified {info.nar_size} bytes, got "
            f"{got_size}; the NAR is truncated or not the one its metadata describes"
        )
    check_content_address(info, staged, info.nar_hash)


def _link_tree(src: str, dst: str, mode: LinkMode) -> None:
    """Recreate `src` at `dst`: directories made, symlinks copied, regular files linked or copied."""
    stack = [(src, dst)]
    while stack:
        s, d = stack.pop()
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(d, 0o755)
            stack.extend((os.path.join(s, n), os.path.join(d, n)) for n in os.listdir(s))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(st.st_mode):
            _link_file(s, d, st, mode)
        else:
            raise StoreError(f"file '{s}' has an unsupported type (only files, dirs, symlinks)")


def _link_file(src: str, dst: str, st: os.stat_result, mode: LinkMode) -> None:
    if mode is LinkMode.AUTO and _is_canonical(st):
        try:
            os.link(src, dst)
            return
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES):
                raise
    _copy_file(src, dst, st, reflink=mode is not LinkMode.COPY)


def _is_canonical(st: os.stat_result) -> bool:
    """Safe to share: read-only, mtime 1, owned by us (canonicalising the link cannot touch it)."""
    return (
        st.st_uid == os.geteuid()
        and stat.S_IMODE(st.st_mode) in (0o444, 0o555)
        and st.st_mtime_ns == 1_000_000_000
    )


def _copy_file(src: str, dst: str, st: os.stat_result, *, reflink: bool) -> None:
    perm = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    with open(src, "rb") as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, perm)
        with open(fd, "wb") as fout:
            if reflink and _try_reflink(fin.fileno(), fd):
                return
            _copy_range(fin, fout, st.st_size)


def _try_reflink(src_fd: int, dst_fd: int) -> bool:
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as e:
        if e.errno in _NOT_SUPPORTED:
            return False
        raise
    return True


def _copy_range(fin: BinaryIO, fout: BinaryIO, size: int) -> None:
    """`copy_file_range` (in-kernel, may share extents), falling back to a plain copy."""
    in_fd, out_fd = fin.fileno(), fout.fileno()
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(in_fd, out_fd, size - done)
            if n == 0:
                break
            done += n
    except OSError as e:
        if e.errno not in _NOT_SUPPORTED:
            raise
        os.lseek(in_fd, done, os.SEEK_SET)
        os.lseek(out_fd, done, os.SEEK_SET)
        shutil.copyfileobj(fin, fout, 1 << 20)
