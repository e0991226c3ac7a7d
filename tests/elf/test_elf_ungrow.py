"""Un-growing: a file storekit grew gets its original layout back, byte for byte, with its old strings.

Every fixture is compiled by gcc (tests/elf/elf_fixtures.py); the grown and the un-grown files are run
(`LD_BIND_NOW=1 LD_WARN=1`, empty stderr), checked by readelf, pyelftools and `ld.so --verify`, and
compared byte for byte with the file gcc made.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from elf_fixtures import (
    LDSO,
    Fixtures,
    check_elf,
    has_gcc_m32,
    ldso_verify,
    load_count,
    run,
    sh,
    shared_fixtures,
)

from storekit.elf import AddNeeded, AddRpath, Edit, RemoveRpath, SetInterpreter, SetRpath, SetSoname
from storekit.elf.fs import edit_file, open_elf, read_facts
from storekit.elf.ungrow import original_layout

PROGRAMS = ["pie", "pie-rpath", "nopie", "nopie-runpath", "pie-2m", "nopie-2m"]
# The same loader, named by a path long enough that it cannot fit in .interp.
LONG_LDSO = "/lib64/" + "/" * 120 + "ld-linux-x86-64.so.2"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def long_rpath(fx: Fixtures, n: int = 1) -> str:
    """The fixtures' library dir, then directories that do not exist: too long for .dynstr."""
    return ":".join([str(fx.libdir), *(f"/nonexistent/{'d' * 60}-{i}" for i in range(4 * n))])


def edit(path: Path, *edits: Edit, atomic: bool = True) -> None:
    edit_file(str(path), list(edits), atomic=atomic)


def is_grown(path: Path) -> bool:
    with open_elf(str(path)) as elf:
        return original_layout(elf) is not None


def rpath_of(path: Path) -> str:
    facts = read_facts(str(path))
    value = facts.rpath if facts.rpath is not None else facts.runpath
    assert value is not None
    return value


def valid_program(path: Path) -> None:
    check_elf(path)
    ldso_verify(path, 0)
    assert run(path) == "answer 42\n"


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "in-place"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_grown_program_given_its_strings_back_is_the_original(
    fx: Fixtures, tmp_path: Path, name: str, atomic: bool
) -> None:
    exe = fx.copy(name, tmp_path)
    original = exe.read_bytes()
    rpath = rpath_of(exe)
    edit(exe, SetRpath(long_rpath(fx)), SetInterpreter(LONG_LDSO), atomic=atomic)
    assert exe.stat().st_size > len(original) and is_grown(exe)
    valid_program(exe)
    edit(exe, SetRpath(rpath), SetInterpreter(LDSO), atomic=atomic)
    assert exe.read_bytes() == original
    assert not is_grown(exe) and load_count(exe) == load_count(fx.path(name))
    valid_program(exe)


