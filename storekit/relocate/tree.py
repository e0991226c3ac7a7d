"""Relocating a store path between two stores on this machine: files in, files out, no NAR between.

The same rules as `stream`, applied while walking the source's directory in NAR order: each file is
mapped (or read, when small) and searched once; a file with nothing to rewrite is hard-linked when
it is canonical and ours, as `storekit copy` does between local stores (store files are immutable,
so sharing the inode is safe), else copied in the kernel (`copy_file_range`); only files that change
pass through Python. Meanwhile the NAR of the result is hashed on another thread from the same
mapped pages (hashlib releases the GIL): in keep-hash mode that is the NAR hash, in
content-addressed mode Nix's hash modulo the path's own old hash part (those bytes zeroed, their NAR
offsets appended), which names the path. A large closure, most of which changes nowhere, costs
little more than hashing it once.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import stat
import threading
from collections.abc import Iterator

from storekit.errors import FileSystemError
from storekit.hashing import Hash, new_hasher
from storekit.nar import format as fmt
from storekit.relocate.rules import Rules, find_all, find_dir
from storekit.relocate.stream import PathReport, RelPath, entry_names, relocate_contents, relocate_target

_SMALL = 1 << 16  # read files up to this size; map larger ones
_BATCH = 1 << 16  # NAR framing is handed to the hashing thread in batches of this size
_LINK_FALLBACK = {errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES}
_COPY_FALLBACK = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}

Contents = bytes | mmap.mmap


def stage_tree(
    src: str, dst: str, rules: Rules, own_hash: bytes | None, report: PathReport, *, link: bool
) -> tuple[Hash, int]:
    """Recreate the store path at `src`, relocated, at `dst` (which must not exist).

    Returns the sha256 of the result's NAR (modulo `own_hash` when given) and the NAR's size.
    """
    sink = _NarSink(own_hash)
    walk = _Walk(rules, own_hash, report, link, sink)
    try:
        sink.token(fmt.HEADER)
        walk.node(os.fsencode(src), os.fsencode(dst), ())
    finally:
        digest, size = sink.finish()
    return digest, size


class _Walk:
    def __init__(self, rules: Rules, own_hash: bytes | None, report: PathReport, link: bool, sink: _NarSink):
        self.rules, self.own_hash, self.report, self.link, self.sink = rules, own_hash, report, link, sink

    def node(self, src: bytes, dst: bytes, rel: RelPath) -> None:
        """Relocate the tree at `src` to `dst`, walking it with an explicit stack (depth is input)."""
        stack: list[tuple[Iterator[tuple[bytes, bytes]], bytes, bytes, RelPath]] = []
        current = src
        try:
            self.visit(src, dst, rel, stack)
            while stack:
                entries, s, d, r = stack[-1]
                pair = next(entries, None)
                if pair is None:
                    stack.pop()
                    # the directory's `)`, and the `)` of the entry holding it (not for the root)
                    self.sink.token(fmt.ENTRY_END if stack else fmt.CLOSE)
                    continue
                old, new = pair
                self.sink.token(fmt.entry_header(new))
                current = s + b"/" + old
                if not self.visit(current, d + b"/" + new, (*r, new), stack):
                    self.sink.token(fmt.CLOSE)
        except OSError as e:
            shown = os.fsdecode(current)
            raise FileSystemError(shown, f"relocating '{shown}': {e.strerror or e}") from e

    def visit(
        self,
        src: bytes,
        dst: bytes,
        rel: RelPath,
        stack: list[tuple[Iterator[tuple[bytes, bytes]], bytes, bytes, RelPath]],
    ) -> bool:
        """One node: a directory is created and pushed (True); anything else is relocated now."""
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(dst, 0o755)
            self.sink.token(fmt.DIRECTORY_START)
            names = entry_names(rel, sorted(os.listdir(src)), self.rules, self.own_hash, self.report)
            stack.append((iter(names), src, dst, rel))
            return True
        if stat.S_ISLNK(st.st_mode):
            self.symlink(os.readlink(src), dst, rel)
        elif stat.S_ISREG(st.st_mode):
            self.regular(src, dst, st, rel)
        else:
            shown = os.fsdecode(src)
            raise FileSystemError(
                shown, f"file '{shown}' has an unsupported type (only files, dirs, symlinks)"
            )
        return False

    def symlink(self, target: bytes, dst: bytes, rel: RelPath) -> None:
        new = relocate_target(rel, target, self.rules, self.own_hash, self.report)
        hits = find_all(new, self.own_hash) if self.own_hash is not None else []
        os.symlink(new, dst)
        self.sink.token(fmt.SYMLINK_START + fmt.u64(len(new)))
        self.sink.contents(new, hits)
        self.sink.token(fmt.ZEROS[: fmt.padding(len(new))] + fmt.CLOSE)

    def regular(self, src: bytes, dst: bytes, st: os.stat_result, rel: RelPath) -> None:
        executable = bool(st.st_mode & stat.S_IXUSR)
        data = _read(src, st.st_size)
        handed = False
        try:
            if not _touched(data, self.rules, self.own_hash):
                _place(src, dst, st, executable, self.link)
                size = len(data)
                self.sink.token(fmt.regular_header(size, executable))
                handed = True  # the sink closes a mapping once it has hashed it
                self.sink.contents(data, [])
            else:
                out, hits = relocate_contents(rel, bytes(data), self.rules, self.own_hash, self.report)
                _write(dst, out, executable)
                size = len(out)
                self.sink.token(fmt.regular_header(size, executable))
                self.sink.contents(out, hits)
        finally:
            if not handed and isinstance(data, mmap.mmap):
                data.close()
        self.sink.token(fmt.ZEROS[: fmt.padding(size)] + fmt.CLOSE)


def _read(path: bytes, size: int) -> Contents:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if size > _SMALL:
            return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        data = os.read(fd, size)
        while len(data) < size:
            more = os.read(fd, size - len(data))
            if not more:
                raise FileSystemError(
                    os.fsdecode(path), f"file '{os.fsdecode(path)}' shrank while being read"
                )
            data += more
        return data
    finally:
        os.close(fd)


def _touched(data: Contents, rules: Rules, own_hash: bytes | None) -> bool:
    """Whether anything in `data` is to be rewritten (or, in content-addressed mode, patched later)."""
    if rules.moves_dir and find_dir(data, rules.old_dir):
        return True
    needles = [*rules.hash_parts, own_hash] if own_hash is not None else list(rules.hash_parts)
    return any(data.find(n) >= 0 for n in needles)


def _place(src: bytes, dst: bytes, st: os.stat_result, executable: bool, link: bool) -> None:
    """An unchanged file: a hard link when it is canonical and ours, else a kernel copy."""
    if link and _shareable(st):
        try:
            os.link(src, dst)
            return
        except OSError as e:
            if e.errno not in _LINK_FALLBACK:
                raise
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        out = os.open(
            dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755 if executable else 0o644
        )
        try:
            _copy(fd, out, st.st_size, src)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _copy(fd: int, out: int, size: int, src: bytes) -> None:
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(fd, out, size - done, done, done)
        except OSError as e:
            if e.errno not in _COPY_FALLBACK:
                raise
            n = os.pwrite(out, os.pread(fd, min(size - done, 1 << 20), done), done)
        if n == 0:
            raise FileSystemError(os.fsdecode(src), f"file '{os.fsdecode(src)}' shrank while being copied")
        done += n


def _shareable(st: os.stat_result) -> bool:
    """Read-only, mtime 1 and ours: making the new name canonical cannot change the source."""
    return (
        st.st_uid == os.geteuid()
        and stat.S_IMODE(st.st_mode) in (0o444, 0o555)
        and st.st_mtime_ns == 1_000_000_000
        and st.st_nlink < 60000
    )


def _write(dst: bytes, data: bytes, executable: bool) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755 if executable else 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _NarSink:
    """sha256 of a NAR fed in order (framing tokens and contents), on a thread.

    With a `modulus` (a hash part), each occurrence the caller points out is hashed as NUL bytes and
    its NAR offset appended at the end: Nix's HashModuloSink, without rescanning the stream.
    """

    def __init__(self, modulus: bytes | None) -> None:
        self.modulus = modulus
        self.pos = 0
        self.matches: list[int] = []
        self._small: list[bytes] = []
        self._small_size = 0
        self._queue: queue.Queue[Contents | None] = queue.Queue(maxsize=32)
        self._hasher = new_hasher("sha256")
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="relocate-nar-hash", daemon=True)
        self._thread.start()

    def token(self, data: bytes) -> None:
        self.pos += len(data)
        self._small.append(data)
        self._small_size += len(data)
        if self._small_size >= _BATCH:
            self._flush()

    def contents(self, data: Contents, hits: list[int]) -> None:
        """File contents (or a symlink target); `hits` are the offsets of the modulus in them."""
        if hits and self.modulus is not None:
            assert isinstance(data, bytes)
            self.matches += (self.pos + i for i in hits)
            data = data.replace(self.modulus, bytes(len(self.modulus)))
        self.pos += len(data)
        if isinstance(data, bytes) and len(data) < _BATCH:
            self._small.append(data)
            self._small_size += len(data)
            if self._small_size >= _BATCH:
                self._flush()
            return
        self._flush()
        self._queue.put(data)

    def _flush(self) -> None:
        if self._small:
            self._queue.put(b"".join(self._small))
            self._small.clear()
            self._small_size = 0

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:
                    with memoryview(item) as view:
                        self._hasher.update(view)
            except BaseException as e:  # handed to the caller by finish()
                self._error = e
            finally:
                if isinstance(item, mmap.mmap):
                    item.close()

    def finish(self) -> tuple[Hash, int]:
        self._flush()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        for offset in self.matches:
            self._hasher.update(f"|{offset}".encode())
        return self._hasher.finish(), self.pos
