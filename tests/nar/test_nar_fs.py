"""Dumping, hashing and restoring on disk: round trips, streaming, and a restore that cannot be abused.

Real Nix judges the bytes in tests/interop/test_nar_interop.py; here the tree generator, the pure
writer and the disk must agree, and every unsafe archive must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nar_trees import MALFORMED, dir_nar, materialize, node_bytes, trees

from storekit.errors import FileSystemError, NarFormatError
from storekit.hashing import ALGORITHMS, Hash
from storekit.nar import format as fmt
from storekit.nar.fs import BUFFER, dump_path, hash_file, hash_path, restore
from storekit.nar.reader import Chunk, Directory, EntryEnd, EntryStart, Regular, Symlink
from storekit.nar.restore import Restorer
from storekit.nar.writer import Dir, File, Link, Node, to_bytes


def nar_of(path: str | Path) -> bytes:
    return b"".join(dump_path(path))


@settings(max_examples=40, deadline=None)
@given(tree=trees)
def test_dump_restore_dump_is_byte_identical(tree: Node) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        materialize(tree, os.path.join(tmp, "src"))
        nar = nar_of(os.path.join(tmp, "src"))
        assert nar == to_bytes(tree)
        assert restore(io.BytesIO(nar), os.path.join(tmp, "dst")) == len(nar)
        assert nar_of(os.path.join(tmp, "dst")) == nar
        assert hash_path(os.path.join(tmp, "dst")) == (Hash.of(nar), len(nar))


def test_hello_vector_from_real_nix(tmp_path: Path) -> None:
    """NIX-FORMATS.md: real Nix gives `hello\\n` a 120-byte NAR with this sha256."""
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    digest = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
    assert hash_path(tmp_path / "hello.txt") == (Hash("sha256", bytes.fromhex(digest)), 120)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_hashes_agree_with_hashlib(tmp_path: Path, algo: str) -> None:
    big = bytes(range(256)) * 40_000 + b"odd"  # ~10 MB: several pipeline buffers
    tree = Dir({b"big": File(big), b"x": File(b"#!/bin/sh\n", True), b"l": Link(b"big"), b"e": Dir()})
    materialize(tree, tmp_path / "t")
    nar = to_bytes(tree)
    assert hash_path(tmp_path / "t", algo) == (Hash(algo, hashlib.new(algo, nar).digest()), len(nar))
    assert hash_file(tmp_path / "t" / "big", algo) == Hash(algo, hashlib.new(algo, big).digest())
    assert hash_file(tmp_path / "t" / "l", algo) == Hash(algo, hashlib.new(algo, big).digest())  # follows


def test_dump_streams_in_bounded_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * BUFFER + 5)
    (tmp_path / "f").write_bytes(data)
    chunks = list(dump_path(tmp_path / "f"))
    assert len(chunks) >= 4 and max(map(len, chunks)) <= BUFFER
    assert b"".join(chunks) == to_bytes(File(data))


def test_restore_sets_execute_bits_like_nix(tmp_path: Path) -> None:
    nar = to_bytes(Dir({b"x": File(b"run", True), b"r": File(b"read"), b"d": Dir()}))
    restore(io.BytesIO(nar), tmp_path / "out")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "x").st_mode) == (0o666 & ~umask) | 0o111
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "r").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "d").st_mode) == 0o777 & ~umask


# --- refusals: nothing left behind, nothing written outside -----------------------------------------


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_nar_restores_nothing(tmp_path: Path, case: str) -> None:
    nar, offset = MALFORMED[case]()
    with pytest.raises(NarFormatError) as info:
        restore(io.BytesIO(nar), tmp_path / "dest")
    assert info.value.offset == offset
    assert leftovers(tmp_path) == []


@settings(max_examples=30, deadline=None)
@given(tree=trees, cut=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_truncated_restore_leaves_nothing(tree: Node, cut: float) -> None:
    nar = to_bytes(tree)
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(NarFormatError):
            restore(io.BytesIO(nar[: int(len(nar) * cut)]), os.path.join(tmp, "dest"))
        assert os.listdir(tmp) == []


def test_symlink_then_file_through_it_cannot_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # "a" -> outside, then a directory "a" holding "f": refused as a duplicate entry by the reader.
    link = node_bytes(Link(os.fsencode(outside)))
    nar, _ = dir_nar([(b"a", link), (b"a", node_bytes(Dir({b"f": File(b"pwned")})))])
    with pytest.raises(NarFormatError, match="duplicate"):
        restore(io.BytesIO(nar), tmp_path / "dest")
    assert leftovers(tmp_path) == ["outside"]


def test_restorer_itself_refuses_to_follow_a_symlink_it_created(tmp_path: Path) -> None:
    """Defence in depth: even events the reader would never produce cannot write through a symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    evs = [
        Directory(0),
        EntryStart(0, b"a"),
        Symlink(0, os.fsencode(outside)),
        EntryEnd(0),
        EntryStart(0, b"a"),
        Directory(0),
        EntryStart(0, b"f"),
        Regular(0, False, 5, 0),
        Chunk(0, b"pwned"),
    ]
    target = Restorer(os.fsencode(tmp_path / "dest"))
    with pytest.raises(FileSystemError, match="File exists"):
        target.run(evs)  # type: ignore[arg-type]
    target.abort()
    assert leftovers(tmp_path) == ["outside"]


@pytest.mark.parametrize("existing", ["dir", "file", "symlink"])
def test_existing_dest_is_refused_and_kept(tmp_path: Path, existing: str) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    if existing == "dir":
        dest.mkdir()
    elif existing == "file":
        dest.write_bytes(b"keep")
    else:
        dest.symlink_to(outside)
    for tree in (Dir({b"f": File(b"x")}), File(b"x"), Link(b"y")):
        with pytest.raises(FileSystemError, match="exists"):
            restore(io.BytesIO(to_bytes(tree)), dest)
    assert os.path.lexists(dest) and leftovers(outside) == []
    assert existing != "file" or dest.read_bytes() == b"keep"


def test_error_mid_tree_removes_partial_restore(tmp_path: Path) -> None:
    good = to_bytes(Dir({b"a": Dir({b"b": File(b"x" * 100)}), b"c": File(b"y")}))
    bad = good[:-16] + fmt.string(b"junk")  # last ')' replaced
    with pytest.raises(NarFormatError):
        restore(io.BytesIO(bad), tmp_path / "dest")
    assert leftovers(tmp_path) == []


# --- dumping errors --------------------------------------------------------------------------------


def test_dump_of_missing_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileSystemError, match=r"getting status of '.*nope': No such file or directory"):
        hash_path(tmp_path / "nope")


def test_unsupported_file_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "fifo")
    with pytest.raises(FileSystemError, match="fifo' has an unsupported type"):
        nar_of(tmp_path / "d")
    with pytest.raises(FileSystemError, match="unsupported type"):
        hash_path(tmp_path / "d")


def test_abandoned_dump_closes_its_files(tmp_path: Path) -> None:
    tree = Dir({f"f{i}".encode(): File(os.urandom(BUFFER // 2)) for i in range(8)})
    materialize(tree, tmp_path / "t")
    before = len(os.listdir("/proc/self/fd"))
    gen = dump_path(tmp_path / "t")
    next(gen)
    gen.close()
    assert len(os.listdir("/proc/self/fd")) == before
