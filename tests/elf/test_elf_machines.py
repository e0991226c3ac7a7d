"""Every machine patchelf edits, with real files: built by clang for Debian's cross sysroots, patched by
`storekit patchelf`, checked by readelf, and run under qemu-user.

Debian 12's cross gcc packages conflict with gcc-multilib (which the 32-bit tests need), so C programs
are compiled by clang (`--target`) against the `libc6-dev-*-cross` sysroots and linked by the
`binutils-*` cross linkers. Alpha, SH-4 and IA-64 have no clang backend: their files are assembled and
linked by the cross binutils (no C library, so they are checked, not run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from storekit.elf.fs import read_facts

ROOT = Path(__file__).resolve().parent.parent.parent
MAIN_C = '#include <stdio.h>\nint answer(void);\nint main(void){printf("answer %d\\n", answer());return 0;}\n'
LIB_C = "int answer(void){return 42;}\n"
OLD_RPATH = "/nix/store/00000000000000000000000000000000-ans/lib"
LONG_DIR = "/nonexistent/" + "d" * 90


@dataclass(frozen=True)
class Machine:
    triple: str
    qemu: str | None  # qemu-user binary name, None: not run
    flags: tuple[str, ...] = ()


# Triples as Debian names its cross sysroots (/usr/<triple>).
RUN = {
    "aarch64": Machine("aarch64-linux-gnu", "qemu-aarch64-static"),
    "aarch64-64k": Machine("aarch64-linux-gnu", "qemu-aarch64-static", ("-Wl,-z,max-page-size=0x10000",)),
    "armhf": Machine("arm-linux-gnueabihf", "qemu-arm-static"),
    "ppc64el": Machine("powerpc64le-linux-gnu", "qemu-ppc64le-static"),
    "riscv64": Machine("riscv64-linux-gnu", "qemu-riscv64-static"),
    "s390x": Machine("s390x-linux-gnu", "qemu-s390x-static"),
    "mips": Machine("mips-linux-gnu", "qemu-mips-static"),
    "mipsel": Machine("mipsel-linux-gnu", "qemu-mipsel-static"),
    "sparc64": Machine("sparc64-linux-gnu", "qemu-sparc64-static"),
}
ASSEMBLED = {"alpha": "alpha-linux-gnu", "sh4": "sh4-linux-gnu", "ia64": "ia64-linux-gnu"}


def sh(*argv: str | Path) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc.stdout


def patchelf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "storekit", "patchelf", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)


def check_file(path: Path, readelf: str = "readelf") -> None:
    """`readelf -a` prints no warning; every PT_LOAD keeps (p_vaddr - p_offset) % p_align == 0."""
    proc = subprocess.run([readelf, "-a", "-W", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", f"{readelf} -a {path}: {proc.stderr}"
    with open(path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_align"] > 1:
                assert (seg["p_vaddr"] - seg["p_offset"]) % seg["p_align"] == 0, f"{path}: LOAD misaligned"


def build_c(m: Machine, out: Path) -> Path:
    """libans.so and `main` linked against it with OLD_RPATH, or skip naming what is missing."""
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (Debian package clang)")
    if not Path(f"/usr/{m.triple}/lib").is_dir() or shutil.which(f"{m.triple}-ld") is None:
        pytest.skip(f"no {m.triple} sysroot and linker (Debian's libc6-dev-*-cross, binutils-{m.triple})")
    out.mkdir()
    (out / "main.c").write_text(MAIN_C)
    (out / "lib.c").write_text(LIB_C)
    cc = ["clang", f"--target={m.triple}", *m.flags]
    sh(*cc, "-shared", "-fPIC", "-Wl,-soname,libans.so", "-o", out / "libans.so", out / "lib.c")
    sh(*cc, "-o", out / "main", out / "main.c", out / "libans.so", f"-Wl,-rpath,{OLD_RPATH}")
    return out / "main"


def run_qemu(m: Machine, exe: Path) -> str:
    assert m.qemu is not None
    if shutil.which(m.qemu) is None:
        pytest.skip(f"{m.qemu} is not installed (Debian package qemu-user-static)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    proc = subprocess.run(
        [m.qemu, "-L", f"/usr/{m.triple}", str(exe)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and proc.stderr == "", f"{exe}: {proc.returncode} {proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("name", list(RUN))
def test_grown_program_runs(tmp_path: Path, name: str) -> None:
    """A longer rpath and interpreter (both grow the file): readelf-clean, aligned, and it runs."""
    m = RUN[name]
    exe = build_c(m, tmp_path / name)
    with pytest.raises(AssertionError):
        run_qemu(m, exe)  # libans.so is not found through OLD_RPATH
    interp = read_facts(str(exe)).interpreter
    assert interp is not None
    # the same loader through its host path: qemu tries it under -L first, then as it is
    longer = f"/usr/{m.triple}{interp}"
    rpath = f"{exe.parent}:{LONG_DIR}"
    proc = patchelf("--set-interpreter", longer, "--set-rpath", rpath, exe)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert patchelf("--print-rpath", "--print-interpreter", exe).stdout == f"{longer}\n{rpath}\n"
    assert OLD_RPATH.encode() not in exe.read_bytes()
    check_file(exe)
    assert run_qemu(m, exe) == "answer 42\n"


@pytest.mark.parametrize("name", ["mips", "mipsel"])
def test_mips_dynamic_section_moves_out_of_its_read_only_segment(tmp_path: Path, name: str) -> None:
    """MIPS links .dynamic into the read-only text segment (patchelf #146's case). Twenty more
    DT_NEEDED entries do not fit: it moves to the writable segment, and DT_MIPS_RLD_MAP_REL (relative to
    its own entry) still points at .rld_map. patchelf 0.19 fails here ("value truncation")."""
    m = RUN[name]
    exe = build_c(m, tmp_path / name)
    before = sh("readelf", "-lW", exe)
    assert "DYNAMIC" in before
    libs = []
    for i in range(20):
        (exe.parent / f"libdummy{i}.so").symlink_to("libans.so")
        libs += ["--add-needed", f"libdummy{i}.so"]
    proc = patchelf(*libs, "--set-rpath", exe.parent, exe)
    assert proc.returncode == 0, proc.stderr
    check_file(exe)
    _check_rld_map_rel(exe)
    assert run_qemu(m, exe) == "answer 42\n"


def _check_rld_map_rel(path: Path) -> None:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        rld = elf.get_section_by_name(".rld_map")
        dyn = next(s for s in elf.iter_segments() if s["p_type"] == "PT_DYNAMIC")
        entsize = 8 if elf.elfclass == 32 else 16
        tags = list(dyn.iter_tags())
        found = [i for i, t in enumerate(tags) if t["d_tag"] == "DT_MIPS_RLD_MAP_REL"]
        assert rld is not None and found
        i = found[0]
        target = (dyn["p_vaddr"] + i * entsize + tags[i]["d_val"]) % (1 << elf.elfclass)
        assert target == rld["sh_addr"]


ASM_LIB = ".data\n.globl answer\nanswer: .long 42\n"
ASM_MAIN = ".text\n.globl _start\n_start:\n.data\nvalue: .long 1\n"


@pytest.mark.parametrize("name", list(ASSEMBLED))
def test_assembled_machine_is_patched(tmp_path: Path, name: str) -> None:
    triple = ASSEMBLED[name]
    tools = {t: f"{triple}-{t}" for t in ("as", "ld", "readelf")}
    if any(shutil.which(t) is None for t in tools.values()):
        pytest.skip(f"binutils-{triple} is not installed")
    for part, text in (("lib", ASM_LIB), ("main", ASM_MAIN)):
        (tmp_path / f"{part}.s").write_text(text)
        sh(tools["as"], "-o", tmp_path / f"{part}.o", tmp_path / f"{part}.s")
    lib, exe = tmp_path / "libans.so", tmp_path / "main"
    sh(tools["ld"], "-shared", "-soname", "libans.so", "-o", lib, tmp_path / "lib.o")
    sh(tools["ld"], "-o", exe, tmp_path / "main.o", lib, "-dynamic-linker", "/lib/ld.so", "-rpath", OLD_RPATH)
    longer = "/opt/store/" + "l" * 60 + "/lib/ld-linux.so.2"
    rpath = f"{LONG_DIR}:/lib"
    proc = patchelf("--set-interpreter", longer, "--set-rpath", rpath, "--add-needed", "libm.so", exe)
    assert proc.returncode == 0, proc.stderr
    facts = read_facts(str(exe))
    assert (facts.interpreter, facts.runpath) == (longer, f"{LONG_DIR}:/lib")
    assert facts.needed == ("libm.so", "libans.so")
    check_file(exe, tools["readelf"])
    proc = patchelf("--set-soname", "libanswer.so.1", lib)
    assert proc.returncode == 0 and read_facts(str(lib)).soname == "libanswer.so.1"
    check_file(lib, tools["readelf"])


@pytest.mark.parametrize("name", ["aarch64", "s390x", "mips"])
def test_tail_merged_rpath(tmp_path: Path, name: str) -> None:
    """patchelf #162: `-rpath=answer` shares its bytes with the symbol name `answer`; changing the
    rpath (longer, then shorter) must leave the symbol's name whole."""
    m = RUN[name]
    exe = build_c(m, tmp_path / name)
    sh(f"{m.triple}-ld", "--version")  # the cross linker is there (build_c checked)
    cc = ["clang", f"--target={m.triple}"]
    sh(*cc, "-o", exe, exe.parent / "main.c", exe.parent / "libans.so", "-Wl,-rpath=answer")
    for rpath in (f"{exe.parent}:{LONG_DIR}", str(exe.parent)):
        proc = patchelf("--set-rpath", rpath, exe)
        assert proc.returncode == 0, proc.stderr
        with open(exe, "rb") as f:
            dynsym = ELFFile(f).get_section_by_name(".dynsym")
            assert dynsym is not None and "answer" in {s.name for s in dynsym.iter_symbols()}
        check_file(exe)
        assert run_qemu(m, exe) == "answer 42\n"


@pytest.mark.parametrize("name", list(RUN))
def test_resolution_cache_note_on_every_machine(tmp_path: Path, name: str) -> None:
    """The note joins the machine's PT_NOTE (in its byte order), readelf reads it, and the program runs.
    MIPS links its text segment up to the next one: no padding to put the note in, and storekit adds
    no program headers, so it refuses, saying why, and changes nothing."""
    m = RUN[name]
    exe = build_c(m, tmp_path / name)
    patchelf("--set-rpath", str(exe.parent), exe)
    before = exe.read_bytes()
    proc = patchelf("--build-resolution-cache", exe)
    if name in ("mips", "mipsel"):
        assert proc.returncode == 1 and "free bytes after a loaded segment" in proc.stderr
        assert exe.read_bytes() == before
        return
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    notes = sh("readelf", "-nW", exe)
    assert "NixOS" in notes and "0x63a86cb6" in notes
    dump = subprocess.run(["readelf", "-p", ".note.nixos.ldcache", str(exe)], capture_output=True, check=True)
    assert f"={exe.parent}/libans.so".encode() in dump.stdout
    check_file(exe)
    assert run_qemu(m, exe) == "answer 42\n"
