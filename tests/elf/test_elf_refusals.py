"""Bad input and unsupported edits: one clear error, and the file stays byte-for-byte as it was."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, check_elf, run, sh, shared_fixtures

from storekit.elf import RewritePrefix, SetInterpreter, SetRpath
from storekit.elf.fs import edit_file, read_facts
from storekit.errors import ElfError, ElfPatchError

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def refused(path: Path, edits: list[object], match: str, error: type[ElfError] = ElfPatchError) -> None:
    before = path.read_bytes()
    with pytest.raises(error, match=match):
        edit_file(str(path), edits)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".storekit")] == []


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True, cwd=ROOT)


def test_static_binary(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("static", tmp_path)
    refused(exe, [SetRpath("/x")], "statically linked")
    refused(exe, [SetInterpreter("/x/ld.so")], "no program interpreter")
    assert edit_file(str(exe), [RewritePrefix("/usr", "/opt")]).outcome == "unchanged"
    assert read_facts(str(exe)).interpreter is None


def test_library_has_no_interpreter(fx: Fixtures, tmp_path: Path) -> None:
    lib = tmp_path / "libans.so.1"
    shutil.copy2(fx.libdir / "libans.so.1", lib)
    refused(lib, [SetInterpreter("/lib64/ld-linux-x86-64.so.2")], "no program interpreter")


def test_relocatable_object(fx: Fixtures, tmp_path: Path) -> None:
    obj = tmp_path / "lib.o"
    sh("gcc", "-c", "-o", obj, fx.path("lib.c"))
    assert read_facts(str(obj)).type == "REL"
    refused(obj, [SetRpath("/x")], "relocatable object")


def test_unknown_machine_is_edited_like_any_other(fx: Fixtures, tmp_path: Path) -> None:
    """As patchelf: the dynamic linking conventions are the same on every machine (MIPS's one
    self-relative tag is kept right, see tests/test_elf_machines.py)."""
    exe = fx.copy("pie", tmp_path)
    data = bytearray(exe.read_bytes())
    data[18:20] = struct.pack("<H", 0x1234)
    exe.write_bytes(data)
    assert read_facts(str(exe)).machine == "unknown (4660)"
    edit_file(str(exe), [SetRpath("/x" * 100)])
    assert read_facts(str(exe)).runpath == "/x" * 100
    assert edit_file(str(exe), [RewritePrefix("/nowhere", "/else")]).outcome == "unchanged"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not an ELF file"),
        (b"#!/bin/sh\necho hi\n", "not an ELF file"),
        (b"\x7fELF\x02\x01\x01" + bytes(20), "truncated ELF file"),
        (b"\x7fELF\x07\x01\x01" + bytes(80), "unknown class"),
    ],
)
def test_not_elf_or_truncated_header(tmp_path: Path, content: bytes, match: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(content)
    refused(f, [SetRpath("/x")], match, ElfError)
    with pytest.raises(ElfError, match=match):
        read_facts(str(f))


@pytest.mark.parametrize("keep", [100, 1000, 8000, -1])
def test_truncated_file(fx: Fixtures, tmp_path: Path, keep: int) -> None:
    f = tmp_path / "f"
    f.write_bytes(fx.path("pie").read_bytes()[:keep])
    refused(f, [SetRpath("/x")], "truncated ELF file", ElfError)


def _corrupt(fx: Fixtures, tmp_path: Path, offset: int, value: bytes) -> Path:
    f = fx.copy("pie", tmp_path)
    data = bytearray(f.read_bytes())
    data[offset : offset + len(value)] = value
    f.write_bytes(data)
    return f


def test_inconsistent_headers(fx: Fixtures, tmp_path: Path) -> None:
    f = _corrupt(fx, tmp_path / "a", 54, struct.pack("<H", 40))  # e_phentsize
    refused(f, [SetRpath("/x")], "program header entries are 40 bytes", ElfError)
    f = _corrupt(fx, tmp_path / "b", 62, struct.pack("<H", 999))  # e_shstrndx
    refused(f, [SetRpath("/x")], "e_shstrndx 999", ElfError)


def test_dynamic_without_terminator(fx: Fixtures, tmp_path: Path) -> None:
    f = fx.copy("pie", tmp_path)
    out = sh("readelf", "-lW", f)
    line = next(ln for ln in out.splitlines() if ln.split()[:1] == ["DYNAMIC"])
    offset, size = int(line.split()[1], 16), int(line.split()[4], 16)
    data = bytearray(f.read_bytes())
    for pos in range(offset, offset + size, 16):
        if struct.unpack_from("<q", data, pos)[0] == 0:
            struct.pack_into("<qQ", data, pos, 21, 0)  # DT_DEBUG instead of DT_NULL
    f.write_bytes(data)
    refused(f, [SetRpath("/x")], "no DT_NULL terminator", ElfError)


def test_no_section_headers(fx: Fixtures, tmp_path: Path) -> None:
    """Such files run (patchelf #63 refuses them all); in-place edits work, growth needs the headers."""
    f = fx.copy("pie", tmp_path)
    data = bytearray(f.read_bytes())
    struct.pack_into("<Q", data, 40, 0)  # e_shoff
    struct.pack_into("<HHH", data, 58, 0, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
    f.write_bytes(data)
    assert run(f) == "answer 42\n"
    assert edit_file(str(f), [SetRpath(f"{fx.root}/lib")]).outcome == "unchanged"
    lib = fx.root / "lx"
    lib.mkdir(exist_ok=True)
    shutil.copy2(fx.libdir / "libans.so.1", lib)
    assert edit_file(str(f), [SetRpath(str(lib))]).outcome == "patched in place"
    assert run(f) == "answer 42\n"
    refused(
        f, [SetRpath("/a/much/longer/rpath/than/the/one/there/is/now/in/the/file/" * 2)], "no section headers"
    )


def test_unwritable_file(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    if subprocess.run(["chattr", "+i", str(exe)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        refused(exe, [SetRpath("/x")], "is not writable")
        refused(exe, [SetRpath("/x" * 100)], "is not writable")
    finally:
        subprocess.run(["chattr", "-i", str(exe)], check=True)


def test_cli_refusal_is_one_line(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("static", tmp_path)
    before = exe.read_bytes()
    proc = storekit("elf", "set-rpath", "/x", str(exe))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {exe}: is statically linked")
    assert exe.read_bytes() == before


def test_cli_patches_the_others_and_reports_the_refused(fx: Fixtures, tmp_path: Path) -> None:
    good, bad = fx.copy("pie", tmp_path / "a"), fx.copy("static", tmp_path / "b")
    proc = storekit("elf", "set-rpath", str(fx.libdir) + ":/extra/dir/for/growth", str(bad), str(good))
    assert proc.returncode == 1
    assert "1 of 2 files were not patched" in proc.stderr and str(bad) in proc.stderr
    assert read_facts(str(good)).runpath == str(fx.libdir) + ":/extra/dir/for/growth"
    check_elf(good)


def test_output_needs_one_file(fx: Fixtures, tmp_path: Path) -> None:
    a, b = fx.copy("pie", tmp_path / "a"), fx.copy("pie", tmp_path / "b")
    proc = storekit("elf", "set-rpath", "/x", str(a), str(b), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "--output takes exactly one FILE" in proc.stderr
