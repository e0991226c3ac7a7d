"""Streaming NAR parser: events with byte offsets, validated as they are read.

The reader accepts exactly the canonical grammar Nix writes (NIX-FORMATS.md), so a NAR it accepts
re-serialises to the same bytes and has one hash. It refuses, with the offset where the NAR broke:
names that are empty, `.`, `..`, or contain `/` or NUL; unsorted or duplicate entries; non-zero
padding; unknown or misplaced tokens; truncation; and (by default) bytes after the archive. Contents
are handed out in chunks, so a NAR of any size is parsed in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from storekit.bytestreams import ByteSource
from storekit.errors import NarFormatError
from storekit.frozen import Frozen, _set
from storekit.nar import format as fmt

CHUNK = 1 << 20
_READAHEAD = 1 << 16


class Directory(Frozen):
    """A directory node starts; its entries follow, then `DirectoryEnd`."""

    __slots__ = __match_args__ = ("offset",)
    offset: int

    def __init__(self, offset: int) -> None:
        _set(self, "offset", offset)


class DirectoryEnd(Frozen):
    __slots__ = __match_args__ = ("offset",)
    offset: int

    def __init__(self, offset: int) -> None:
        _set(self, "offset", offset)


class EntryStart(Frozen):
    """A directory entry named `name` starts; its node's events follow, then `EntryEnd`."""

    __slots__ = __match_args__ = ("offset", "name")
    offset: int
    name: bytes

    def __init__(self, offset: int, name: bytes) -> None:
        _set(self, "offset", offset)
        _set(self, "name", name)


class EntryEnd(Frozen):
    __slots__ = __match_args__ = ("offset",)
    offset: int

    def __init__(self, offset: int) -> None:
        _set(self, "offset", offset)


class Regular(Frozen):
    """A regular file of `size` bytes; `Chunk`s totalling `size` follow (none when empty).

    `contents_offset` is where the contents start in the NAR (`narOffset` in `nix nar ls --json`).
    """

    __slots__ = __match_args__ = ("offset", "executable", "size", "contents_offset")
    offset: int
    executable: bool
    size: int
    contents_offset: int

    def __init__(self, offset: int, executable: bool, size: int, contents_offset: int) -> None:
        _set(self, "offset", offset)
        _set(self, "executable", executable)
        _set(self, "size", size)
        _set(self, "contents_offset", contents_offset)


class Chunk(Frozen):
    """A piece of the current regular file's contents."""

    __slots__ = __match_args__ = ("offset", "data")
    offset: int
    data: bytes

    def __init__(self, offset: int, data: bytes) -> None:
        _set(self, "offset", offset)
        _set(self, "data", data)


class Symlink(Frozen):
    __slots__ = __match_args__ = ("offset", "target")
    offset: int
    target: bytes

    def __init__(self, offset: int, target: bytes) -> None:
        _set(self, "offset", offset)
        _set(self, "target", target)


NarEvent = Directory | DirectoryEnd | EntryStart | EntryEnd | Regular | Chunk | Symlink


def read_nar(stream: ByteSource, *, to_eof: bool = True) -> Iterator[NarEvent]:
    """Parse the NAR on `stream` into events; see `NarReader`."""
    return iter(NarReader(stream, to_eof=to_eof))


