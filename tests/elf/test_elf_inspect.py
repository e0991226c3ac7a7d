"""Reading the dynamic linking facts: checked against pyelftools and readelf on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, pyelftools_facts, sh, shared_fixtures

from storekit.elf import parse
from storekit.elf.fs import read_facts
from storekit.elf.inspect import is_elf

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def system_elf_files(limit: int) -> list[str]:
    """A stable sample of the dynamically linked files of this system."""
    found = []
    for d in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    if is_elf(f.read(4)):
                        found.append(p)
    return found[:: max(1, len(found) // limit)]


def ours(path: str) -> dict[str, object]:
    facts = read_facts(path).to_json()
    return {k: facts[k] for k in ("interpreter", "rpath", "runpath", "needed", "soname")}


@pytest.mark.parametrize("path", system_elf_files(120))
def test_system_files_agree_with_pyelftools(path: str) -> None:
    assert ours(path) == pyelftools_facts(Path(path))


@pytest.mark.parametrize(
    "name", ["pie", "pie-rpath", "nopie", "weak", "shared-rpath", "static", "lib/libver.so.1"]
)
def test_fixtures_agree_with_pyelftools_and_readelf(fx: Fixtures, name: str) -> None:
    path = fx.path(name)
    assert ours(str(path)) == pyelftools_facts(path)
    facts = read_facts(str(path))
    header = dict(line.strip().split(":", 1) for line in sh("readelf", "-h", path).splitlines()[1:])
    assert header["Class"].strip() == f"ELF{facts.elf_class}"
    assert header["Data"].strip() == "2's complement, little endian"
    assert header["Type"].split()[0] == facts.type


def test_parse_works_on_bytes(fx: Fixtures) -> None:
    data = fx.path("pie").read_bytes()
    elf = parse(data, "pie")
    assert elf.facts() == read_facts(str(fx.path("pie")))
    assert elf.facts().needed == ("libans.so.1", "libc.so.6")


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_print(fx: Fixtures) -> None:
    proc = storekit("elf", "print", str(fx.path("pie-rpath")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "class: ELF64",
        "byte_order: little",
        "machine: x86-64",
        "type: DYN",
        "interpreter: /lib64/ld-linux-x86-64.so.2",
        f"rpath: {fx.libdir}",
        "needed: libans.so.1",
        "needed: libc.so.6",
    ]
    proc = storekit("elf", "print", "--json", str(fx.libdir / "libans.so.1"))
    assert json.loads(proc.stdout) == {
        "class": "ELF64",
        "byte_order": "little",
        "machine": "x86-64",
        "type": "DYN",
        "interpreter": None,
        "rpath": None,
        "runpath": None,
        "needed": [],
        "soname": "libans.so.1",
    }


def test_cli_print_not_elf(tmp_path: Path) -> None:
    f = tmp_path / "text"
    f.write_text("hello\n")
    proc = storekit("elf", "print", str(f))
    assert proc.returncode == 1 and proc.stderr == f"error: {f}: not an ELF file\n"
