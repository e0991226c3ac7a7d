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
import itertools
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import BinaryIO

from storekit.errors import HashMismatch, StoreError
from storekit.fdtree import DirChain, list_names, show_path
from storekit.store.base import Store, ValidPathInfo
from storekit.store.pipeline import HashedPrefetch
from storekit.store.streams import ChunkReader, HashingReader
from storekit.storepath import StorePath

FICLONE = 0x40049409  # _IOW(0x94, 9, int), from <linux/fs.h>
PREFETCH_ABOVE = 1 << 20
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


def stage_from_nar(chunks: Iterator[bytes], stage: str, info: ValidPathInfo, name: str = "x") -> str:
    """Restore a NAR into `<stage>/<name>`, checking its hash, size and content address; returns the tree.

    A NAR of more than `PREFETCH_ABOVE` bytes is read and hashed on a thread of its own, overlapping
    with the writes; a small one is read inline, where a thread would cost more than it saves.
    """
    from storekit.nar.fs import restore

    staged = os.path.join(stage, name)
    if 0 < info.nar_size <= PREFETCH_ABOVE:
        source = HashingReader(ChunkReader(chunks))
        try:
            restore(source, staged, nar_size=info.nar_size)
            while source.read(1 << 16):  # to the end: the download's own checks run there
                pass
        finally:
            close = getattr(chunks, "close", None)  # a generator holding a download: let it go
            if close is not None:
                close()
        got_hash, got_size = source.finish()
        _check(info, staged, got_hash, got_size, "")
        return staged
    with HashedPrefetch(chunks) as prefetch:
        restore(prefetch, staged, nar_size=info.nar_size or None)
        got_hash, got_size = prefetch.finish()
    _check(info, staged, got_hash, got_size, "")
    return staged


def stage_nar(chunks: Iterable[bytes], stage: str, info: ValidPathInfo, name: str = "x") -> tuple[str, bool]:
    """`stage_from_nar`, and whether the tree is canonical already: a NAR of at most `SMALL_NAR`
    bytes that is one regular file is taken whole into memory, checked, and written canonical
    (`small_nar.stage_in_memory`); any other NAR goes through `stage_from_nar`, to be canonicalised."""
    from storekit.store.small_nar import SMALL_NAR, stage_in_memory

    iterator = iter(chunks)
    if not 0 < info.nar_size <= SMALL_NAR:
        return stage_from_nar(iterator, stage, info, name), False
    try:
        parts: list[bytes] = []
        got = 0
        for chunk in iterator:  # to the end, where the download's own checks run (file hash, length)
            parts.append(chunk)
            got += len(chunk)
            if got > info.nar_size:
                break  # longer than promised: the general way reads on and words it
        else:
            staged = stage_in_memory(b"".join(parts), stage, info, name)
            if staged is not None:
                return staged, True
        return stage_from_nar(itertools.chain(parts, iterator), stage, info, name), False
    finally:
        close = getattr(iterator, "close", None)  # a generator holding a download: let it go
        if close is not None:
            close()


def stage_by_linking(
    real: str, stage: str, info: ValidPathInfo, mode: LinkMode, src_uri: str, name: str = "x"
) -> str:
    """Recreate the tree at `real` in `<stage>/<name>` from links or copies, then check its NAR hash."""
    from storekit.nar.fs import hash_path

    staged = os.path.join(stage, name)
    link_tree(real, staged, mode)
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


def link_tree(src: str, dst: str, mode: LinkMode) -> None:
    """Recreate `src` at `dst`: directories made, symlinks copied, regular files linked or copied.

    Iterative and relative to directory descriptors on both sides (`DirChain`), so a tree of any
    depth is copied and no symlink is followed.
    """
    st = os.lstat(src)
    if not stat.S_ISDIR(st.st_mode):
        _link_entry(None, os.fsencode(src), None, os.fsencode(dst), st, mode)
        return
    os.mkdir(dst, 0o755)
    s_chain = DirChain.open(os.fsencode(src))
    d_chain = DirChain.open(os.fsencode(dst))
    try:
        pending = [list_names(s_chain.fd)]
        while pending:
            if not pending[-1]:
                pending.pop()
                if s_chain.depth:
                    s_chain.pop()
                    d_chain.pop()
                continue
            name = pending[-1].pop()
            st = os.stat(name, dir_fd=s_chain.fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o755, dir_fd=d_chain.fd)
                s_chain.push(name)
                d_chain.push(name)
                pending.append(list_names(s_chain.fd))
            else:
                _link_entry(s_chain.fd, name, d_chain.fd, name, st, mode, s_chain)
    finally:
        s_chain.close()
        d_chain.close()


def _link_entry(
    src_dir: int | None,
    name: bytes,
    dst_dir: int | None,
    dst_name: bytes,
    st: os.stat_result,
    mode: LinkMode,
    chain: DirChain | None = None,
) -> None:
    """One non-directory entry: a symlink copied, a regular file linked or copied."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), dst_name, dir_fd=dst_dir)
    elif stat.S_ISREG(st.st_mode):
        _link_file(src_dir, name, dst_dir, dst_name, st, mode)
    else:
        shown = show_path(chain.path(name) if chain is not None else name)
        raise StoreError(f"file '{shown}' has an unsupported type (only files, dirs, symlinks)")


def _link_file(
    src_dir: int | None, name: bytes, dst_dir: int | None, dst_name: bytes, st: os.stat_result, mode: LinkMode
) -> None:
    if mode is LinkMode.AUTO and _is_canonical(st):
        try:
            os.link(name, dst_name, src_dir_fd=src_dir, dst_dir_fd=dst_dir, follow_symlinks=False)
            return
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES):
                raise
    _copy_file(src_dir, name, dst_dir, dst_name, st, reflink=mode is not LinkMode.COPY)


def _is_canonical(st: os.stat_result) -> bool:
    """Safe to share: read-only, mtime 1, owned by us (canonicalising the link cannot touch it)."""
    return (
        st.st_uid == os.geteuid()
        and stat.S_IMODE(st.st_mode) in (0o444, 0o555)
        and st.st_mtime_ns == 1_000_000_000
    )


def _copy_file(
    src_dir: int | None,
    name: bytes,
    dst_dir: int | None,
    dst_name: bytes,
    st: os.stat_result,
    *,
    reflink: bool,
) -> None:
    perm = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
    in_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    with open(in_fd, "rb") as fin:
        fd = os.open(
            dst_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            perm,
            dir_fd=dst_dir,
        )
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
