"""Nix's wire values: little-endian u64s and length-prefixed, zero-padded byte strings.

Every Nix protocol (serve, worker, the common part both share) is built from three things:
`u64` (8 bytes little-endian; booleans and enums are u64s too), `string` (a u64 length, the bytes,
zero padding to a multiple of 8) and lists (a u64 count, then the items). A `WireReader` reads them
from a caller-given stream and refuses what Nix would refuse (non-zero padding, a string longer than
the caller allows, the stream ending early), naming the byte offset. A `WireWriter` appends to a
buffer the caller sends. Nothing here knows about sockets.

Long data (NARs) travels as *frames* from worker protocol 1.23: u64 length + bytes, ended by a
zero-length frame (`read_frames`, `write_frames`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from storekit.errors import WireFormatError

MAX_STRING = 1 << 26
"""Default bound on one string (64 MiB), checked before anything is allocated."""

_U64 = struct.Struct("<Q")


class WireReader:
    """Reads wire values from a stream (or bytes); `offset` counts the bytes consumed."""

    def __init__(self, source: BinaryIO | bytes, *, max_string: int = MAX_STRING) -> None:
        self._source: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
        self.offset = 0
        self.max_string = max_string

    def _exactly(self, n: int) -> bytes:
        data = self._source.read(n)
        if data is None or len(data) != n:
            got = 0 if data is None else len(data)
            raise WireFormatError(f"unexpected end of stream: wanted {n} bytes, got {got}", self.offset)
        self.offset += n
        return data

    def at_end(self) -> bool:
        """True when the stream has no more bytes (reads one byte ahead only on seekable streams)."""
        if not self._source.seekable():
            return False
        pos = self._source.tell()
        more = self._source.read(1)
        self._source.seek(pos)
        return not more

    def u64(self) -> int:
        return int(_U64.unpack(self._exactly(8))[0])

    def bool(self) -> bool:
        at = self.offset
        value = self.u64()
        if value > 1:
            raise WireFormatError(f"expected a boolean (0 or 1), found {value}", at)
        return value == 1

    def blob(self, max_len: int | None = None) -> bytes:
        at = self.offset
        n = self.u64()
        limit = self.max_string if max_len is None else max_len
        if n > limit:
            raise WireFormatError(f"string of {n} bytes is longer than the {limit} allowed", at)
        data = self._exactly(n)
        pad = self._exactly(-n % 8)
        if pad.strip(b"\0"):
            raise WireFormatError("non-zero padding after a string", self.offset - len(pad))
        return data

    def string(self) -> str:
        """A string; bytes that are not UTF-8 survive as surrogate escapes, as elsewhere in storekit."""
        return self.blob().decode("utf-8", "surrogateescape")

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.count())]

    def count(self) -> int:
        """A list length, bounded so a hostile peer cannot make us loop for ever."""
        at = self.offset
        n = self.u64()
        if n > self.max_string:
            raise WireFormatError(f"list of {n} items is longer than allowed", at)
        return n

    def frames(self) -> Iterator[bytes]:
        """The data of a framed stream, frame by frame, up to the empty frame that ends it."""
        while True:
            at = self.offset
            n = self.u64()
            if n == 0:
                return
            if n > self.max_string:
                raise WireFormatError(f"frame of {n} bytes is longer than allowed", at)
            yield self._exactly(n)


class WireWriter:
    """Appends wire values to a buffer; `getvalue()` is what to send."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def u64(self, value: int) -> WireWriter:
        self._buf += _U64.pack(value)
        return self

    def bool(self, value: bool) -> WireWriter:
        return self.u64(1 if value else 0)

    def blob(self, data: bytes) -> WireWriter:
        self.u64(len(data))
        self._buf += data
        self._buf += b"\0" * (-len(data) % 8)
        return self

    def string(self, value: str) -> WireWriter:
        return self.blob(value.encode("utf-8", "surrogateescape"))

    def strings(self, values: Iterable[str]) -> WireWriter:
        items = list(values)
        self.u64(len(items))
        for s in items:
            self.string(s)
        return self

    def frames(self, chunks: Iterable[bytes]) -> WireWriter:
        for chunk in chunks:
            if chunk:
                self.u64(len(chunk))
                self._buf += chunk
        return self.u64(0)
