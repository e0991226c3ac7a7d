"""Random sequences of edits keep every program runnable and every file well-formed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from elf_fixtures import LDSO, Fixtures, check_elf, run, shared_fixtures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storekit.elf import (
    AddNeeded,
    AddRpath,
    Edit,
    RemoveNeeded,
    RemoveRpath,
    ReplaceNeeded,
    SetInterpreter,
    SetRpath,
    SetSoname,
)
from storekit.elf.fs import edit_file, read_facts

_dirs = st.text(alphabet="abcdefghij-_/", min_size=1, max_size=120).map(lambda s: "/nonexistent/" + s)
_rpaths = st.lists(_dirs, min_size=1, max_size=4).map(":".join)
_force = st.sampled_from([None, "rpath", "runpath"])


def _edits(ldsos: list[str], libdir: str) -> st.SearchStrategy[Edit]:
    return st.one_of(
        st.builds(SetRpath, _rpaths, _force),
        st.builds(AddRpath, _rpaths, _force),
        st.just(RemoveRpath()),
        st.builds(SetInterpreter, st.sampled_from(ldsos)),
        st.builds(AddNeeded, st.sampled_from(["libm.so.6", "libver.so.1", "libans-alt.so.1"])),
        st.builds(RemoveNeeded, st.sampled_from(["libm.so.6", "libver.so.1", "libans-alt.so.1"])),
        st.builds(
            ReplaceNeeded,
            st.sampled_from(["libans.so.1", "libans-alt.so.1"]),
            st.sampled_from(["libans.so.1", "libans-alt.so.1"]),
        ),
        st.builds(SetSoname, st.text(alphabet="abcxyz.0123456789", min_size=1, max_size=90)),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fixtures, Path, list[str]]:
    fx = shared_fixtures(tmp_path_factory)
    base = tmp_path_factory.mktemp("world")
    libdir = base / "libs"
    libdir.mkdir()
    for lib in ("libans.so.1", "libver.so.1"):
        shutil.copy2(fx.libdir / lib, libdir / lib)
    shutil.copy2(fx.libdir / "libans.so.1", libdir / "libans-alt.so.1")
    long_ldso = base.joinpath(*["loader-dir"] * 8) / "ld.so"
    long_ldso.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(LDSO), long_ldso)
    return fx, libdir, [LDSO, str(long_ldso), os.path.realpath(LDSO)]


@pytest.mark.parametrize("name", ["pie", "nopie", "weak", "nopie-2m"])
def test_random_edit_sequences_keep_programs_running(
    world: tuple[Fixtures, Path, list[str]], tmp_path: Path, name: str
) -> None:
    fx, libdir, ldsos = world
    counter = iter(range(1_000_000))

    @settings(
        max_examples=int(os.environ.get("ELF_EXAMPLES", "15")),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.lists(st.lists(_edits(ldsos, str(libdir)), min_size=1, max_size=3), min_size=1, max_size=5))
    def check(steps: list[list[Edit]]) -> None:
        exe = fx.copy(name, tmp_path / str(next(counter)))
        expected = run(exe)
        for edits in steps:
            edit_file(str(exe), edits)
            check_elf(exe)
        # Whatever happened, the program's libraries can be found again.
        needed = read_facts(str(exe)).needed
        fixups: list[Edit] = [AddRpath(str(libdir))]
        if "libans.so.1" not in needed and "libans-alt.so.1" not in needed:
            fixups.append(AddNeeded("libans.so.1"))
        edit_file(str(exe), fixups)
        check_elf(exe)
        want = expected.replace("ver 7", "ver -1") if _lost_libver(exe) else expected
        assert run(exe) == want

    check()


def _lost_libver(exe: Path) -> bool:
    return "libver.so.1" not in read_facts(str(exe)).needed
