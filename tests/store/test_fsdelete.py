"""`fsdelete.remove_tree`: deep, read-only and hostile trees are deleted without leaving them.

The swap test was run first with `canonical.delete_path` (deletion by path) in place of `remove_tree`:
it deleted the victim's files. The 100,000-level tree made `delete_path` raise RecursionError.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import StoreError
from storekit.store.fsdelete import remove_tree


def deep_tree(parent: Path, levels: int) -> None:
    """`parent/t/d/d/…/d/f`, `levels` directories deep, made fd-relative (no path is that long)."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    name = "t"
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, name = sub, "d"
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: 100,000 rmdirs on a busy ext4 take minutes."""
    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="storekit-fsdelete-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_tree_deeper_than_the_recursion_limit_is_deleted(fast_tmp: Path) -> None:
    deep_tree(fast_tmp, 5_000)
    assert remove_tree(str(fast_tmp), "t") == 0
    assert os.listdir(fast_tmp) == []


@pytest.mark.slow
def test_a_100000_level_tree_is_deleted(fast_tmp: Path) -> None:
    """About 25 s on tmpfs on the project's (busy) machine, minutes on ext4."""
    deep_tree(fast_tmp, 100_000)
    assert remove_tree(str(fast_tmp), "t") == 0
    assert os.listdir(fast_tmp) == []


def test_read_only_trees_and_counts(tmp_path: Path) -> None:
    top = tmp_path / "p"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_bytes(b"x" * 100)
    (top / "g").write_bytes(b"y" * 10)
    (top / "link").symlink_to("/etc/passwd")
    (top / "hole").mkdir()
    for p in (top / "a" / "b", top / "a", top):
        p.chmod(0o555)
    (top / "hole").chmod(0)  # not even readable: pinned with O_PATH and opened up
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        freed = remove_tree(fd, "p")
    finally:
        os.close(fd)
    assert not top.exists() and os.path.exists("/etc/passwd")
    assert freed == 100 + 10 + len("/etc/passwd")


def test_a_symlink_is_removed_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    (tmp_path / "link").symlink_to(victim)
    remove_tree(str(tmp_path), "link")
    assert (victim / "precious").read_text() == "keep" and not (tmp_path / "link").is_symlink()
    assert remove_tree(str(tmp_path), "absent") == 0
    with pytest.raises(ValueError):
        remove_tree(str(tmp_path), "a/b")


def test_a_directory_swapped_for_a_symlink_mid_walk_is_not_followed(tmp_path: Path) -> None:
    """The shape of CVE-2025-52991: once the deletion is inside `d`, `d` becomes a symlink to a victim
    directory holding files of the same names."""
    count = 3000
    victim = tmp_path / "victim"
    victim.mkdir()
    build = tmp_path / "build"
    d = build / "d"
    d.mkdir(parents=True)
    for i in range(count):
        (victim / f"f{i:05d}").write_text("precious\n")
        (d / f"f{i:05d}").write_text("junk\n")
    swapped = threading.Event()

    def swap() -> None:
        while not swapped.is_set():
            try:
                if len(os.listdir(d)) < count:
                    os.rename(d, build / "d.old")
                    os.symlink(victim, d)
                    swapped.set()
            except OSError:
                return

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        remove_tree(str(tmp_path), "build")
    except StoreError:
        pass  # refusing to go on is fine; deleting the victim's files is not
    finally:
        swapped.set()
        thread.join()
    assert len(os.listdir(victim)) == count


def test_a_tree_moved_away_mid_walk_stops_the_deletion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Climbing back with `..` checks it arrives where it came from."""
    deep_tree(tmp_path, 3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real_fstat = os.fstat
    moved = []

    def fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if not moved and stat.S_ISDIR(st.st_mode) and os.listdir(fd) == ["f"]:
            os.rename(tmp_path / "t" / "d", elsewhere / "d")  # the walk is now in a moved subtree
            moved.append(True)
        return st

    monkeypatch.setattr(os, "fstat", fstat)
    with pytest.raises(StoreError, match="was moved"):
        remove_tree(str(tmp_path), "t")
    monkeypatch.undo()
    assert (elsewhere / "d").exists()
