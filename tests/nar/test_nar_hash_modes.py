"""`hash_path` of a directory: read inline while its NAR is small, by a reader thread once it is big.

A directory's NAR size is not known before the walk, so hashing starts inline and hands the rest of
the walk to a thread past `_PIPELINE_FROM` bytes. Either way the hash is the one of `dump_path`'s bytes
(written by its own single-buffer loop), and an error found on either side of the hand-over reaches
the caller as the same `FileSystemError`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storekit.errors import FileSystemError
from storekit.nar import fs
from storekit.nar.fs import dump_path, hash_path

BIG = fs._PIPELINE_FROM


def _tree(root: Path, total: int) -> Path:
    """A directory whose files hold about `total` bytes, in a few files and a subdirectory."""
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    part = total // 3
    for i, where in enumerate([root / "b.bin", root / "sub" / "c.bin", root / "sub" / "d.bin"]):
        where.write_bytes(bytes([i + 1]) * part + os.urandom(1000))
    (root / "sub" / "d.bin").chmod(0o755)
    (root / "link").symlink_to("sub/c.bin")
    return root


def _dumped(path: Path) -> tuple[str, int]:
    data = b"".join(dump_path(path))
    return "sha256-" + hashlib.sha256(data).hexdigest(), len(data)


@pytest.mark.parametrize("total", [10_000, 3 * BIG], ids=["small", "past-the-hand-over"])
def test_a_directory_hashes_as_its_dump(tmp_path: Path, total: int) -> None:
    root = _tree(tmp_path / "d", total)
    h, size = hash_path(root)
    expected, expected_size = _dumped(root)
    assert "sha256-" + h.digest.hex() == expected
    assert size == expected_size
    assert (size > BIG) is (total > BIG)


@pytest.mark.parametrize("total", [10_000, 3 * BIG], ids=["inline", "in-the-thread"])
def test_an_error_on_either_side_of_the_hand_over_is_raised(tmp_path: Path, total: int) -> None:
    root = _tree(tmp_path / "d", total)
    os.mkfifo(root / "sub" / "zz.fifo")  # sorted last: found after every file's bytes
    with pytest.raises(FileSystemError, match=r"zz\.fifo' has an unsupported type"):
        hash_path(root)


def test_a_small_directory_starts_no_thread(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", 10_000)
    probe = (
        "import sys; from storekit.nar.fs import hash_path; hash_path(sys.argv[1]); "
        "print('threading' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
    big = _tree(tmp_path / "big", 3 * BIG)
    run = subprocess.run([sys.executable, "-c", probe, str(big)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "True"
