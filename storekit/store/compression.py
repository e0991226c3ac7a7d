"""The NAR files of binary caches: compressing them as Nix does, and reading them back with checks.

Writing uses Nix 2.8's settings (xz preset 6 with CRC64, which gives Nix's bytes exactly; zstd; bzip2).
Reading wraps the downloaded file in two layers: `FileCheck` hashes the file as it streams and compares
with the narinfo's `FileHash` at its end, and `Decoding` turns a decompressor's low-level complaint
into an error naming the path, preferring the file-hash mismatch (both hashes) when there is one.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import lzma
from typing import BinaryIO, Protocol

import zstandard

from storekit.errors import HashMismatch, StorekitError, SubstituteError
from storekit.hashing import Hash, new_hasher
from storekit.narinfo import NarInfo
from storekit.storepath import StorePath

CHUNK = 1 << 20
EXTENSIONS = {"xz": ".xz", "zstd": ".zst", "bzip2": ".bz2", "none": ""}


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def compressor_for(compression: str) -> _Compressor | None:
    """Nix's settings: xz preset 6 with CRC64 (byte-identical to Nix's files), zstd level 3, bzip2 9."""
    if compression == "xz":
        return lzma.LZMACompressor(lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compressobj()
    if compression == "bzip2":
        return bz2.BZ2Compressor(9)
    return None


def write_compressed(source: _Reader, out: _Writer, compression: str) -> tuple[Hash | None, int]:
    """Stream `source` into `out` compressed: (file hash, file size); no hash when not compressed."""
    compressor = compressor_for(compression)
    file_hasher = new_hasher("sha256") if compressor is not None else None
    file_size = 0
    while chunk := source.read(CHUNK):
        data = compressor.compress(chunk) if compressor is not None else chunk
        if data:
            if file_hasher is not None:
                file_hasher.update(data)
            out.write(data)
            file_size += len(data)
    if compressor is not None and file_hasher is not None:
        tail = compressor.flush()
        file_hasher.update(tail)
        out.write(tail)
        file_size += len(tail)
    return (file_hasher.finish() if file_hasher else None), file_size


class _Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


def decompressor(compression: str, raw: BinaryIO, path: StorePath) -> BinaryIO:
    if compression in ("none", ""):
        return raw
    if compression == "xz":
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    if compression == "bzip2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    raise SubstituteError(f"the NAR of '{path}' uses compression '{compression}', which storekit cannot read")


class FileCheck(io.RawIOBase):
    """Hashes the (compressed) file as it is read and compares with the narinfo's `FileHash` at its end."""

    def __init__(self, raw: BinaryIO, expected: Hash, what: str) -> None:
        super().__init__()
        self._raw = raw
        self._expected = expected
        self._hasher = new_hasher(expected.algo)
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._hasher.update(memoryview(buffer)[:n])
            return int(n)
        self.finish()
        return 0

    def finish(self) -> None:
        got = self._hasher.finish()
        if got != self._expected:
            raise HashMismatch(self._what, str(self._expected), str(got))

    def drain(self) -> None:
        """Read the rest and compare hashes: a corrupt file is best reported by its hash."""
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass

    def close(self) -> None:
        self._raw.close()
        super().close()


class Decoding(io.RawIOBase):
    """Turns a decompressor's low-level errors into a message naming the path and the file.

    It also stops at the narinfo's `NarSize`: the decompressed stream is the NAR, so one byte more
    than declared is a corrupt file or a compression bomb (a few KiB of xz expand to gigabytes),
    refused after at most `NarSize + 1` bytes were decompressed.
    """

    def __init__(self, stream: BinaryIO, narinfo: NarInfo, uri: str, check: FileCheck | None) -> None:
        super().__init__()
        self._stream = stream
        self._narinfo = narinfo
        self._uri = uri
        self._check = check
        self._left = narinfo.nar_size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._left <= 0:
            if self._decode(bytearray(1)):
                n = self._narinfo
                raise SubstituteError(
                    f"'{n.url}' of '{n.store_path}' from '{self._uri}' decompresses to more than the "
                    f"{n.nar_size} bytes its narinfo declares (NarSize); refused as corrupt (or a "
                    "compression bomb)"
                )
            return 0
        view = memoryview(buffer)
        got = self._decode(view[: self._left] if len(view) > self._left else view)
        self._left -= got
        return got

    def _decode(self, buffer: memoryview | bytearray) -> int:
        try:
            return int(self._stream.readinto(buffer))  # type: ignore[attr-defined]
        except StorekitError:
            raise
        except (lzma.LZMAError, EOFError, OSError, ValueError, zstandard.ZstdError) as e:
            if self._check is not None:
                self._check.drain()  # raises HashMismatch (both file hashes) if the file is corrupt
            n = self._narinfo
            raise SubstituteError(
                f"cannot decompress '{n.url}' ({n.compression}) of '{n.store_path}' from '{self._uri}': "
                f"{e}; the file is corrupt or truncated"
            ) from e

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
        super().close()


def decode_whole(narinfo: NarInfo, data: bytes, expected: int | None) -> bytes | None:
    """The NAR of `narinfo` from its whole file `data` (of `expected` bytes, as announced), in one
    call per step: a small path's file is a few hundred bytes, and the streaming layers (`FileCheck`,
    `LZMAFile`, `Decoding`, 1 MiB reads) cost three times the decompression itself.

    Only the case where every check of the streaming way passes is answered here: the file's size
    and hash as announced, one complete xz stream (or no compression) giving at most `NarSize`
    bytes. Anything else gets None, and `BinaryCacheStore.open_nar` on the same download words the
    refusal (file hash, truncation, the NarSize bound).
    """
    if len(data) != expected:
        return None
    if narinfo.compression == "none":
        same = narinfo.file_hash in (None, narinfo.nar_hash)  # the receiving store checks that one
        return data if same and len(data) <= narinfo.nar_size else None
    if narinfo.compression != "xz" or narinfo.file_hash is None:
        return None
    algo = narinfo.file_hash.algo
    if Hash(algo, new_hasher(algo).update_and_digest(data)) != narinfo.file_hash:
        return None
    decoder = lzma.LZMADecompressor()
    try:
        nar = decoder.decompress(data, narinfo.nar_size + 1)
    except lzma.LZMAError:
        return None
    if not decoder.eof or decoder.unused_data or len(nar) > narinfo.nar_size:
        return None  # cut, more than one stream, or longer than declared
    return nar
