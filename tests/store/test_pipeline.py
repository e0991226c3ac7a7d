"""The hashed NAR readers: the prefetching one (a thread) and the inline one (small NARs) read alike."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from storekit.store.pipeline import HashedInline, HashedPrefetch

CHUNKS = [b"abc", b"defghij", b"k" * 1000, b"lmn"]
WHOLE = b"".join(CHUNKS)


@pytest.mark.parametrize("reader", [HashedInline, HashedPrefetch])
@pytest.mark.parametrize("size", [1, 2, 5, 7, 64, 4096])
def test_reads_of_any_size_give_the_stream_and_its_hash(reader: type[HashedInline], size: int) -> None:
    with reader(iter(CHUNKS)) as source:
        got = b"".join(iter(lambda: source.read(size), b""))
        assert source.read(size) == b""
        digest, length = source.finish()
    assert got == WHOLE and length == len(WHOLE)
    assert digest.digest == hashlib.sha256(WHOLE).digest()


@pytest.mark.parametrize("reader", [HashedInline, HashedPrefetch])
def test_read_all_after_a_partial_read(reader: type[HashedInline]) -> None:
    with reader(iter(CHUNKS)) as source:
        head = source.read(2)
        assert head + source.read() == WHOLE
        assert source.finish()[1] == len(WHOLE)


@pytest.mark.parametrize("size", [1, 4, 4096])
def test_inline_skips_empty_chunks(size: int) -> None:
    with HashedInline(iter([b"", b"ab", b"", b"", b"c", b""])) as source:
        assert b"".join(iter(lambda: source.read(size), b"")) == b"abc"


def test_inline_errors_surface_in_read_and_close_closes_the_chunks() -> None:
    closed = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"first"
            raise OSError("the source broke")
        finally:
            closed.append(True)

    source = HashedInline(chunks())
    assert source.read(100) == b"first"
    with pytest.raises(OSError, match="the source broke"):
        source.read(100)
    source.close()
    assert closed == [True]
