"""`rewrite-prefix` over a relocated tree: every ELF file's interpreter, rpath and NEEDED names move."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import LDSO, Fixtures, check_elf, dynsyms, gcc, run, shared_fixtures

from storekit.elf import SetInterpreter, SetRpath
from storekit.elf.fs import edit_file, read_facts
from storekit.elf.tree import rewrite_prefix

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def make_tree(fx: Fixtures, prefix: Path) -> None:
    """A small installed tree whose programs name `prefix` in their interpreter and rpath."""
    for d in ("bin", "lib", "ld", "share"):
        (prefix / d).mkdir(parents=True)
    for lib in ("libans.so.1", "libver.so.1"):
        shutil.copy2(fx.libdir / lib, prefix / "lib" / lib)
    shutil.copy2(os.path.realpath(LDSO), prefix / "ld" / "ld-linux-x86-64.so.2")
    for name in ("pie", "nopie", "weak"):
        exe = fx.copy(name, prefix / "bin")
        edit_file(str(exe), [SetRpath(f"{prefix}/lib"), SetInterpreter(f"{prefix}/ld/ld-linux-x86-64.so.2")])
    # An rpath whose last entry ends in "answer": tail-merged with the symbol `answer`.
    gcc(
        prefix / "bin" / "aliased",
        fx.path("main.c"),
        fx.libdir / "libans.so.1",
        f"-Wl,-rpath,{prefix}/lib:{prefix}/answer",
    )
    shutil.copy2(fx.path("static"), prefix / "bin" / "static")
    (prefix / "share" / "readme.txt").write_text(f"installed in {prefix}\n")
    (prefix / "bin" / "script").write_text(f"#!/bin/sh\nexec {prefix}/bin/pie\n")
    (prefix / "bin" / "link").symlink_to("pie")
    foreign = prefix / "bin" / "foreign"
    data = bytearray((prefix / "bin" / "pie").read_bytes())
    data[62:64] = struct.pack("<H", 999)  # e_shstrndx out of range: refused, not touched
    foreign.write_bytes(data)


ELF_CHANGED = {"bin/pie", "bin/nopie", "bin/weak", "bin/aliased"}


@pytest.mark.parametrize("new_name", ["new-prefix", "np", "a-much-longer-new-prefix-directory"])
def test_relocated_tree_runs(fx: Fixtures, tmp_path: Path, new_name: str) -> None:
    old, new = tmp_path / "old-prefix", tmp_path / new_name
    make_tree(fx, old)
    shutil.copytree(old, new, symlinks=True)
    shutil.rmtree(old)
    inodes = {p: p.stat().st_ino for p in new.rglob("*") if p.is_file() and not p.is_symlink()}
    foreign = (new / "bin" / "foreign").read_bytes()
    report = rewrite_prefix([str(new)], str(old), str(new))
    assert {os.path.relpath(p, new) for p in report.changed} == ELF_CHANGED
    assert report.unchanged == 4  # two libraries, the static program... and the loader itself
    assert report.not_elf == 2
    assert [(os.path.relpath(p, new), why.split(" is not")[0]) for p, why in report.refused] == [
        ("bin/foreign", "inconsistent ELF headers: e_shstrndx 999")
    ]
    assert (new / "bin" / "foreign").read_bytes() == foreign
    assert (new / "share" / "readme.txt").read_text() == f"installed in {old}\n"
    for name in ("pie", "nopie", "weak"):
        exe = new / "bin" / name
        facts = read_facts(str(exe))
        assert facts.interpreter == f"{new}/ld/ld-linux-x86-64.so.2"
        assert (facts.runpath or facts.rpath) == f"{new}/lib"
        check_elf(exe)
        assert run(exe).startswith("answer 42")
    aliased = new / "bin" / "aliased"
    assert read_facts(str(aliased)).runpath == f"{new}/lib:{new}/answer"
    assert run(aliased) == "answer 42\n"
    assert "answer" in dynsyms(aliased)
    if len(new_name) == len("old-prefix"):  # same length: written in place, no file replaced
        for rel in ELF_CHANGED:
            assert (new / rel).stat().st_ino == inodes[new / rel]


def test_second_run_changes_nothing(fx: Fixtures, tmp_path: Path) -> None:
    tree = tmp_path / "p"
    make_tree(fx, tree)
    rewrite_prefix([str(tree)], str(tree), "/elsewhere/prefix/that/is/longer")
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}
    report = rewrite_prefix([str(tree)], str(tree), "/elsewhere")
    assert report.changed == ()
    assert {p: p.read_bytes() for p in before} == before


def test_cli_summary(fx: Fixtures, tmp_path: Path) -> None:
    old, new = tmp_path / "old-prefix", tmp_path / "new-prefix"
    make_tree(fx, old)
    shutil.copytree(old, new, symlinks=True)
    argv = [
        sys.executable,
        "-m",
        "storekit",
        "elf",
        "rewrite-prefix",
        "--from",
        str(old),
        "--to",
        str(new),
        str(new),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1  # one file refused
    lines = proc.stdout.splitlines()
    assert lines[0] == "4 changed, 4 unchanged, 2 not ELF, 1 refused"
    assert lines[1].startswith(f"refused: {new}/bin/foreign: inconsistent ELF headers: e_shstrndx 999 is not")
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True, cwd=ROOT)
    assert '"changed": []' in proc.stdout and '"unchanged": 8' in proc.stdout
