"""Attacks by ELF file: headers whose alignments and sizes would make an edit write gigabytes.

Run against the code before the fix, each failed there (the docstrings say how); see
docs/security.md.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, shared_fixtures

ROOT = Path(__file__).resolve().parent.parent.parent
LONG_RPATH = "/a/long/rpath/" + "x" * 300  # does not fit in place: the edit must grow the file
PT_LOAD = 1


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def _last_load_end(data: bytes) -> tuple[int, int]:
    """(offset of the last PT_LOAD's header, end of its file image) in an ELF64 LE file."""
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phnum = struct.unpack_from("<H", data, 0x38)[0]
    last = (0, 0)
    for i in range(phnum):
        at = phoff + i * 56
        if struct.unpack_from("<I", data, at)[0] == PT_LOAD:
            offset, filesz = (
                struct.unpack_from("<Q", data, at + 8)[0],
                struct.unpack_from("<Q", data, at + 32)[0],
            )
            last = (at, offset + filesz)
    return last


def with_moved_section_alignment(data: bytes, align: int) -> bytes:
    """`data` with sh_addralign = `align` for the first section stored after the last segment."""
    out = bytearray(data)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    end = _last_load_end(data)[1]
    for i in range(1, shnum):
        at = shoff + i * shentsize
        kind, offset = struct.unpack_from("<I", data, at + 4)[0], struct.unpack_from("<Q", data, at + 0x18)[0]
        if kind != 8 and offset >= end:  # not NOBITS, stored after the segment: it moves on growth
            struct.pack_into("<Q", out, at + 0x30, align)
            return bytes(out)
    raise AssertionError("no section after the last segment")


def with_huge_bss(data: bytes, bss: int) -> bytes:
    """`data` whose last PT_LOAD claims `bss` bytes of memory past its file image."""
    out = bytearray(data)
    at = _last_load_end(data)[0]
    filesz = struct.unpack_from("<Q", data, at + 32)[0]
    struct.pack_into("<Q", out, at + 40, filesz + bss)
    return bytes(out)


def _refused_by_cli(path: Path, mutant: bytes, expect: str) -> None:
    path.write_bytes(mutant)
    before = sorted(p.name for p in path.parent.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "storekit", "elf", "set-rpath", LONG_RPATH, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], lines
    assert path.read_bytes() == mutant
    assert sorted(p.name for p in path.parent.iterdir()) == before


@pytest.mark.parametrize("align", [1 << 62, 1 << 30])
def test_a_huge_section_alignment_is_refused_before_any_write(
    fx: Fixtures, tmp_path: Path, align: int
) -> None:
    """sh_addralign 2^62 or 2^30 on a section that growth moves: one error line, nothing written.

    Before: 2^62 raised OSError (EFBIG) from pwrite with a traceback; 2^30 wrote a 1 GiB file.
    """
    data = fx.path("pie").read_bytes()
    _refused_by_cli(tmp_path / "pie", with_moved_section_alignment(data, align), "alignment")


def test_a_non_power_of_two_alignment_is_refused(fx: Fixtures, tmp_path: Path) -> None:
    """sh_addralign 24 is not an alignment at all (the ELF spec wants 0 or a power of two)."""
    data = fx.path("pie").read_bytes()
    _refused_by_cli(tmp_path / "pie", with_moved_section_alignment(data, 24), "not a power of two")


def test_a_huge_bss_is_refused_before_any_write(fx: Fixtures, tmp_path: Path) -> None:
    """p_memsz claiming 2^40 bytes of .bss, which growth turns into file bytes: refused, unwritten.

    Before: the edit wrote a sparse file of a TiB (or failed with EFBIG and a traceback).
    """
    data = fx.path("pie").read_bytes()
    _refused_by_cli(tmp_path / "pie", with_huge_bss(data, 1 << 40), ".bss")


def test_an_ordinary_alignment_still_grows(fx: Fixtures, tmp_path: Path) -> None:
    """The bound is the file size: the usual alignments (1, 8, 64) keep working."""
    data = with_moved_section_alignment(fx.path("pie").read_bytes(), 64)
    path = tmp_path / "pie"
    path.write_bytes(data)
    subprocess.run(
        [sys.executable, "-m", "storekit", "elf", "set-rpath", LONG_RPATH, str(path)], check=True, cwd=ROOT
    )
    out = subprocess.run(
        [sys.executable, "-m", "storekit", "elf", "print", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert LONG_RPATH in out.stdout
