"""Real ELF fixtures for the ELF editor's tests: C sources compiled by gcc in a temp dir, and checks.

Every patched file is judged by independent tools: `readelf -hlSdnW` must print nothing on stderr,
pyelftools must find every DT_* pointer on a section of the right type, every PT_LOAD must keep
`p_offset % p_align == p_vaddr % p_align`, headers that must be mapped must be inside a PT_LOAD, and
programs run under `LD_BIND_NOW=1 LD_WARN=1` with an empty stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

LDSO = "/lib64/ld-linux-x86-64.so.2"
LDSO32 = "/lib/ld-linux.so.2"

LIB_C = r"""
int answer(void) { return 42; }
const char *who(void) { return "libans"; }
"""
MAIN_C = r"""
#include <stdio.h>
int answer(void);
int main(void) { printf("answer %d\n", answer()); return 0; }
"""
# A weak, versioned reference to libver: the program runs without libver once its NEEDED (and its
# VERNEED entry) are removed.
WEAK_MAIN_C = r"""
#include <stdio.h>
int answer(void);
extern int ver_answer(void) __attribute__((weak));
int main(void) { printf("answer %d ver %d\n", answer(), ver_answer ? ver_answer() : -1); return 0; }
"""
VER_C = r"""
int ver_answer(void) { return 7; }
int ver_hidden(void) { return 8; }
"""
VER_MAP = "VERS_1.0 { global: ver_answer; local: *; };\n"
DLOPEN_C = r"""
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  int (*f)(void) = (int (*)(void)) dlsym(h, argv[2]);
  if (!f) { fprintf(stderr, "%s\n", dlerror()); return 1; }
  printf("%s=%d\n", argv[2], f());
  return 0;
}
"""


def sh(*argv: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, f"{argv} failed: {proc.stderr}"
    return proc.stdout


def gcc(out: Path, *args: str | Path) -> Path:
    sh("gcc", "-o", out, *args)
    return out


def has_gcc_m32(tmp: Path) -> bool:
    src = tmp / "probe32.c"
    src.write_text("int main(void){return 0;}\n")
    proc = subprocess.run(["gcc", "-m32", "-o", str(tmp / "probe32"), str(src)], capture_output=True)
    return proc.returncode == 0 and os.path.exists(LDSO32)


@dataclass(frozen=True)
class Fixtures:
    """Compiled once per session; tests copy what they patch (see `copy`)."""

    root: Path
    libdir: Path  # holds libans.so.1 and libver.so.1

    def path(self, name: str) -> Path:
        return self.root / name

    def copy(self, name: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / name
        shutil.copy2(self.root / name, target)
        return target


def build(root: Path, m32: bool = False) -> Fixtures:
    """libans.so.1 (soname), libver.so.1 (version script), and programs linked against them."""
    flags = ["-m32"] if m32 else []
    libdir = root / "lib"
    libdir.mkdir(parents=True)
    for name, text in [("lib.c", LIB_C), ("main.c", MAIN_C), ("weak.c", WEAK_MAIN_C), ("ver.c", VER_C)]:
        (root / name).write_text(text)
    (root / "dlopen.c").write_text(DLOPEN_C)
    (root / "ver.map").write_text(VER_MAP)
    gcc(libdir / "libans.so.1", *flags, "-shared", "-fPIC", "-Wl,-soname,libans.so.1", root / "lib.c")
    ver = ["-shared", "-fPIC", "-Wl,-soname,libver.so.1", f"-Wl,--version-script={root / 'ver.map'}"]
    gcc(libdir / "libver.so.1", *flags, *ver, root / "ver.c")
    libs = [libdir / "libans.so.1"]
    rpath = f"-Wl,-rpath,{libdir}"
    gcc(root / "pie", *flags, root / "main.c", *libs, rpath, "-Wl,--enable-new-dtags")
    gcc(root / "pie-rpath", *flags, root / "main.c", *libs, rpath, "-Wl,--disable-new-dtags")
    gcc(root / "nopie", *flags, "-no-pie", root / "main.c", *libs, rpath, "-Wl,--disable-new-dtags")
    gcc(root / "nopie-runpath", *flags, "-no-pie", root / "main.c", *libs, rpath, "-Wl,--enable-new-dtags")
    big = ["-Wl,-z,max-page-size=0x200000"]
    gcc(root / "pie-2m", *flags, root / "main.c", *libs, rpath, *big)
    gcc(root / "nopie-2m", *flags, "-no-pie", root / "main.c", *libs, rpath, *big)
    weak = [root / "weak.c", *libs, "-Wl,--no-as-needed", libdir / "libver.so.1", rpath]
    gcc(root / "weak", *flags, *weak)
    gcc(root / "dlopen", *flags, root / "dlopen.c", "-ldl")
    # The rpath "answer" is tail-merged with the symbol name `answer` in .dynstr (patchelf #162).
    gcc(root / "shared-rpath", *flags, root / "main.c", *libs, "-Wl,-rpath=answer")
    if not m32:
        gcc(root / "static", "-static", root / "main.c", root / "lib.c")
    return Fixtures(root, libdir)


_BUILT: dict[bool, Fixtures] = {}


def shared_fixtures(factory: pytest.TempPathFactory, m32: bool = False) -> Fixtures:
    """The fixtures, compiled once per test process (every test module reuses them)."""
    if m32 not in _BUILT:
        _BUILT[m32] = build(factory.mktemp("elf32" if m32 else "elf64"), m32)
    return _BUILT[m32]


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a program strictly: eager binding, warnings on, exit 0 and nothing on stderr."""
    full_env = {**os.environ, "LD_BIND_NOW": "1", "LD_WARN": "1", **(env or {})}
    full_env.pop("LD_LIBRARY_PATH", None)
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=full_env, cwd=cwd)
    assert proc.returncode == 0 and proc.stderr == "", f"{argv}: rc={proc.returncode} stderr={proc.stderr!r}"
    return proc.stdout


