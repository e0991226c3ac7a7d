"""Attacks by NAR: trees deep enough to exhaust recursion, descriptors and PATH_MAX; lengths that lie.

Each test was run against the code before the fix and failed there (the docstrings say how), so each
guards one hole of issue 14 (docs/security.md).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import NarFormatError
from storekit.hashing import Hash
from storekit.nar import format as fmt
from storekit.nar.fs import dump_path, hash_path, restore
from storekit.nar.listing import ls
from storekit.relocate import Mode, relocate
from storekit.store.base import ValidPathInfo
from storekit.store.content_address import source_ca
from storekit.store.gc import delete_paths
from storekit.store.layout import STAGING_PREFIX
from storekit.store.link import LinkMode
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StorePath
from storekit.transfer.copy import copy_closure

#: Past the recursion limit (~1,000) and PATH_MAX (4,096 bytes) in the default run; 100,000 levels
#: (past the descriptor limit too) in the slow run.
DEPTHS = [5_000, pytest.param(100_000, marks=pytest.mark.slow, id="100000")]


def deep_nar(depth: int, leaf: bytes = b"at the bottom\n") -> bytes:
    """A NAR `depth` directories deep (each named `d`) with one file `f` at the bottom.

    Written flat, since any recursive writer is what this attacks.
    """
    file_node = fmt.regular_header(len(leaf), False) + leaf + fmt.ZEROS[: fmt.padding(len(leaf))] + fmt.CLOSE
    bottom = fmt.DIRECTORY_START + fmt.entry_header(b"f") + file_node + fmt.ENTRY_END
    return b"".join(
        [
            fmt.HEADER,
            (fmt.DIRECTORY_START + fmt.entry_header(b"d")) * depth,
            bottom,
            fmt.ENTRY_END * depth,
        ]
    )


@pytest.fixture(scope="module", params=DEPTHS)
def deep(request: pytest.FixtureRequest) -> bytes:
    return deep_nar(request.param)


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one: a deep tree is 2 mkdirs per level, slow on a busy disk."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)
    where = Path(tempfile.mkdtemp(prefix="storekit-attack-", dir=base))
    yield where
    from storekit.fdtree import remove_tree

    remove_tree(where)


@pytest.fixture
def store(fast_tmp: Path) -> Iterator[LocalStore]:
    s = LocalStore(local_spec_for(str(fast_tmp / "store"), state_dir=str(fast_tmp / "var" / "nix")))
    yield s
    s.close()


def test_deep_nar_restores_dumps_back_and_deletes(fast_tmp: Path, deep: bytes) -> None:
    """Restore, dump (byte-identical), hash, delete.

    Before: dump raised RecursionError from the recursive walk (~1,000 levels), and shutil.rmtree
    as well; restore held one descriptor per level (EMFILE past the descriptor limit).
    """
    dest = fast_tmp / "deep"
    assert restore(io.BytesIO(deep), dest) == len(deep)
    assert b"".join(dump_path(dest)) == deep
    assert hash_path(dest) == (Hash.of(deep), len(deep))
    from storekit.fdtree import remove_tree

    assert remove_tree(dest) == len(b"at the bottom\n")
    assert not os.path.lexists(dest)


def test_deep_nar_goes_into_a_store_and_out_again(store: LocalStore, deep: bytes) -> None:
    """A deep store path is added (canonicalised), read back and deleted.

    Before: canonicalise_path failed with ENAMETOOLONG (it built full paths) and deletion with
    RecursionError.
    """
    nar_hash = Hash.of(deep)
    path = store.store_dir.make_source_path("deep", nar_hash)
    info = ValidPathInfo(path, nar_hash, len(deep), ca=source_ca(nar_hash))
    store.add_from_nar(info, io.BytesIO(deep))
    assert store.is_valid_path(path)
    assert b"".join(store.nar_from_path(path)) == deep
    delete_paths(store, [path])
    assert not store.is_valid_path(path)
    assert not os.path.lexists(store.real_path(path))


def test_store_with_a_deep_staging_leftover_still_opens(fast_tmp: Path, deep: bytes) -> None:
    """A killed add left a deep staging dir: the next open removes it and works.

    Before: remove_stale_staging recursed into it and raised RecursionError, so the store no longer
    opened at all.
    """
    real = fast_tmp / "store"
    spec = local_spec_for(str(real), state_dir=str(fast_tmp / "var" / "nix"))
    LocalStore(spec).close()
    leftover = real / f"{STAGING_PREFIX}killed"
    leftover.mkdir()
    restore(io.BytesIO(deep), leftover / "x")
    os.chmod(leftover / "x", 0o555)  # read-only, as a half-installed store path is
    s = LocalStore(spec)
    try:
        assert not leftover.exists()
        assert s.add_text("after", b"still works\n").name == "after"
    finally:
        s.close()


def _huge_file_nar(size: int) -> bytes:
    return fmt.HEADER + fmt.regular_header(size, False) + b"x" * 64


def test_a_file_of_2_63_bytes_is_refused_before_allocation(tmp_path: Path) -> None:
    """A NAR declaring a 2^63-byte file: a NarFormatError naming the size, nothing left behind.

    Before: posix_fallocate raised OverflowError (not a StorekitError: a traceback).
    """
    dest = tmp_path / "huge"
    with pytest.raises(NarFormatError, match=r"9223372036854775808 bytes"):
        restore(io.BytesIO(_huge_file_nar(1 << 63)), dest)
    assert not os.path.lexists(dest)


def test_a_file_longer_than_the_declared_nar_size_is_refused_at_its_length(tmp_path: Path) -> None:
    """With NarSize known, a length past the end of the NAR is refused before any byte is written."""
    nar = _huge_file_nar(1 << 40)
    with pytest.raises(NarFormatError, match=r"more than the \d+ bytes left of its declared size"):
        restore(io.BytesIO(nar), tmp_path / "big", nar_size=len(nar))
    assert not os.path.lexists(tmp_path / "big")


def test_cli_nar_restore_of_a_huge_file_is_one_error_line(tmp_path: Path) -> None:
    """`storekit nar restore` of the 2^63-byte NAR: one `error:` line, exit 1 (before: a traceback)."""
    nar = tmp_path / "huge.nar"
    nar.write_bytes(_huge_file_nar(1 << 63))
    result = _storekit("nar", "restore", str(tmp_path / "out"), stdin=nar.read_bytes())
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1
    assert result.stderr.startswith(b"error: ") and b"9223372036854775808" in result.stderr


def test_cli_nar_restore_to_a_dangling_symlink_is_one_error_line(tmp_path: Path) -> None:
    """The destination is a dangling symlink: one `error:` line saying so, the symlink untouched.

    Issue 14 saw a traceback; before this change the message was only "creating file '…': File
    exists" about a name whose target does not exist.
    """
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    nar = fmt.HEADER + fmt.regular_header(3, False) + b"abc" + fmt.ZEROS[:5] + fmt.CLOSE
    result = _storekit("nar", "restore", str(link), stdin=nar)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "as a symbolic link" in lines[0], lines
    assert os.readlink(link) == str(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def _storekit(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "storekit", *args], input=stdin, capture_output=True, check=False
    )


def _add_deep(store: LocalStore, nar: bytes) -> StorePath:
    nar_hash = Hash.of(nar)
    path = store.store_dir.make_source_path("deep", nar_hash)
    store.add_from_nar(ValidPathInfo(path, nar_hash, len(nar), ca=source_ca(nar_hash)), io.BytesIO(nar))
    return path


def test_a_deep_path_copies_between_local_stores(fast_tmp: Path, deep: bytes) -> None:
    """`copy` between local stores (hard links, fd-relative on both sides) of a deep path.

    Before: the linking walk built full paths (ENAMETOOLONG past PATH_MAX).
    """
    src = LocalStore(
        local_spec_for("/opt/store", state_dir=str(fast_tmp / "v1"), real_dir=str(fast_tmp / "s1"))
    )
    dst = LocalStore(
        local_spec_for("/opt/store", state_dir=str(fast_tmp / "v2"), real_dir=str(fast_tmp / "s2"))
    )
    try:
        path = _add_deep(src, deep)
        copy_closure(src, dst, [path], policy=SignaturePolicy(require_sigs=False), link=LinkMode.AUTO)
        assert b"".join(dst.nar_from_path(path)) == deep
    finally:
        src.close()
        dst.close()


def test_a_deep_path_relocates(fast_tmp: Path) -> None:
    """Relocation to another store dir of a path 1,500 levels deep (past the recursion limit; the
    relocating walk still uses paths, so PATH_MAX bounds it: deeper trees get a one-line error).

    Before: RecursionError.
    """
    nar = deep_nar(1_500)
    src = LocalStore(
        local_spec_for("/opt/old", state_dir=str(fast_tmp / "v1"), real_dir=str(fast_tmp / "s1"))
    )
    dst = LocalStore(
        local_spec_for("/opt/new", state_dir=str(fast_tmp / "v2"), real_dir=str(fast_tmp / "s2"))
    )
    try:
        path = _add_deep(src, nar)
        new = relocate(src, dst, [path], mode=Mode.KEEP_HASH, link=LinkMode.AUTO).paths[path]
        assert b"".join(dst.nar_from_path(new)) == nar
    finally:
        src.close()
        dst.close()


def test_a_deep_nar_lists_recursively() -> None:
    """`nar ls -R` and `--json -R` of a NAR 3,000 levels deep (text lines hold full paths, so the
    text output grows with the square of the depth, as Nix's does).

    Before: RecursionError in both (the listing recursed per directory).
    """
    listing = ls(io.BytesIO(deep_nar(3_000)), recursive=True)
    lines = listing.text().splitlines()
    assert len(lines) == 3_001 and lines[-1] == b"./" + b"d/" * 3_000 + b"f"
    doc = listing.json()
    assert doc.count(b'"type":"directory"') == 3_001 and doc.endswith(b"}}" * 3_001)
