"""The NAR module that touches the disk: dump a path, hash it, restore an archive safely.

Dumping walks the tree once with directory file descriptors (one `lstat` per entry, names sorted
bytewise as Nix sorts them) and copies headers and file contents straight into large reused buffers,
so big files are never loaded whole and small ones cost no per-chunk allocation. Hashing runs that
walk in a reader thread while the caller's thread hashes full buffers: `hashlib` and `readv` both
release the GIL, so reading overlaps hashing.

Restoring is in `nar/restore.py` (re-exported here as `restore`).
"""

from __future__ import annotations

import os
import stat

from storekit.errors import FileSystemError
from storekit.hashing import Hash, new_hasher
from storekit.nar import format as fmt

# `typing`, `collections.abc` and `dataclasses` only for the type checker, and `fdtree` only for a
# directory or an error: `storekit hash path` of a file imports this module, and its start-up is most
# of that command's time (tests/cli/test_cli_fast_imports.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue
    from collections.abc import Callable, Generator, Iterator
    from typing import Final, TypeAlias

    from storekit.fdtree import DirChain
    from storekit.nar.restore import restore

BUFFER = 1 << 20
_PIPELINE_BUFFERS = 4
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

StrPath = str | os.PathLike[str]

__all__ = ["BUFFER", "dump_path", "hash_file", "hash_path", "restore"]


def __getattr__(name: str) -> object:
    """`restore`, imported on first use: hashing a path (`storekit hash path`, a short command whose
    start-up is most of its time) does not pay for the NAR reader behind it."""
    if name == "restore":
        from storekit.nar.restore import restore

        return restore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dump_path(path: StrPath) -> Iterator[bytes]:
    """The NAR serialisation of `path` (not following a symlink at `path`), in chunks of up to 1 MiB.

    A small file's NAR goes through a buffer its size, not a 1 MiB one: zeroing that costs more than
    the rest of dumping a build's small output (which every build does, to hash and scan it).
    """
    p = os.fsencode(path)
    size = min(BUFFER, _size_hint(p) + _NAR_FRAMING)
    for buf, n in _fill(_nar_pieces(p), _one_buffer(size)):
        yield bytes(memoryview(buf)[:n])


def hash_path(path: StrPath, algo: str = "sha256") -> tuple[Hash, int]:
    """The hash of `path`'s NAR and the NAR's size, as `nix hash path` and the store database give them."""
    p = os.fsencode(path)
    return _hash_pieces(_nar_pieces(p), algo, size_hint=_size_hint(p))