def test_grown_twice_then_given_its_strings_back_is_the_original(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    original = exe.read_bytes()
    rpath = rpath_of(exe)
    edit(exe, SetRpath(long_rpath(fx)))
    once = exe.stat().st_size
    edit(exe, SetInterpreter(LONG_LDSO))  # the interpreter moves too: the tail is rebuilt
    edit(exe, SetRpath(long_rpath(fx, 3)), AddNeeded("libc.so.6"))
    assert exe.stat().st_size > once
    valid_program(exe)
    edit(exe, SetInterpreter(LDSO))  # fits in the grown copy, but the rpath does not fit the original
    assert is_grown(exe)
    valid_program(exe)
    edit(exe, SetRpath(rpath))
    assert exe.read_bytes() == original


def test_library_with_version_definitions(fx: Fixtures, tmp_path: Path) -> None:
    lib = _copy_lib(fx, "libver.so.1", tmp_path)
    original = lib.read_bytes()
    edit(lib, SetSoname("libver.so.1" + ".with-a-much-longer-name" * 4))
    assert is_grown(lib)
    edit(lib, SetSoname("libver.so.1"))
    assert lib.read_bytes() == original
    check_elf(lib)
    ldso_verify(lib, 2)
    assert run(fx.path("dlopen"), lib, "ver_answer") == "ver_answer=7\n"


def test_library_whose_dynamic_section_grew(fx: Fixtures, tmp_path: Path) -> None:
    """An added DT_RUNPATH moves .dynamic too; removing it restores the old dynamic section."""
    lib = _copy_lib(fx, "libans.so.1", tmp_path)
    original = lib.read_bytes()
    edit(lib, AddRpath(long_rpath(fx)))
    assert is_grown(lib)
    edit(lib, RemoveRpath())
    assert lib.read_bytes() == original
    check_elf(lib)
    ldso_verify(lib, 2)


def test_stripped_grown_file_stays_valid(fx: Fixtures, tmp_path: Path) -> None:
    """`strip` rewrites the file and zeroes the original tables growth left behind (no section covers
    them): un-growing may only give the stripped original; else the grown layout stays, valid."""
    exe = fx.copy("pie", tmp_path)
    rpath = rpath_of(exe)
    stripped = fx.copy("pie", tmp_path / "stripped")
    sh("strip", stripped)
    edit(exe, SetRpath(long_rpath(fx)), SetInterpreter(LONG_LDSO))
    sh("strip", exe)
    valid_program(exe)
    grown = exe.stat().st_size
    edit(exe, SetRpath(rpath), SetInterpreter(LDSO))
    valid_program(exe)
    assert read_facts(str(exe)) == read_facts(str(stripped))
    if exe.stat().st_size < grown:
        assert exe.read_bytes() == stripped.read_bytes()


def test_grown_file_with_a_new_string_is_not_ungrown(fx: Fixtures, tmp_path: Path) -> None:
    """A string that is not in the original table keeps the grown layout (edited in place)."""
    exe = fx.copy("pie", tmp_path)
    size = exe.stat().st_size
    rpath = rpath_of(exe)
    edit(exe, SetRpath(long_rpath(fx)))
    edit(exe, AddNeeded("libver.so.1"))
    grown = exe.stat().st_size
    edit(exe, SetRpath(rpath))
    assert is_grown(exe) and exe.stat().st_size == grown > size
    assert read_facts(str(exe)).needed == ("libans.so.1", "libc.so.6", "libver.so.1")
    valid_program(exe)


def test_grown_library_given_another_string_of_the_original_table(fx: Fixtures, tmp_path: Path) -> None:
    """A soname that the original table holds (as a symbol name): un-grown, pointing at that string."""
    lib = _copy_lib(fx, "libans.so.1", tmp_path)
    original = lib.read_bytes()
    edit(lib, SetSoname("x" * 300))
    edit(lib, SetSoname("answer"))
    assert not is_grown(lib) and len(lib.read_bytes()) == len(original)
    assert read_facts(str(lib)).soname == "answer"
    check_elf(lib)
    ldso_verify(lib, 2)
    assert run(fx.path("dlopen"), lib, "answer") == "answer=42\n"


def test_32_bit_program(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    if not has_gcc_m32(tmp_path):
        pytest.skip("no gcc -m32 (gcc-multilib)")
    fx = shared_fixtures(tmp_path_factory, m32=True)
    exe = fx.copy("pie", tmp_path)
    original = exe.read_bytes()
    rpath = rpath_of(exe)
    edit(exe, SetRpath(long_rpath(fx)))
    assert is_grown(exe)
    edit(exe, SetRpath(rpath))
    assert exe.read_bytes() == original


def _copy_lib(fx: Fixtures, name: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    shutil.copy2(fx.libdir / name, target)
    return target


def _system_elf_files() -> list[Path]:
    out = []
    for d in (Path("/usr/bin"), Path("/usr/lib/x86_64-linux-gnu")):
        for f in sorted(d.iterdir()) if d.is_dir() else []:
            if f.is_file() and not f.is_symlink() and f.stat().st_size < 30 << 20:
                with open(f, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(f)
    return out


@pytest.mark.slow
def test_every_system_file_grown_and_set_back(tmp_path: Path) -> None:
    """Each dynamic file comes back byte for byte, or (a string table ending in NULs before
    alignment padding: its size is ambiguous) with only DT_STRSZ and the .dynstr size differing."""
    exact = inexact = 0
    for path in _system_elf_files():
        f = tmp_path / "f"
        shutil.copyfile(path, f)
        facts = read_facts(str(f))
        if not facts.needed and facts.interpreter is None:
            continue
        original = f.read_bytes()
        old = facts.rpath if facts.rpath is not None else facts.runpath
        grow: list[Edit] = [SetRpath("/x" * 300)]
        back: list[Edit] = [SetRpath(old) if old is not None else RemoveRpath()]
        if facts.interpreter is not None:
            grow.append(SetInterpreter("/" * 100 + facts.interpreter))
            back.append(SetInterpreter(facts.interpreter))
        edit(f, *grow)
        edit(f, *back)
        if f.read_bytes() == original:
            exact += 1
            continue
        inexact += 1
        assert len(f.read_bytes()) == len(original) and not is_grown(f), path
        before, after = sh("readelf", "-lSdW", path).splitlines(), sh("readelf", "-lSdW", f).splitlines()
        changed = {a for a, b in zip(before, after, strict=True) if a != b}
        assert all("(STRSZ)" in line or " .dynstr " in line for line in changed), (path, changed)
        check_elf(f, baseline=path)
    assert exact > 10 * inexact
