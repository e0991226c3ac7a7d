"""`compression.decode_whole`: a NAR file received whole is decoded at once only when every check
of the streaming way (`open_nar`) passes; for anything else it answers None and `open_nar`, on the
same download, refuses it with its own words (file hash, truncation, NarSize bound)."""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import pytest

from storekit.errors import HashMismatch, SubstituteError
from storekit.hashing import Hash
from storekit.nar.writer import File, to_bytes
from storekit.narinfo import NarInfo
from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.compression import compressor_for, decode_whole
from storekit.store.transport import Download, FileTransport, TruncatedDownload
from storekit.storepath import StoreDir

STORE = StoreDir("/opt/wholenar/store")
NAR = to_bytes(File(b"some contents\n" * 10))


@pytest.fixture
def cache(tmp_path: Path) -> BinaryCacheStore:
    return BinaryCacheStore(FileTransport(str(tmp_path)), STORE)


def xz(data: bytes) -> bytes:
    c = compressor_for("xz")
    assert c is not None
    return c.compress(data) + c.flush()


def narinfo(file: bytes, compression: str = "xz", nar: bytes = NAR, **kw: object) -> NarInfo:
    fields: dict[str, object] = {
        "store_path": STORE.make_store_path("source", Hash.of(nar), "x"),
        "url": f"nar/{Hash.of(file).nix32}.nar" + (".xz" if compression == "xz" else ""),
        "nar_hash": Hash.of(nar),
        "nar_size": len(nar),
        "compression": compression,
        "file_hash": Hash.of(file),
        "file_size": len(file),
        **kw,
    }
    return NarInfo(**fields)  # type: ignore[arg-type]


def decode(info: NarInfo, download: Download) -> bytes | None:
    assert download.whole is not None
    return decode_whole(info, download.whole, download.expected)


def whole(data: bytes, expected: int) -> Download:
    return Download(io.BytesIO(data), expected, "http://cache/nar/x", data)


def streamed(cache: BinaryCacheStore, info: NarInfo, download: Download) -> bytes:
    with cache.open_nar(info, lambda: download) as stream:
        return stream.read()


def test_a_plain_xz_file_is_decoded_at_once(cache: BinaryCacheStore) -> None:
    file = xz(NAR)
    assert decode(narinfo(file), whole(file, len(file))) == NAR


def test_an_uncompressed_file_is_the_nar(cache: BinaryCacheStore) -> None:
    info = narinfo(NAR, "none", file_hash=Hash.of(NAR))
    assert decode(info, whole(NAR, len(NAR))) == NAR


def test_the_stager_decodes_a_whole_download_at_once_and_streams_the_others(
    cache: BinaryCacheStore,
) -> None:
    from storekit.transfer.cache_source import _nar_chunks

    file = xz(NAR)
    at_once = list(_nar_chunks(cache, narinfo(file), whole(file, len(file))))
    assert at_once == [NAR]
    streamed_chunks = list(_nar_chunks(cache, narinfo(file), Download(io.BytesIO(file), len(file), "u")))
    assert b"".join(streamed_chunks) == NAR


def test_a_tampered_file_is_left_to_the_stream_which_names_both_hashes(cache: BinaryCacheStore) -> None:
    file = xz(NAR)
    info = narinfo(file)
    tampered = xz(to_bytes(File(b"SOME CONTENTS\n" * 10)))  # as long, other bytes
    download = whole(tampered, len(tampered))
    assert decode(narinfo(file, file_size=len(tampered)), download) is None
    with pytest.raises(HashMismatch, match=str(info.file_hash)):
        streamed(cache, narinfo(file, file_size=len(tampered)), download)


def test_a_file_of_another_length_is_left_to_the_stream(cache: BinaryCacheStore) -> None:
    file = xz(NAR)
    cut = whole(file[:-5], len(file))
    assert decode(narinfo(file), cut) is None
    with pytest.raises(TruncatedDownload, match="truncated"):
        streamed(cache, narinfo(file), cut)
    longer = whole(file + b"x", len(file))
    assert decode(narinfo(file), longer) is None
    with pytest.raises(SubstituteError, match="longer than"):
        streamed(cache, narinfo(file), longer)


def test_a_file_decompressing_past_nar_size_is_left_to_the_stream(cache: BinaryCacheStore) -> None:
    bomb = xz(NAR + b"\0" * 100_000)
    info = narinfo(bomb)  # NarSize says len(NAR)
    download = whole(bomb, len(bomb))
    assert decode(info, download) is None
    with pytest.raises(SubstituteError, match="decompresses to more than"):
        streamed(cache, info, download)


def test_two_xz_streams_are_left_to_the_stream(cache: BinaryCacheStore) -> None:
    half = len(NAR) // 2
    file = xz(NAR[:half]) + xz(NAR[half:])
    info = narinfo(file)
    download = whole(file, len(file))
    assert decode(info, download) is None
    assert streamed(cache, info, download) == NAR  # LZMAFile reads on across streams


def test_a_corrupt_xz_stream_is_left_to_the_stream(cache: BinaryCacheStore) -> None:
    file = bytearray(xz(NAR))
    file[len(file) // 2] ^= 0xFF
    bad = bytes(file)
    info = narinfo(bad)  # its file hash matches: the damage is in what the hash covers
    download = whole(bad, len(bad))
    assert decode(info, download) is None
    with pytest.raises(SubstituteError, match="cannot decompress"):
        streamed(cache, info, download)


def test_other_compressions_are_left_to_the_stream(cache: BinaryCacheStore) -> None:
    import bz2

    file = bz2.compress(NAR)
    info = narinfo(file, "bzip2", url="nar/x.nar.bz2")
    download = whole(file, len(file))
    assert decode(info, download) is None
    assert streamed(cache, info, download) == NAR
    assert lzma.decompress(xz(NAR)) == NAR  # (the helper writes what Nix writes)
