"""The byte streams storekit reads and writes: a protocol each, and one base for its own readers.

NARs, exports and cache files flow through storekit as streams, never whole. Functions that consume
one take a `ByteSource` (anything whose `read(n)` gives bytes, `b""` at the end: an open file, a socket
file, a decompressor, or one of storekit's readers) and write to a `ByteSink`, rather than the
`BinaryIO` of `typing`, which storekit's readers (`io.RawIOBase` subclasses) are not. `RawReader` is
that base: a subclass implements `fill(view)` once, and gets `read` returning bytes and `readinto`
with typeshed's signature, so no reader needs a `type: ignore`.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class ByteSource(Protocol):
    """Bytes to read: `read(n)` gives at most `n` bytes (all the rest for -1), b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class ByteSink(Protocol):
    """Something to write bytes to."""

    def write(self, data: bytes, /) -> object: ...


class RawReader(io.RawIOBase):
    """A readable raw stream whose subclass implements `fill`; usable wherever a `ByteSource` is."""

    def readable(self) -> bool:
        return True

    def fill(self, view: memoryview) -> int:
        """Read up to `len(view)` bytes into `view`; the number read, 0 at the end."""
        raise NotImplementedError

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as view:
            return self.fill(view.cast("B"))

    def read(self, size: int = -1, /) -> bytes:
        data = super().read(size)
        assert data is not None  # a RawReader never blocks, so "no data yet" cannot happen
        return data
