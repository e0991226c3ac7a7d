"""Every dynamic ELF file of this system, grown with a longer rpath: all must stay well-formed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elf_fixtures import LDSO, check_elf, run

from storekit.elf import SetRpath
from storekit.elf.fs import edit_file, open_elf, read_facts
from storekit.elf.tree import rewrite_prefix
from storekit.errors import ElfError

RPATH = "/opt/storekit-test/" + "long-component/" * 8 + "lib"


def dynamic_files() -> list[str]:
    found, seen = [], set()
    for top in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        for root, _, names in os.walk(top):
            for name in sorted(names):
                p = os.path.join(root, name)
                if os.path.islink(p) or not os.path.isfile(p) or os.stat(p).st_ino in seen:
                    continue
                seen.add(os.stat(p).st_ino)
                try:
                    with open_elf(p) as elf:
                        if elf.dynamic and elf.strtab_offset >= 0 and not elf.is_static_pie:
                            found.append(p)
                except ElfError:
                    continue
    return sorted(found)


@pytest.mark.slow
def test_every_system_file_grows_cleanly(tmp_path: Path) -> None:
    files = dynamic_files()
    assert len(files) > 500
    failures = []
    for i, src in enumerate(files):
        f = tmp_path / f"{i:05d}-{os.path.basename(src)}"
        shutil.copyfile(src, f)
        os.chmod(f, 0o755)
        try:
            edit_file(str(f), [SetRpath(RPATH)], atomic=i % 2 == 0)  # half grown in place
            assert read_facts(str(f)).runpath == RPATH or read_facts(str(f)).rpath == RPATH
            check_elf(f, baseline=Path(src))
            with open_elf(str(f)) as elf:
                program = elf.interpreter is not None and elf.header.type in (2, 3)
            code = subprocess.run([LDSO, "--verify", str(f)], capture_output=True).returncode
            assert code in ((0, 2) if program else (2,)), f"ld.so --verify: {code}"
        except (AssertionError, ElfError) as e:
            failures.append(f"{src}: {e}")
        finally:
            f.unlink()
    assert failures == []


@pytest.mark.slow
def test_grown_system_programs_still_run(tmp_path: Path) -> None:
    """A few everyday programs, grown and given a relocated copy of the loader."""
    ldso = tmp_path.joinpath(*["relocated-loader"] * 5) / "ld-linux-x86-64.so.2"
    ldso.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(LDSO), ldso)
    for name, args in [
        ("ls", ["/"]),
        ("python3", ["-c", "print(1)"]),
        ("git", ["--version"]),
        ("xz", ["--version"]),
    ]:
        src = shutil.which(name)
        if src is None or not _is_elf(src):
            continue  # missing, or a wrapper script (pyenv's shims come first on some PATHs)
        exe = tmp_path / name
        shutil.copy2(os.path.realpath(src), exe)
        expected = run(exe, *args)
        edit_file(str(exe), [SetRpath(RPATH)])
        report = rewrite_prefix([str(exe)], "/lib64", str(ldso.parent))
        assert report.changed == (str(exe),) or read_facts(str(exe)).interpreter != LDSO
        assert run(exe, *args) == expected


def _is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"
