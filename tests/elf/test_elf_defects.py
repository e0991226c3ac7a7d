"""Files patchelf's own test suite showed storekit mishandling: separate debug files, empty dynamic
segments, libraries without a dynamic segment, static-pie programs, stale strings after growth."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, check_elf, run, sh, shared_fixtures

from storekit.elf import RewritePrefix, SetInterpreter, SetRpath, SetSoname
from storekit.elf.fs import edit_file, read_facts
from storekit.elf.tree import rewrite_prefix
from storekit.errors import ElfPatchError

ROOT = Path(__file__).resolve().parent.parent.parent
LONG = "/opt/store/" + "x" * 32 + "-a-much-longer-name-than-before/lib"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True, cwd=ROOT)


def _set_phdr(path: Path, p_type: int, **fields: int) -> None:
    """Rewrite one field set of the (64-bit, little-endian) program header of type `p_type`."""
    data = bytearray(path.read_bytes())
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    names = ["type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align"]
    for i in range(phnum):
        at = phoff + i * phentsize
        values = dict(zip(names, struct.unpack_from("<IIQQQQQQ", data, at), strict=True))
        if values["type"] == p_type:
            values.update(fields)
            struct.pack_into("<IIQQQQQQ", data, at, *values.values())
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no segment of type {p_type}")


def test_separate_debug_file_has_nothing_to_change(fx: Fixtures, tmp_path: Path) -> None:
    debug = tmp_path / "tree" / "pie.debug"
    debug.parent.mkdir()
    sh("strip", "--only-keep-debug", "-o", debug, fx.path("pie"))
    assert "NOBITS" in sh("readelf", "-SW", debug).split(".dynamic")[1].splitlines()[0]
    facts = read_facts(str(debug))
    assert (facts.interpreter, facts.runpath, facts.needed) == (None, None, ())
    before = debug.read_bytes()
    report = rewrite_prefix([str(debug.parent)], str(fx.libdir), "/opt/lib")
    assert (report.changed, report.unchanged, report.refused) == ((), 1, ())
    assert debug.read_bytes() == before
    with pytest.raises(ElfPatchError, match="separate debug file"):
        edit_file(str(debug), [SetRpath("/x")])
    proc = storekit("elf", "rewrite-prefix", "--from", str(fx.libdir), "--to", "/opt/lib", str(debug.parent))
    assert proc.returncode == 0 and proc.stdout == "0 changed, 1 unchanged, 0 not ELF, 0 refused\n"


def test_empty_dynamic_segment_at_offset_zero(fx: Fixtures, tmp_path: Path) -> None:
    lib = tmp_path / "libans.so.1"
    shutil.copy2(fx.libdir / "libans.so.1", lib)
    _set_phdr(lib, 2, offset=0, filesz=0)  # what some linker scripts emit
    assert read_facts(str(lib)).soname is None
    report = rewrite_prefix([str(lib)], "/usr", "/opt")
    assert (report.unchanged, report.refused) == (1, ())


def test_library_without_dynamic_segment_is_not_called_static(fx: Fixtures, tmp_path: Path) -> None:
    lib = tmp_path / "libans.so.1"
    shutil.copy2(fx.libdir / "libans.so.1", lib)
    _set_phdr(lib, 2, type=0)  # PT_DYNAMIC -> PT_NULL
    with pytest.raises(ElfPatchError) as info:
        edit_file(str(lib), [SetRpath("/x")])
    assert "has no dynamic section" in str(info.value) and "statically" not in str(info.value)


def test_static_pie_rpath_edit_succeeds_and_keeps_it_runnable(fx: Fixtures, tmp_path: Path) -> None:
    exe = tmp_path / "static-pie"
    sh("gcc", "-static-pie", "-o", exe, fx.path("main.c"), fx.path("lib.c"))
    before = exe.read_bytes()
    # glibc's static-pie start-up asserts that there is no DT_RUNPATH/DT_RPATH: writing one (as
    # patchelf does) makes the program crash before main, so storekit leaves the file as it is.
    assert edit_file(str(exe), [SetRpath("/opt/store/x/lib")]).outcome == "unchanged"
    assert storekit("elf", "set-rpath", "/opt/x", str(exe)).returncode == 0
    assert exe.read_bytes() == before
    assert run(exe) == "answer 42\n"
    with pytest.raises(ElfPatchError, match="static-pie"):
        edit_file(str(exe), [SetInterpreter("/x")])


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "in-place"])
@pytest.mark.parametrize("name", ["pie", "nopie", "pie-rpath"])
def test_grown_file_keeps_no_stale_rpath(fx: Fixtures, tmp_path: Path, name: str, atomic: bool) -> None:
    exe = fx.copy(name, tmp_path)
    original = exe.read_bytes()
    old = str(fx.libdir).encode()
    assert old in original
    edit_file(str(exe), [SetRpath(f"{LONG}:{fx.libdir}2")], atomic=atomic)
    grown = exe.read_bytes()
    assert len(grown) > len(original) and old + b"\0" not in grown and old + b"2" in grown
    check_elf(exe)
    # set back: the original layout and bytes return (the cleared string is written again)
    edit_file(str(exe), [SetRpath(str(fx.libdir))], atomic=atomic)
    assert exe.read_bytes() == original
    assert run(exe) == "answer 42\n"


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "in-place"])
def test_growing_again_leaves_the_given_up_rpath_once_as_xs(
    fx: Fixtures, tmp_path: Path, atomic: bool
) -> None:
    """patchelf's `shared-rpath` test: a grown table's own rpath, given up by a second growth, stays
    as `X`s (once: not every earlier edit's leftovers), and no copy of it remains readable."""
    exe = fx.copy("pie", tmp_path)
    first, second = f"{LONG}:{fx.libdir}", f"{LONG}/and-longer-still:{fx.libdir}"
    edit_file(str(exe), [SetRpath(first)], atomic=atomic)
    edit_file(str(exe), [SetRpath(second)], atomic=atomic)
    data = exe.read_bytes()
    assert first.encode() + b"\0" not in data
    assert data.count(b"\0" + b"X" * len(first) + b"\0") == 1
    assert read_facts(str(exe)).runpath == second
    edit_file(str(exe), [SetRpath(f"{LONG}/the-third-and-longest-of-all:{fx.libdir}")], atomic=atomic)
    data = exe.read_bytes()
    assert data.count(b"\0" + b"X" * len(second) + b"\0") == 1
    assert data.count(b"\0" + b"X" * len(first) + b"\0") == 0
    check_elf(exe)
    assert run(exe) == "answer 42\n"


def test_in_place_edit_clears_the_string_it_gives_up(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    edit_file(str(exe), [RewritePrefix(str(fx.libdir), "/o")])
    assert str(fx.libdir).encode() not in exe.read_bytes()
    # the rpath's place now holds "/o" and zeros; the old directory name is gone from the file
    edit_file(str(exe), [SetRpath("libans.so.1")])  # reuses an existing string: "/o" is cleared
    assert b"/o\0" not in exe.read_bytes()
    check_elf(exe)


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "in-place"])
def test_a_string_shared_with_the_tail_of_a_needed_library_is_never_overwritten(
    fx: Fixtures, tmp_path: Path, atomic: bool
) -> None:
    """Found by the property test: soname "1" reuses the tail of "libans.so.1"; setting the soname
    again must not write over it (nor taint it) while DT_NEEDED still reads the whole string."""
    exe = fx.copy("pie", tmp_path)
    edit_file(str(exe), [SetRpath(f"/nonexistent/_:{fx.libdir}"), SetSoname("1")], atomic=atomic)
    edit_file(str(exe), [SetSoname("0")], atomic=atomic)
    facts = read_facts(str(exe))
    assert facts.needed[0] == "libans.so.1" and facts.soname == "0"
    check_elf(exe)
    assert run(exe) == "answer 42\n"
