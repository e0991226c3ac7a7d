"""Other classes and byte orders: 32-bit x86 (run for real) and big-endian PowerPC64 (checked by readelf)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elf_fixtures import (
    LDSO32,
    Fixtures,
    check_elf,
    has_gcc_m32,
    ldso_verify,
    load_count,
    run,
    sh,
    shared_fixtures,
)

from storekit.elf import SetInterpreter, SetRpath, SetSoname
from storekit.elf.fs import edit_file, read_facts

PPC = "powerpc64-linux-gnu-"
PPC_LIB = """
	.section ".opd","aw"
	.align 3
	.globl foo
	.type foo,@function
foo:
	.quad .L.foo,.TOC.@tocbase,0
	.text
.L.foo:
	li 3,42
	blr
	.size foo, .-.L.foo
	.data
	.globl counter
	.type counter,@object
	.size counter,4
counter: .long 1
"""
PPC_MAIN = """
	.section ".opd","aw"
	.align 3
	.globl _start
	.type _start,@function
_start:
	.quad .L._start,.TOC.@tocbase,0
	.text
.L._start:
	bl foo
	nop
	li 0,1
	sc
	.data
	.align 3
ptr: .quad counter
	.bss
	.align 3
buf: .space 4096
"""


@pytest.fixture(scope="module")
def fx32(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    if not has_gcc_m32(tmp_path_factory.mktemp("probe")):
        pytest.skip("gcc -m32 does not work here (apt-get install gcc-multilib)")
    return shared_fixtures(tmp_path_factory, m32=True)


def long_dir(base: Path) -> Path:
    d = base.joinpath(*[f"directory-number-{i}-of-a-long-prefix" for i in range(8)])
    d.mkdir(parents=True)
    return d


@pytest.mark.parametrize("name", ["pie", "nopie", "pie-2m", "nopie-2m", "weak"])
def test_i386_grown_rpath_and_moved_interpreter(fx32: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx32.copy(name, tmp_path)
    expected = run(exe)
    libdir = long_dir(tmp_path)
    for lib in fx32.libdir.iterdir():
        shutil.copy2(lib, libdir)
    ldso = long_dir(tmp_path / "ld") / "ld-linux.so.2"
    shutil.copy2(os.path.realpath(LDSO32), ldso)
    edit_file(str(exe), [SetRpath(f"/nonexistent:{libdir}"), SetInterpreter(str(ldso))])
    facts = read_facts(str(exe))
    assert facts.elf_class == 32 and facts.machine == "i386" and facts.interpreter == str(ldso)
    check_elf(exe)
    ldso_verify(exe, 0, LDSO32)
    assert run(exe) == expected
    assert load_count(exe) == load_count(fx32.path(name))
    sh("strip", exe)
    assert run(exe) == expected


def test_i386_library_grown_then_dlopened(fx32: Fixtures, tmp_path: Path) -> None:
    lib = tmp_path / "libver.so.1"
    shutil.copy2(fx32.libdir / "libver.so.1", lib)
    edit_file(
        str(lib), [SetSoname("libver-longer-name-" + "x" * 80 + ".so.1"), SetRpath(str(long_dir(tmp_path)))]
    )
    check_elf(lib)
    ldso_verify(lib, 2, LDSO32)
    assert run(fx32.path("dlopen"), lib, "ver_answer") == "ver_answer=7\n"


@pytest.fixture(scope="module")
def ppc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(PPC + "as") is None:
        pytest.skip("binutils-powerpc64-linux-gnu is not installed")
    d = tmp_path_factory.mktemp("ppc64")
    (d / "lib.s").write_text(PPC_LIB)
    (d / "main.s").write_text(PPC_MAIN)
    sh(PPC + "as", "-o", d / "lib.o", d / "lib.s")
    sh(PPC + "ld", "-shared", "-soname", "libfoo.so.1", "-o", d / "libfoo.so.1", d / "lib.o")
    sh(PPC + "as", "-o", d / "main.o", d / "main.s")
    link = [PPC + "ld", "-dynamic-linker", "/lib64/ld64.so.1", "-rpath", "/opt/x/lib", "-o", d / "prog"]
    subprocess.run(
        [str(a) for a in [*link, d / "main.o", d / "libfoo.so.1"]], check=True, capture_output=True
    )
    return d


@pytest.mark.parametrize("name", ["prog", "libfoo.so.1"])
def test_big_endian_ppc64_growth(ppc: Path, tmp_path: Path, name: str) -> None:
    """Big-endian ET_EXEC is what patchelf corrupts when growing (patchelf #663)."""
    f = tmp_path / name
    shutil.copy2(ppc / name, f)
    before = read_facts(str(f))
    assert before.byte_order == "big" and before.machine == "PowerPC64"
    rpath = "/opt/" + "long-directory-name/" * 12 + "lib"
    edits: list[object] = [SetRpath(rpath)]
    if name == "prog":
        edits.append(SetInterpreter("/opt/" + "x" * 60 + "/ld64.so.1"))
    edit_file(str(f), edits)  # type: ignore[arg-type]
    facts = read_facts(str(f))
    assert facts.runpath == rpath and facts.needed == before.needed
    check_elf(f, readelf=PPC + "readelf")
    assert load_count(f) == load_count(ppc / name)
    if name == "prog":
        assert facts.interpreter == "/opt/" + "x" * 60 + "/ld64.so.1"
        # The code and the function descriptors did not move.
        for section in (".text", ".opd"):
            assert sh(PPC + "readelf", "-x", section, f) == sh(PPC + "readelf", "-x", section, ppc / name)
    sh(PPC + "strip", f)
    check_elf(f, readelf=PPC + "readelf")
    assert read_facts(str(f)).runpath == rpath
