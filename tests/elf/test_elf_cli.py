"""`storekit elf …` commands end to end, in process through typer's runner (the `elf` group alone)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, check_elf, run, shared_fixtures
from typer.testing import CliRunner

from storekit.cli.elf import app
from storekit.elf.fs import read_facts


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def cli(*args: str | Path) -> str:
    result = CliRunner().invoke(app, [*map(str, args)])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_rpath_commands(fx: Fixtures, tmp_path: Path) -> None:
    a, b = fx.copy("pie", tmp_path / "a"), fx.copy("nopie", tmp_path / "b")
    cli("set-rpath", "/nonexistent", a, b)
    assert read_facts(str(a)).runpath == "/nonexistent" and read_facts(str(b)).rpath == "/nonexistent"
    cli("add-rpath", str(fx.libdir), a, b)
    for f in (a, b):
        assert run(f) == "answer 42\n"
    cli("set-rpath", "--force-rpath", "/x", a)
    assert (read_facts(str(a)).rpath, read_facts(str(a)).runpath) == ("/x", None)
    cli("set-rpath", "--force-runpath", "/y", a)
    assert (read_facts(str(a)).rpath, read_facts(str(a)).runpath) == (None, "/y")
    cli("remove-rpath", a)
    assert (read_facts(str(a)).rpath, read_facts(str(a)).runpath) == (None, None)


def test_shrink_rpath(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    cli("set-rpath", f"/nonexistent:{fx.libdir}:$ORIGIN/lib:/usr/lib/x86_64-linux-gnu:{fx.root}", exe)
    cli("shrink-rpath", exe)
    assert read_facts(str(exe)).runpath == f"{fx.libdir}:$ORIGIN/lib:/usr/lib/x86_64-linux-gnu"
    cli("shrink-rpath", "--allowed-prefixes", "/usr", exe)
    assert read_facts(str(exe)).runpath == "$ORIGIN/lib:/usr/lib/x86_64-linux-gnu"
    check_elf(exe)


def test_needed_soname_interpreter_and_output(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("weak", tmp_path)
    out = tmp_path / "out"
    cli("add-needed", "libm.so.6", exe, "--output", out)
    assert "libm.so.6" in read_facts(str(out)).needed and "libm.so.6" not in read_facts(str(exe)).needed
    cli("remove-needed", "libver.so.1", out)
    lib = tmp_path / "renamed.so"
    shutil.copy2(fx.libdir / "libans.so.1", lib)
    cli("replace-needed", "libans.so.1", str(lib), out)
    cli("set-soname", "libweak.so", out)
    cli("set-interpreter", "/lib64/ld-linux-x86-64.so.2", out)
    facts = read_facts(str(out))
    assert facts.needed == (str(lib), "libc.so.6", "libm.so.6") and facts.soname == "libweak.so"
    assert run(out) == "answer 42 ver -1\n"
    assert cli("print", out).splitlines()[-1] == "soname: libweak.so"
