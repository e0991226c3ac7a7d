"""Big real programs from Debian: grown, given a moved interpreter, run, stripped and run again."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elf_fixtures import LDSO, check_elf, dynsyms, ldso_verify, load_count, run, sh

from storekit.elf import AddNeeded, SetInterpreter, SetRpath
from storekit.elf.fs import edit_file, read_facts

PROGRAMS = ["/usr/bin/bash", "/usr/bin/perl", "/usr/bin/gcc"]


@pytest.mark.parametrize("program", PROGRAMS, ids=os.path.basename)
def test_debian_program(tmp_path: Path, program: str) -> None:
    if not os.path.exists(program):
        pytest.skip(f"{program} is not installed")
    exe = tmp_path / os.path.basename(program)
    shutil.copy2(os.path.realpath(program), exe)
    version = run(exe, "--version").splitlines()[0]
    ldso = tmp_path.joinpath(*["a-long-loader-directory"] * 6) / "ld-linux-x86-64.so.2"
    ldso.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(LDSO), ldso)
    rpath = ":".join(f"/nonexistent/{'x' * 40}/{i}" for i in range(6))
    result = edit_file(str(exe), [SetRpath(rpath), SetInterpreter(str(ldso)), AddNeeded("libm.so.6")])
    assert result.outcome == "rewritten"
    facts = read_facts(str(exe))
    assert (facts.runpath, facts.interpreter) == (rpath, str(ldso)) and "libm.so.6" in facts.needed
    check_elf(exe)
    ldso_verify(exe, 0)
    assert run(exe, "--version").splitlines()[0] == version
    assert load_count(exe) == load_count(Path(os.path.realpath(program)))
    assert dynsyms(exe) == dynsyms(Path(os.path.realpath(program)))
    sh("strip", exe)
    check_elf(exe)
    assert run(exe, "--version").splitlines()[0] == version
    os.unlink(ldso)
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(exe), "--version"], capture_output=True)