def ldso_verify(path: Path, expect: int, ldso: str = LDSO) -> None:
    """`ld.so --verify`: 0 for a program, 2 for a library."""
    proc = subprocess.run([ldso, "--verify", str(path.absolute())], capture_output=True)
    assert proc.returncode == expect, f"ld.so --verify {path}: {proc.returncode} {proc.stderr!r}"


_DT_SECTION = {
    "DT_STRTAB": {"SHT_STRTAB"},
    "DT_SYMTAB": {"SHT_DYNSYM"},
    "DT_HASH": {"SHT_HASH"},
    "DT_GNU_HASH": {"SHT_GNU_HASH"},
    "DT_VERSYM": {"SHT_GNU_versym"},
    "DT_VERNEED": {"SHT_GNU_verneed"},
    "DT_VERDEF": {"SHT_GNU_verdef"},
    "DT_RELA": {"SHT_RELA"},
    "DT_REL": {"SHT_REL"},
    "DT_JMPREL": {"SHT_RELA", "SHT_REL"},
    "DT_RELR": {"SHT_RELR", 19},
    "DT_INIT_ARRAY": {"SHT_INIT_ARRAY"},
    "DT_FINI_ARRAY": {"SHT_FINI_ARRAY"},
}


def check_elf(path: Path, readelf: str = "readelf", baseline: Path | None = None) -> None:
    """The structural checks every patched file must pass (see the module docstring).

    readelf must print nothing on stderr, or, given the unpatched `baseline`, what it prints for that
    (a few Debian files already draw warnings, such as gaps in annobin build notes).
    """
    proc = subprocess.run([readelf, "-hlSdnW", str(path)], capture_output=True, text=True)
    expected = ""
    if baseline is not None:
        expected = subprocess.run([readelf, "-hlSdnW", str(baseline)], capture_output=True, text=True).stderr
    assert proc.returncode == 0 and proc.stderr == expected, f"readelf {path}: {proc.stderr}"
    with open(path, "rb") as f:
        elf = ELFFile(f)
        segments = list(elf.iter_segments())
        loads = [s for s in segments if s["p_type"] == "PT_LOAD"]
        for s in loads:
            if s["p_align"] > 1:
                assert s["p_offset"] % s["p_align"] == s["p_vaddr"] % s["p_align"], f"{path}: LOAD misaligned"
        assert [s["p_vaddr"] for s in loads] == sorted(s["p_vaddr"] for s in loads), "LOADs out of order"
        types = [s["p_type"] for s in segments]
        first_load = types.index("PT_LOAD")
        assert "PT_PHDR" not in types[first_load:], f"{path}: PT_PHDR after a PT_LOAD"
        assert "PT_INTERP" not in types[first_load:], f"{path}: PT_INTERP after a PT_LOAD"
        for s in segments:
            if s["p_type"] in ("PT_PHDR", "PT_INTERP", "PT_DYNAMIC", "PT_NOTE"):
                assert any(_covers(load, s) for load in loads), f"{path}: {s['p_type']} outside every LOAD"
        sections = list(elf.iter_sections())
        for sec in sections:
            if sec["sh_flags"] & 2 and sec["sh_type"] != "SHT_NOBITS" and sec["sh_size"]:
                assert any(_holds_section(load, sec) for load in loads), f"{path}: {sec.name} not mapped"
        dynamic = elf.get_section_by_name(".dynamic")
        if dynamic is None:
            return
        by_addr = {(s["sh_addr"], s["sh_type"]) for s in sections}
        tags = {t.entry.d_tag: t.entry.d_val for t in dynamic.iter_tags()}
        for tag, kinds in _DT_SECTION.items():
            if tag in tags:
                assert any((tags[tag], k) in by_addr for k in kinds), f"{path}: {tag} points at no {kinds}"
        dynstr = next(
            s for s in sections if s["sh_addr"] == tags["DT_STRTAB"] and s["sh_type"] == "SHT_STRTAB"
        )
        assert dynstr["sh_size"] == tags["DT_STRSZ"], f"{path}: DT_STRSZ != .dynstr size"
        seg = next(s for s in segments if s["p_type"] == "PT_DYNAMIC")
        assert seg["p_vaddr"] == dynamic["sh_addr"] and seg["p_offset"] == dynamic["sh_offset"]


