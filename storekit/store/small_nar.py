"""Staging a small NAR that is one regular file, from memory: checked first, written canonical at once.

Most paths of a closure of many small paths (text files, `.drv`s, scripts) are a NAR of one regular
file of a few hundred bytes. The general way (`nar.restore` from a stream, hash while reading, then
`canonicalise_path`, then the content address checked by reading the file back) costs about 25
system calls and 250 µs of Python for such a path. Held in memory, the NAR's hash, size and content
address are checked before anything touches the disk, and the file is created with its final mode,
its xattrs (inherited default ACLs) dropped and its mtime set to 1 through the open descriptor:
8 system calls, and nothing to undo for a NAR that fails its checks.

Anything else (a directory, a symlink, a NAR with anything odd about it, a self-referencing content
address) gets None, and the caller takes the general way, which words every refusal.
"""

from __future__ import annotations

import errno
import os
import time

from storekit.errors import HashMismatch, StoreError
from storekit.fdtree import fs_error
from storekit.hashing import Hash, new_hasher
from storekit.nar.format import CLOSE as NODE_END
from storekit.nar.format import EXECUTABLE_START, HEADER, REGULAR_START, ZEROS, padding, read_u64
from storekit.store.base import ValidPathInfo
from storekit.store.canonical import IGNORED_XATTRS, MTIME_STORE
from storekit.store.content_address import ContentAddress
from storekit.storepath import FileIngestionMethod

#: The largest NAR staged this way (`NarSize`); larger ones stream through `nar.restore`.
SMALL_NAR = 64 << 10

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PLAIN, _EXEC = HEADER + REGULAR_START, HEADER + EXECUTABLE_START


def single_file(nar: bytes) -> tuple[bool, memoryview] | None:
    """(executable, contents) when `nar` is exactly one regular file and nothing else, else None."""
    if nar.startswith(_PLAIN):
        executable, start = False, len(_PLAIN)
    elif nar.startswith(_EXEC):
        executable, start = True, len(_EXEC)
    else:
        return None
    if len(nar) < start + 8:
        return None
    size = read_u64(nar, start)
    begin = start + 8
    end = begin + size
    pad = padding(size)
    if len(nar) != end + pad + len(NODE_END) or nar[end : end + pad] != ZEROS[:pad]:
        return None
    if nar[end + pad :] != NODE_END:
        return None
    return executable, memoryview(nar)[begin:end]


def stage_in_memory(nar: bytes, stage: str, info: ValidPathInfo, name: str) -> str | None:
    """Write the one-file NAR `nar` at `<stage>/<name>`, canonical, after checking it against `info`
    (NAR hash and size, content address); None when `nar` is not such a NAR (nothing is written)."""
    parsed = single_file(nar)
    if parsed is None:
        return None
    executable, contents = parsed
    ca = _content_address(info)
    if ca is _UNSUPPORTED:
        return None
    got = Hash("sha256", new_hasher("sha256").update_and_digest(nar))
    if got != info.nar_hash:
        raise HashMismatch(f"NAR of '{info.path}'", str(info.nar_hash), str(got))
    if len(nar) != info.nar_size:
        raise StoreError(
            f"size mismatch importing path '{info.path}': specified {info.nar_size} bytes, got "
            f"{len(nar)}; the NAR is truncated or not the one its metadata describes"
        )
    if isinstance(ca, ContentAddress):
        if ca.kind == "fixed" and ca.method is FileIngestionMethod.RECURSIVE:  # of the NAR
            found = got if ca.hash.algo == "sha256" else Hash(ca.hash.algo, _digest(ca.hash.algo, nar))
        else:  # `text:` and flat `fixed:`: of the file's bytes
            found = Hash(ca.hash.algo, _digest(ca.hash.algo, bytes(contents)))
        if found != ca.hash:
            raise HashMismatch(f"content address of '{info.path}'", str(ca.hash), str(found))
    staged = os.path.join(stage, name)
    _write(os.fsencode(staged), contents, 0o555 if executable else 0o444)
    return staged


def _digest(algo: str, data: bytes) -> bytes:
    return new_hasher(algo).update_and_digest(data)


def _write(path: bytes, contents: memoryview, mode: int) -> None:
    """Create `path` (`O_EXCL`, not through a symlink) holding `contents`, with canonical metadata."""
    try:
        fd = os.open(path, _CREATE, mode)
    except OSError as e:
        raise fs_error("creating file", path, e) from e
    try:
        data = contents
        while data:
            data = data[os.write(fd, data) :]
        os.fchmod(fd, mode)  # the umask may have taken bits of `mode`
        for attr in _xattrs(fd):
            if attr not in IGNORED_XATTRS:
                os.removexattr(fd, attr)
        os.utime(fd, ns=(time.time_ns(), MTIME_STORE * 1_000_000_000))
    except BaseException as e:
        os.close(fd)
        os.unlink(path)
        if isinstance(e, OSError):
            raise fs_error("writing file", path, e) from e
        raise
    os.close(fd)


def _xattrs(fd: int) -> list[str]:
    try:
        return os.listxattr(fd)
    except OSError as e:  # a file system without xattrs, as `canonical._remove_xattrs` allows
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EPERM):
            return []
        raise


class _Unsupported:
    def __repr__(self) -> str:
        return "UNSUPPORTED"


_UNSUPPORTED = _Unsupported()


def _content_address(info: ValidPathInfo) -> ContentAddress | _Unsupported | None:
    """`info`'s content address (None: it has none), or `_UNSUPPORTED` for one the general way
    checks (a self-reference is hashed modulo the path's own hash part)."""
    if info.ca is None:
        return None
    ca = ContentAddress.parse(info.ca, blake3=True)
    if ca.kind == "fixed" and ca.method is FileIngestionMethod.RECURSIVE and info.path in info.references:
        return _UNSUPPORTED
    return ca
