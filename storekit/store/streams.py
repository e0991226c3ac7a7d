"""Readers that let a NAR flow once through hashing, spooling and restoring.

Stores never hold a whole NAR: a NAR arrives as a stream (or an iterator of chunks from `dump_path`),
is hashed on the way through and restored or spooled at the same time, so a 1 GB path costs one pass
and constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from storekit.bytestreams import ByteSink, ByteSource, RawReader
from storekit.hashing import Hash, new_hasher


class HashingReader(RawReader):
    """Reads from `source`, feeding every byte read into a sha256 hasher (and `copy`, when given)."""

    def __init__(self, source: ByteSource, algo: str = "sha256", copy: ByteSink | None = None) -> None:
        super().__init__()
        self._source = source
        self._hasher = new_hasher(algo)
        self._copy = copy
        self.size = 0

    def fill(self, buffer: memoryview) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._seen(data)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size) if size is not None and size >= 0 else self._source.read()
        self._seen(data)
        return data

    def _seen(self, data: bytes) -> None:
        if data:
            self._hasher.update(data)
            self.size += len(data)
            if self._copy is not None:
                self._copy.write(data)

    def finish(self) -> tuple[Hash, int]:
        """The hash and size of everything read so far."""
        return self._hasher.finish(), self.size


class ChunkReader(RawReader):
    """A readable stream over an iterator of byte chunks (e.g. `dump_path`), without joining them."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def fill(self, buffer: memoryview) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = [bytes(self._pending), *self._chunks]
            self._pending = memoryview(b"")
            return b"".join(rest)
        parts: list[bytes] = []
        want = size
        while want > 0:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
            piece = self._pending[:want]
            self._pending = self._pending[len(piece) :]
            parts.append(bytes(piece))
            want -= len(piece)
        return b"".join(parts)