def _covers(load: object, seg: object) -> bool:
    lo, so = load.header, seg.header  # type: ignore[attr-defined]
    return bool(
        lo.p_vaddr <= so.p_vaddr
        and so.p_vaddr + so.p_memsz <= lo.p_vaddr + lo.p_memsz
        and lo.p_offset <= so.p_offset
        and so.p_offset + so.p_filesz <= lo.p_offset + lo.p_filesz
        and so.p_offset - lo.p_offset == so.p_vaddr - lo.p_vaddr
    )


def _holds_section(load: object, sec: object) -> bool:
    lo, sh = load.header, sec.header  # type: ignore[attr-defined]
    return bool(
        lo.p_offset <= sh.sh_offset
        and sh.sh_offset + sh.sh_size <= lo.p_offset + lo.p_filesz
        and sh.sh_offset - lo.p_offset == sh.sh_addr - lo.p_vaddr
    )


def pyelftools_facts(path: Path) -> dict[str, object]:
    """The facts `storekit elf print --json` shows, read independently by pyelftools."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        interp = next((s.get_interp_name() for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"), None)
        dynamic = elf.get_section_by_name(".dynamic")
        tags = list(dynamic.iter_tags()) if dynamic is not None else []

        def first(kind: str, attr: str) -> str | None:
            return next((getattr(t, attr) for t in tags if t.entry.d_tag == kind), None)

        return {
            "interpreter": interp,
            "rpath": first("DT_RPATH", "rpath"),
            "runpath": first("DT_RUNPATH", "runpath"),
            "needed": [t.needed for t in tags if t.entry.d_tag == "DT_NEEDED"],
            "soname": first("DT_SONAME", "soname"),
        }


def load_count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD")


def dynsyms(path: Path) -> str:
    """`nm -D` output: must not change when only rpath/interpreter/needed change."""
    return sh("nm", "-D", path)


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
