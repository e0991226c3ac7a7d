"""Staging a one-file NAR from memory (`store/small_nar.py`, through `link.stage_nar`): only a NAR that
is exactly one regular file is taken; it is checked (NAR hash and size, content address) before
anything is written, and written with canonical metadata, byte for byte what the general way
(restore + `canonicalise_path`) leaves; anything else goes the general way."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import HashMismatch, NarFormatError, StoreError
from storekit.hashing import Hash
from storekit.nar.format import HEADER, REGULAR_START
from storekit.nar.fs import dump_path
from storekit.nar.writer import Dir, File, Link, to_bytes
from storekit.store.base import ValidPathInfo
from storekit.store.canonical import canonicalise_path
from storekit.store.link import stage_from_nar, stage_nar
from storekit.store.small_nar import single_file, stage_in_memory
from storekit.storepath import FileIngestionMethod, StoreDir

STORE = StoreDir("/opt/smallnar/store")


def info_for(nar: bytes, name: str = "x", **kw: object) -> ValidPathInfo:
    fields: dict[str, object] = {"nar_hash": Hash.of(nar), "nar_size": len(nar), **kw}
    fields.setdefault("path", STORE.make_store_path("source", Hash.of(nar), name))
    return ValidPathInfo(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("executable", [False, True])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 400, 4096])
def test_a_one_file_nar_is_read_as_such(size: int, executable: bool) -> None:
    contents = os.urandom(size)
    found = single_file(to_bytes(File(contents, executable)))
    assert found is not None
    assert found[0] is executable and bytes(found[1]) == contents


@pytest.mark.parametrize(
    "node",
    [Dir({b"a": File(b"x")}), Link(b"/target"), Dir()],
    ids=["directory", "symlink", "empty-directory"],
)
def test_other_nars_are_not(node: Dir | Link) -> None:
    assert single_file(to_bytes(node)) is None


def test_a_one_file_nar_with_anything_odd_is_not_taken() -> None:
    nar = to_bytes(File(b"hello"))
    assert single_file(nar + b"\0" * 8) is None  # trailing bytes
    assert single_file(nar[:-8]) is None  # cut short
    padded = bytearray(nar)
    padded[-9] = 1  # a padding byte that is not zero
    assert single_file(bytes(padded)) is None
    longer = bytearray(nar)
    longer[len(HEADER + REGULAR_START)] = 200  # the length field claims more than there is
    assert single_file(bytes(longer)) is None


@pytest.mark.parametrize("executable", [False, True])
def test_what_is_written_is_what_the_general_way_leaves(tmp_path: Path, executable: bool) -> None:
    os.umask(0o077)  # a umask that would take bits of the canonical mode
    try:
        nar = to_bytes(File(b"#!/bin/sh\necho hi\n", executable))
        info = info_for(nar)
        fast = stage_in_memory(nar, str(tmp_path), info, "fast")
        slow = stage_from_nar(iter([nar]), str(tmp_path), info, "slow")
        canonicalise_path(slow)
    finally:
        os.umask(0o022)
    assert fast == str(tmp_path / "fast")
    a, b = os.lstat(fast), os.lstat(slow)
    assert stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode) == (0o555 if executable else 0o444)
    assert a.st_mtime_ns == b.st_mtime_ns == 1_000_000_000
    assert b"".join(dump_path(fast)) == nar


def test_a_wrong_hash_or_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    nar = to_bytes(File(b"contents"))
    other = to_bytes(File(b"tampered"))
    with pytest.raises(HashMismatch, match="NAR of"):
        stage_in_memory(other, str(tmp_path), info_for(nar), "p")
    with pytest.raises(StoreError, match="size mismatch"):
        bigger = to_bytes(File(b"contents!"))
        stage_in_memory(bigger, str(tmp_path), info_for(nar, nar_hash=Hash.of(bigger)), "p")
    assert os.listdir(tmp_path) == []


def test_content_addresses_are_checked_from_memory(tmp_path: Path) -> None:
    contents = b"a text file\n"
    nar = to_bytes(File(contents))
    text = Hash.of(contents)
    text_path = STORE.make_text_path("t", text)
    staged = stage_in_memory(nar, str(tmp_path), info_for(nar, path=text_path, ca=f"text:{text}"), "t")
    assert staged is not None and Path(staged).read_bytes() == contents
    flat = Hash.of(contents, "sha1")
    flat_path = STORE.make_fixed_output_path("f", FileIngestionMethod.FLAT, flat)
    assert stage_in_memory(nar, str(tmp_path), info_for(nar, path=flat_path, ca=f"fixed:{flat}"), "f")
    recursive = Hash.of(nar, "sha512")
    rec_path = STORE.make_fixed_output_path("r", FileIngestionMethod.RECURSIVE, recursive)
    assert stage_in_memory(nar, str(tmp_path), info_for(nar, path=rec_path, ca=f"fixed:r:{recursive}"), "r")
    wrong = Hash.of(b"something else")
    with pytest.raises(HashMismatch, match="content address of"):
        stage_in_memory(nar, str(tmp_path), info_for(nar, path=text_path, ca=f"text:{wrong}"), "w")
    assert sorted(os.listdir(tmp_path)) == ["f", "r", "t"]


def test_a_self_referencing_content_address_goes_the_general_way(tmp_path: Path) -> None:
    nar = to_bytes(File(b"x"))
    digest = Hash.of(nar)
    path = STORE.make_fixed_output_path("s", FileIngestionMethod.RECURSIVE, digest, self_ref=True)
    info = info_for(nar, path=path, ca=f"fixed:r:{digest}", references=frozenset({path}))
    assert stage_in_memory(nar, str(tmp_path), info, "s") is None
    assert os.listdir(tmp_path) == []


def test_stage_nar_takes_small_one_file_nars_and_leaves_the_rest(tmp_path: Path) -> None:
    one = to_bytes(File(b"small"))
    tree, canonical = stage_nar(iter([one[:10], one[10:]]), str(tmp_path), info_for(one), "one")
    assert canonical and os.lstat(tree).st_mtime_ns == 1_000_000_000
    directory = to_bytes(Dir({b"a": File(b"x")}))
    tree, canonical = stage_nar(iter([directory]), str(tmp_path), info_for(directory), "dir")
    assert not canonical and os.path.isdir(tree)


def test_stage_nar_words_a_nar_longer_than_promised_as_the_general_way_does(tmp_path: Path) -> None:
    nar = to_bytes(File(b"promised"))
    longer = nar + b"extra bytes after the end"
    with pytest.raises(NarFormatError):
        stage_nar(iter([longer]), str(tmp_path), info_for(nar), "p")
    assert os.listdir(tmp_path) == []


def test_stage_nar_closes_the_stream_it_was_given(tmp_path: Path) -> None:
    nar = to_bytes(File(b"closed"))
    closed = []

    def chunks() -> Iterator[bytes]:
        try:
            yield nar
        finally:
            closed.append(True)

    stage_nar(chunks(), str(tmp_path), info_for(nar), "c")
    assert closed == [True]
