"""The streaming reader: every malformed-NAR class refused at the right offset; valid NARs round-trip."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nar_trees import MALFORMED, trees

from storekit.errors import NarFormatError
from storekit.nar import format as fmt
from storekit.nar.reader import CHUNK, Chunk, EntryStart, NarEvent, Regular, read_nar
from storekit.nar.writer import Dir, File, Link, to_bytes, write_events


class Dribble(io.RawIOBase):
    """A stream that returns at most `step` bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        k = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + k]
        self._pos += len(out)
        return out


def events(data: bytes) -> list[NarEvent]:
    return list(read_nar(io.BytesIO(data)))


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_nar_refused_at_offset(case: str) -> None:
    nar, offset = MALFORMED[case]()
    with pytest.raises(NarFormatError) as info:
        events(nar)
    assert info.value.offset == offset, str(info.value)
    assert f"offset {offset}" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(tree=trees, cut=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_truncated_nar_refused_where_it_ends(tree: Dir | File | Link, cut: float) -> None:
    nar = to_bytes(tree)
    k = int(len(nar) * cut)
    with pytest.raises(NarFormatError, match="truncated") as info:
        events(nar[:k])
    assert info.value.offset == k


@settings(max_examples=100, deadline=None)
@given(tree=trees, step=st.integers(min_value=1, max_value=9))
def test_reserialised_events_give_back_the_same_bytes(tree: Dir | File | Link, step: int) -> None:
    nar = to_bytes(tree)
    evs = events(nar)
    assert b"".join(write_events(evs)) == nar
    # A stream that hands out a few bytes at a time parses to the same nodes (chunking may differ).
    slow = list(read_nar(Dribble(nar, step)))  # type: ignore[arg-type]
    assert [e for e in slow if not isinstance(e, Chunk)] == [e for e in evs if not isinstance(e, Chunk)]
    assert b"".join(write_events(slow)) == nar


@settings(max_examples=60, deadline=None)
@given(tree=trees)
def test_offsets_point_into_the_archive(tree: Dir | File | Link) -> None:
    nar = to_bytes(tree)
    remaining = 0
    for ev in events(nar):
        if isinstance(ev, Regular):
            assert nar[ev.offset : ev.offset + 16] == fmt.OPEN
            assert fmt.read_u64(nar, ev.contents_offset - 8) == ev.size
            remaining = ev.size
        elif isinstance(ev, Chunk):
            assert nar[ev.offset : ev.offset + len(ev.data)] == ev.data
            remaining -= len(ev.data)
        elif isinstance(ev, EntryStart):
            assert nar[ev.offset : ev.offset + len(fmt.ENTRY)] == fmt.ENTRY
    assert remaining == 0


def test_large_contents_come_in_bounded_chunks() -> None:
    data = bytes(range(256)) * (5 * CHUNK // 256) + b"tail"
    evs = events(to_bytes(File(data, executable=True)))
    regular = evs[0]
    assert isinstance(regular, Regular) and regular.executable and regular.size == len(data)
    chunks = [ev.data for ev in evs if isinstance(ev, Chunk)]
    assert max(map(len, chunks)) <= CHUNK and b"".join(chunks) == data


def test_embedded_nar_is_read_exactly_without_to_eof() -> None:
    nar = to_bytes(Dir({b"a": File(b"hello\n"), b"b": Link(b"a")}))
    stream = io.BytesIO(nar + b"NEXT")
    assert b"".join(write_events(read_nar(stream, to_eof=False))) == nar
    assert stream.read() == b"NEXT"


def test_huge_declared_size_is_refused_without_allocating() -> None:
    nar = fmt.HEADER + fmt.regular_header(1 << 60, False) + b"only this"
    with pytest.raises(NarFormatError, match="truncated"):
        events(nar)


def test_writer_sorts_entries_and_refuses_bad_names() -> None:
    a = to_bytes(Dir({b"b": File(), b"a": File()}))
    assert a == to_bytes(Dir({b"a": File(), b"b": File()}))
    assert [ev.name for ev in events(a) if isinstance(ev, EntryStart)] == [b"a", b"b"]
    for bad in (b"", b".", b"..", b"x/y", b"x\0"):
        with pytest.raises(ValueError):
            to_bytes(Dir({bad: File()}))