class NarReader:
    """Iterate to parse; `offset` is how many NAR bytes have been consumed so far.

    With `to_eof` (the default) the stream must end where the NAR ends. Without it, the reader never
    reads past the archive, so a NAR embedded in a larger stream can be followed by other data.
    With `size` (a narinfo's `NarSize`), a file declared longer than what is left of the NAR is
    refused at its length field, before a consumer allocates anything for it.
    """

    def __init__(self, stream: ByteSource, *, to_eof: bool = True, size: int | None = None) -> None:
        self._input = _Input(stream, _READAHEAD if to_eof else 0)
        self._to_eof = to_eof
        self._size = size

    @property
    def offset(self) -> int:
        return self._input.offset

    def __iter__(self) -> Iterator[NarEvent]:
        inp = self._input
        inp.expect(fmt.HEADER, "the NAR magic 'nix-archive-1'")
        # One entry per open directory: the name of its previous entry (None before the first).
        dirs: list[bytes | None] = []
        node_pending = True
        while True:
            if node_pending:
                node_pending = False
                off = inp.offset
                inp.expect(fmt.OPEN + fmt.TYPE, "a node: '(' 'type'")
                kind = inp.token()
                if kind == b"regular":
                    yield from self._regular(off)
                elif kind == b"symlink":
                    yield self._symlink(off)
                elif kind == b"directory":
                    yield Directory(off)
                    dirs.append(None)
                else:
                    raise NarFormatError(f"unknown node type {fmt.shown(kind)}", off + 32)
                if kind != b"directory" and dirs:
                    yield self._entry_end()
            if not dirs:
                break
            off = inp.offset
            tok = inp.token()
            if tok == b")":
                dirs.pop()
                yield DirectoryEnd(off)
                if dirs:
                    yield self._entry_end()
            elif tok == b"entry":
                name = self._entry_name(dirs)
                yield EntryStart(off, name)
                node_pending = True
            else:
                raise NarFormatError(f"expected 'entry' or ')' in a directory, found {fmt.shown(tok)}", off)
        if self._to_eof:
            inp.expect_eof()

    def _regular(self, off: int) -> Iterator[NarEvent]:
        inp = self._input
        executable = False
        tok_off = inp.offset
        tok = inp.token()
        if tok == b"executable":
            executable = True
            inp.expect(fmt.EMPTY, "the empty string after 'executable'")
            tok_off = inp.offset
            tok = inp.token()
        if tok != b"contents":
            raise NarFormatError(f"expected 'contents' in a regular file, found {fmt.shown(tok)}", tok_off)
        size_off = inp.offset
        size = inp.u64()
        if self._size is not None and size > self._size - inp.offset:
            raise NarFormatError(
                f"NAR declares a file of {size} bytes, more than the {max(0, self._size - inp.offset)} "
                f"bytes left of its declared size ({self._size})",
                size_off,
            )
        yield Regular(off, executable, size, inp.offset)
        remaining = size
        while remaining:
            chunk_off = inp.offset
            data = inp.chunk(remaining)
            remaining -= len(data)
            yield Chunk(chunk_off, data)
        inp.padding(size)
        inp.expect(fmt.CLOSE, "')' after the file contents")

    def _symlink(self, off: int) -> Symlink:
        inp = self._input
        inp.expect(fmt.TARGET, "'target' in a symlink")
        target_off = inp.offset
        target = inp.string(fmt.MAX_TARGET, "symlink target")
        if not target or b"\0" in target:
            raise NarFormatError("symlink target is empty or contains a NUL byte", target_off)
        inp.expect(fmt.CLOSE, "')' after the symlink target")
        return Symlink(off, target)

    def _entry_name(self, dirs: list[bytes | None]) -> bytes:
        inp = self._input
        inp.expect(fmt.OPEN + fmt.NAME, "'(' 'name' opening a directory entry")
        name_off = inp.offset
        name = inp.string(fmt.MAX_NAME, "entry name")
        problem = fmt.name_problem(name)
        if problem is not None:
            raise NarFormatError(f"NAR contains invalid file name {fmt.shown(name)} ({problem})", name_off)
        previous = dirs[-1]
        if previous is not None and name <= previous:
            what = "a duplicate" if name == previous else "an unsorted"
            raise NarFormatError(
                f"NAR directory has {what} entry {fmt.shown(name)} after {fmt.shown(previous)}", name_off
            )
        dirs[-1] = name
        inp.expect(fmt.NODE, "'node' after the entry name")
        return name

    def _entry_end(self) -> EntryEnd:
        off = self._input.offset
        self._input.expect(fmt.CLOSE, "')' closing a directory entry")
        return EntryEnd(off)


class _Input:
    """The stream with a read-ahead buffer and an absolute offset; every read checks for truncation."""

    __slots__ = ("_base", "_buf", "_pos", "_readahead", "_stream")

    def __init__(self, stream: ByteSource, readahead: int) -> None:
        self._stream = stream
        self._readahead = readahead
        self._buf = b""
        self._pos = 0
        self._base = 0

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, n: int, what: str) -> None:
        """Make at least `n` bytes available at `_pos`."""
        parts = [self._buf[self._pos :]]
        have = len(parts[0])
        while have < n:
            data = self._stream.read(max(n - have, self._readahead))
            if not data:
                raise NarFormatError(
                    f"NAR is truncated: {n - have} more bytes needed for {what}", self.offset + have
                )
            parts.append(data)
            have += len(data)
        self._base += self._pos
        self._buf = b"".join(parts)
        self._pos = 0

    def take(self, n: int, what: str) -> bytes:
        if len(self._buf) - self._pos < n:
            self._fill(n, what)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def expect(self, token: bytes, what: str) -> None:
        off = self.offset
        if self.take(len(token), what) != token:
            self._pos = off - self._base
            raise NarFormatError(f"expected {what}, found {self._describe()}", off)

    def _describe(self) -> str:
        """What the bytes at the current position look like, for an error message."""
        try:
            return fmt.shown(self.token())
        except NarFormatError:
            return "something else"

    def u64(self) -> int:
        return fmt.read_u64(self.take(8, "a length"))

    def string(self, limit: int, what: str) -> bytes:
        off = self.offset
        n = self.u64()
        if n > limit:
            raise NarFormatError(f"{what} is {n} bytes long, more than the {limit} allowed", off)
        data = self.take(n, what)
        self.padding(n)
        return data

    def token(self) -> bytes:
        """A grammar keyword (short by definition: anything longer is refused unread)."""
        return self.string(16, "token")

    def padding(self, n: int) -> None:
        pad = fmt.padding(n)
        if pad:
            off = self.offset
            zeros = self.take(pad, "padding")
            if zeros != fmt.ZEROS[:pad]:
                bad = next(i for i, b in enumerate(zeros) if b)
                raise NarFormatError("NAR has non-zero padding after a string", off + bad)

    def chunk(self, remaining: int) -> bytes:
        """Up to `remaining` content bytes: what is buffered, else one large read from the stream."""
        avail = len(self._buf) - self._pos
        if avail:
            n = min(avail, remaining)
            return self.take(n, "file contents")
        data = self._stream.read(min(remaining, CHUNK))
        if not data:
            raise NarFormatError(
                f"NAR is truncated: {remaining} more bytes of file contents needed", self.offset
            )
        self._base += len(self._buf) + len(data)
        self._buf = b""
        self._pos = 0
        return data

    def expect_eof(self) -> None:
        if self._pos == len(self._buf) and not self._stream.read(1):
            return
        raise NarFormatError("trailing data after the end of the NAR", self.offset)