def hash_file(path: StrPath, algo: str = "sha256") -> Hash:
    """The flat hash of a file's contents (`nix hash file`), following symlinks as Nix does."""
    p = os.fsencode(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _fs_error("opening file", p, e) from e
    try:
        return _hash_pieces(_file_pieces(fd, p), algo, size_hint=os.fstat(fd).st_size)[0]
    finally:
        os.close(fd)


def _file_pieces(fd: int, path: bytes) -> _Pieces:
    yield _Contents(fd, -1, path)


# --- the walk: NAR headers as bytes, file contents as descriptors to read ------------------------


class _Contents:
    """`size` bytes to copy from `fd` (-1: up to end of file); valid until the walk resumes."""

    __slots__ = ("chain", "fd", "name", "size")

    def __init__(self, fd: int, size: int, name: bytes, chain: DirChain | None = None) -> None:
        self.fd: Final = fd
        self.size: Final = size
        self.name: Final = name
        self.chain: Final = chain

    @property
    def path(self) -> bytes:
        return _where(self.name, self.chain)


_Piece: TypeAlias = "bytes | _Contents"
_Pieces: TypeAlias = "Generator[_Piece, None, None]"


def _nar_pieces(path: bytes) -> _Pieces:
    try:
        st = os.lstat(path)
    except OSError as e:
        raise _fs_error("getting status of", path, e) from e
    yield fmt.HEADER
    if not stat.S_ISDIR(st.st_mode):
        yield from _leaf_pieces(None, path, st, None)
        return
    from storekit.fdtree import DirChain

    try:
        chain = DirChain.open(path)
    except OSError as e:
        raise _fs_error("opening directory", path, e) from e
    try:
        yield from _tree_pieces(chain)
    finally:
        chain.close()


def _tree_pieces(chain: DirChain) -> _Pieces:
    """The NAR of the directory `chain` is at, walked iteratively: depth is input, not a limit."""
    yield fmt.DIRECTORY_START
    stack = [iter(_sorted_entries(chain))]
    while True:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            if not stack:
                break
            chain.pop()
            yield fmt.ENTRY_END  # the directory's `)`, then its entry's
            continue
        name, st = entry
        yield fmt.entry_header(name)
        if stat.S_ISDIR(st.st_mode):
            yield fmt.DIRECTORY_START
            try:
                chain.push(name)
            except OSError as e:
                raise _fs_error("opening directory", chain.path(name), e) from e
            stack.append(iter(_sorted_entries(chain)))
        else:
            yield from _leaf_pieces(chain.fd, name, st, chain)
            yield fmt.CLOSE
    yield fmt.CLOSE


def _leaf_pieces(dir_fd: int | None, name: bytes, st: os.stat_result, chain: DirChain | None) -> _Pieces:
    """A regular file's or symlink's node; `chain` (None at the top) names it in messages."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        size = st.st_size
        yield fmt.regular_header(size, bool(mode & stat.S_IXUSR))
        if size:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
            except OSError as e:
                raise _fs_error("opening file", _where(name, chain), e) from e
            try:
                yield _Contents(fd, size, name, chain)
            finally:
                os.close(fd)
        yield fmt.ZEROS[: fmt.padding(size)] + fmt.CLOSE
    elif stat.S_ISLNK(mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError as e:
            raise _fs_error("reading symbolic link", _where(name, chain), e) from e
        yield fmt.symlink_node(target)
    else:
        shown = _show_path(_where(name, chain))
        raise FileSystemError(shown, f"file '{shown}' has an unsupported type")


def _where(name: bytes, chain: DirChain | None) -> bytes:
    return name if chain is None else chain.path(name)


def _sorted_entries(chain: DirChain) -> list[tuple[bytes, os.stat_result]]:
    """A directory's entries in Nix's (bytewise) order, each with its `lstat`."""
    try:
        with os.scandir(chain.fd) as it:
            entries = [(os.fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
    except OSError as e:
        raise _fs_error("reading directory", chain.path(), e) from e
    entries.sort(key=lambda pair: pair[0])
    return entries


def _fs_error(doing: str, path: bytes, e: OSError) -> FileSystemError:
    from storekit.fdtree import fs_error

    return fs_error(doing, path, e)


def _show_path(path: bytes) -> str:
    from storekit.fdtree import show_path

    return show_path(path)


# --- buffers: pieces copied into large reused bytearrays -----------------------------------------


_PIPELINE_FROM = 4 << 20
#: More than the NAR of one file adds to its contents (headers, its name's and padding's bytes).
_NAR_FRAMING = 512
_UNKNOWN_SIZE = 1 << 62


def _one_buffer(size: int = BUFFER) -> Callable[[], bytearray]:
    buf = bytearray(size)
    return lambda: buf


def _fill(
    pieces: Iterator[_Piece], take: Callable[[], bytearray]
) -> Generator[tuple[bytearray, int], None, None]:
    """Copy `pieces` into buffers from `take`, yielding each (buffer, used) once full and at the end.

    The caller must be done with a yielded buffer before resuming, unless `take` hands out another.
    """
    buf = take()
    view, cap, pos = memoryview(buf), len(buf), 0
    for piece in pieces:
        if type(piece) is bytes:
            n = len(piece)
            if pos + n < cap:  # an exact fit goes below, which hands the full buffer on
                view[pos : pos + n] = piece
                pos += n
                continue
            done = 0
            while done < n:
                k = min(cap - pos, n - done)
                view[pos : pos + k] = piece[done : done + k]
                pos, done = pos + k, done + k
                if pos == cap:
                    yield buf, pos
                    buf = take()
                    view, cap, pos = memoryview(buf), len(buf), 0
            continue
        assert isinstance(piece, _Contents)
        remaining = piece.size
        while remaining:
            want = cap - pos if remaining < 0 else min(cap - pos, remaining)
            try:
                got = os.readv(piece.fd, [view[pos : pos + want]])
            except OSError as e:
                raise _fs_error("reading file", piece.path, e) from e
            if got == 0:
                if remaining < 0:
                    break
                shown = _show_path(piece.path)
                raise FileSystemError(shown, f"file '{shown}' changed (shrank) while being archived")
            pos += got
            if remaining > 0:
                remaining -= got
            if pos == cap:
                yield buf, pos
                buf = take()
                view, cap, pos = memoryview(buf), len(buf), 0
    if pos:
        yield buf, pos


def _size_hint(path: bytes) -> int:
    """About how many bytes the NAR of `path` holds: a file's size, "a lot" for a directory."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0  # the walk reports it
    return _UNKNOWN_SIZE if stat.S_ISDIR(st.st_mode) else st.st_size


def _hash_pieces(pieces: _Pieces, algo: str, *, size_hint: int = 0) -> tuple[Hash, int]:
    """Hash the bytes of `pieces`; returns (hash, byte count).

    Big inputs are read by a reader thread so that reads overlap hashing. For small ones the thread
    and its buffers (1-4 ms) would dominate, as they did for `store optimise` hashing files one by
    one, so those are read inline into a buffer sized to the file; a directory, whose size is not
    known up front, starts inline and moves to the thread once it turns out big.
    """
    hasher = new_hasher(algo)
    size = 0
    if size_hint >= _UNKNOWN_SIZE:
        source = _inline_then_pipelined(pieces)
    elif size_hint >= _PIPELINE_FROM:
        source = _pipelined(pieces)
    else:
        source = _fill(pieces, _one_buffer(min(BUFFER, size_hint + 1024)))
    try:
        for buf, n in source:
            with memoryview(buf) as view:
                hasher.update(view[:n])
            size += n
    finally:
        source.close()
        pieces.close()  # the walk's open directory and file descriptors, also on errors
    return hasher.finish(), size


def _pipelined(pieces: _Pieces) -> Generator[tuple[bytearray, int], None, None]:
    """`_fill(pieces)` run in a thread over a few buffers; each yielded buffer is recycled on resume."""
    import queue  # here: small paths never take this route, and their commands start faster without it

    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(_PIPELINE_BUFFERS):
        free.put(bytearray(BUFFER))
    yield from _in_thread(_fill(pieces, free.get), free, pieces)


def _inline_then_pipelined(pieces: _Pieces) -> Generator[tuple[bytearray, int], None, None]:
    """`_fill(pieces)` into one buffer while the NAR is small, the rest of it in a thread once it is not.

    Most directories hashed are small (a package's docs, a script and its data), and `storekit hash
    path DIR` is a short command: those pay for no thread, no `threading` import and no extra buffers.
    """
    buf = bytearray(BUFFER)
    free: queue.SimpleQueue[bytearray] | None = None  # set when the thread takes over

    def take() -> bytearray:
        return buf if free is None else free.get()

    filled = _fill(pieces, take)
    handed = False
    try:
        done = 0
        for item in filled:
            yield item
            done += item[1]
            if done >= _PIPELINE_FROM:
                break
        else:
            return
        import queue

        free = queue.SimpleQueue()
        for spare in [buf, *(bytearray(BUFFER) for _ in range(_PIPELINE_BUFFERS - 1))]:
            free.put(spare)
        handed = True
        yield from _in_thread(filled, free, pieces)
    finally:
        if not handed:
            filled.close()


def _in_thread(
    filled: Generator[tuple[bytearray, int], None, None], free: queue.SimpleQueue[bytearray], pieces: _Pieces
) -> Generator[tuple[bytearray, int], None, None]:
    """Run `filled` (taking its buffers from `free`) in a reader thread; hand each yielded buffer back
    to `free` when resumed. The thread closes `filled` and `pieces` when done, also on errors."""
    import queue
    import threading

    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in filled:
                if stop.is_set():
                    return
                full.put(item)
            full.put(None)
        except BaseException as e:  # handed to the consumer, which re-raises it
            full.put(e)
        finally:
            filled.close()
            pieces.close()

    thread = threading.Thread(target=produce, name="nar-reader", daemon=True)
    thread.start()
    try:
        while (item := full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            free.put(item[0])
    finally:
        stop.set()
        free.put(bytearray(BUFFER))  # wake the producer if it waits for a buffer
        thread.join()
