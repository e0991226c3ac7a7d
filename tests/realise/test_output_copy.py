"""`output_copy.copy_output`: what a builder wrote, copied into fresh inodes without following anything."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import StoreError
from storekit.nar.fs import hash_path
from storekit.realise.output_copy import copy_output


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    """(base, fd of base/src, fd of base/dst)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    src = os.open(tmp_path / "src", os.O_RDONLY | os.O_DIRECTORY)
    dst = os.open(tmp_path / "dst", os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, src, dst
    os.close(src)
    os.close(dst)


def test_a_tree_is_copied_into_new_inodes_with_the_same_nar(dirs: tuple[Path, int, int]) -> None:
    base, src, dst = dirs
    out = base / "src" / "out"
    (out / "bin").mkdir(parents=True)
    (out / "bin" / "tool").write_bytes(b"#!/bin/sh\n" * 1000)
    (out / "bin" / "tool").chmod(0o755)
    (out / "data").write_bytes(os.urandom(3 << 20))
    (out / "link").symlink_to("bin/tool")
    (out / "host").symlink_to("/etc/passwd")
    (out / "empty").mkdir()
    assert copy_output(src, "out", dst, "out") == 10 * 1000 + (3 << 20)
    copy = base / "dst" / "out"
    assert hash_path(str(copy)) == hash_path(str(out))
    assert os.readlink(copy / "host") == "/etc/passwd" and (copy / "host").is_symlink()
    assert os.stat(copy / "data").st_ino != os.stat(out / "data").st_ino
    assert stat.S_IMODE(os.stat(copy / "bin" / "tool").st_mode) == 0o755


def test_an_output_that_is_a_symlink_stays_one(dirs: tuple[Path, int, int]) -> None:
    """GHSA-g3g9-5vj6-r3gj: a copy that follows `$out -> /host/file` brings the host file in."""
    base, src, dst = dirs
    secret = base / "secret"
    secret.write_text("host secret\n")
    (base / "src" / "out").symlink_to(secret)
    copy_output(src, "out", dst, "out")
    assert os.readlink(base / "dst" / "out") == str(secret)


def test_files_a_store_cannot_hold_are_refused(dirs: tuple[Path, int, int]) -> None:
    base, src, dst = dirs
    (base / "src" / "out").mkdir()
    os.mkfifo(base / "src" / "out" / "fifo")
    with pytest.raises(StoreError, match="unsupported type"):
        copy_output(src, "out", dst, "out")


def test_unreadable_entries_of_the_builder_are_copied(dirs: tuple[Path, int, int]) -> None:
    base, src, dst = dirs
    out = base / "src" / "out"
    (out / "locked").mkdir(parents=True)
    (out / "locked" / "f").write_text("x")
    (out / "locked" / "f").chmod(0)
    (out / "locked").chmod(0o300)
    copy_output(src, "out", dst, "out")
    assert (base / "dst" / "out" / "locked" / "f").read_text() == "x"


def test_world_writable_top_is_carried_for_the_check(dirs: tuple[Path, int, int]) -> None:
    base, src, dst = dirs
    (base / "src" / "out").mkdir()
    (base / "src" / "out").chmod(0o777)
    copy_output(src, "out", dst, "out")
    assert stat.S_IMODE(os.lstat(base / "dst" / "out").st_mode) & 0o022


def test_a_tree_deeper_than_the_recursion_limit_is_copied() -> None:
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    try:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        name = "t"
        for _ in range(3000):
            os.mkdir(name, dir_fd=fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, name = sub, "d"
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
        os.close(fd)
        top = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        try:
            copy_output(top, "t", top, "copy")
        finally:
            os.close(top)
        fd = os.open(base / "copy", os.O_RDONLY | os.O_DIRECTORY)
        depth = 1
        while "d" in os.listdir(fd):
            sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
            depth += 1
        assert depth == 3000 and os.listdir(fd) == ["f"]
        os.close(fd)
    finally:
        from storekit.store.fsdelete import remove_tree

        for n in ("t", "copy"):
            remove_tree(str(base), n)
        shutil.rmtree(base)
