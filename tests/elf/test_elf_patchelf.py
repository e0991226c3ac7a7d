"""Side by side with Debian's patchelf 0.14: the same answers where it is right, and where it is not.

patchelf is only a comparison here; storekit never runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, check_elf, load_count, run, shared_fixtures

from storekit.elf import (
    AddNeeded,
    RemoveNeeded,
    RemoveRpath,
    ReplaceNeeded,
    SetInterpreter,
    SetRpath,
    SetSoname,
    shrink_rpath,
)
from storekit.elf.fs import edit_file, library_provider, read_facts


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    if shutil.which("patchelf") is None:
        pytest.skip("patchelf is not installed")
    return shared_fixtures(tmp_path_factory)


def patchelf(*args: str | Path) -> None:
    subprocess.run(["patchelf", *map(str, args)], check=True, capture_output=True)


def patchelf_is_0_14() -> bool:
    out = subprocess.run(["patchelf", "--version"], capture_output=True, text=True).stdout
    return out.strip().startswith("patchelf 0.14")


def pair(fx: Fixtures, name: str, tmp_path: Path) -> tuple[Path, Path]:
    return fx.copy(name, tmp_path / "storekit"), fx.copy(name, tmp_path / "patchelf")


LONG = "/nonexistent/" + "d" * 150


@pytest.mark.parametrize(
    ("edit", "args"),
    [
        (SetRpath(LONG, "runpath"), ["--set-rpath", LONG]),
        (SetRpath("/x", "runpath"), ["--set-rpath", "/x"]),
        (SetInterpreter("/lib" + "/x" * 60 + "/ld.so"), ["--set-interpreter", "/lib" + "/x" * 60 + "/ld.so"]),
        (
            ReplaceNeeded("libans.so.1", "libanswer-" + "x" * 60 + ".so"),
            ["--replace-needed", "libans.so.1", "libanswer-" + "x" * 60 + ".so"],
        ),
        (RemoveNeeded("libans.so.1"), ["--remove-needed", "libans.so.1"]),
        (SetSoname("libme.so.1"), ["--set-soname", "libme.so.1"]),
        (RemoveRpath(), ["--remove-rpath"]),
    ],
    ids=[
        "set-rpath-longer",
        "set-rpath-shorter",
        "set-interpreter",
        "replace-needed",
        "remove-needed",
        "set-soname",
        "remove-rpath",
    ],
)
@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_same_facts_as_patchelf(
    fx: Fixtures, tmp_path: Path, name: str, edit: object, args: list[str]
) -> None:
    ours, theirs = pair(fx, name, tmp_path)
    edit_file(str(ours), [edit])  # type: ignore[list-item]
    patchelf(*args, theirs)
    if name == "nopie" and isinstance(edit, SetSoname):  # patchelf silently ignores it for ET_EXEC
        assert (read_facts(str(ours)).soname, read_facts(str(theirs)).soname) == ("libme.so.1", None)
    else:
        assert read_facts(str(ours)) == read_facts(str(theirs))
    check_elf(ours)


def test_add_needed_order_differs_on_purpose(fx: Fixtures, tmp_path: Path) -> None:
    """patchelf puts a new library first (it then interposes on all others); storekit appends it."""
    ours, theirs = pair(fx, "pie", tmp_path)
    edit_file(str(ours), [AddNeeded("libm.so.6")])
    patchelf("--add-needed", "libm.so.6", theirs)
    assert read_facts(str(ours)).needed == ("libans.so.1", "libc.so.6", "libm.so.6")
    assert read_facts(str(theirs)).needed == ("libm.so.6", "libans.so.1", "libc.so.6")


def test_rpath_kind_kept_where_patchelf_switches(fx: Fixtures, tmp_path: Path) -> None:
    ours, theirs = pair(fx, "nopie", tmp_path)
    edit_file(str(ours), [SetRpath("/x")])
    patchelf("--set-rpath", "/x", theirs)
    assert (read_facts(str(ours)).rpath, read_facts(str(ours)).runpath) == ("/x", None)
    assert (read_facts(str(theirs)).rpath, read_facts(str(theirs)).runpath) == (None, "/x")


@pytest.mark.parametrize("allowed", [(), ("/usr",), (str(Path("/tmp")),)])
def test_shrink_rpath_like_patchelf(fx: Fixtures, tmp_path: Path, allowed: tuple[str, ...]) -> None:
    ours, theirs = pair(fx, "pie", tmp_path)
    rpath = f"/nonexistent:{fx.libdir}:/usr/lib:$ORIGIN/x:{fx.root}:/usr/lib/x86_64-linux-gnu"
    for f in (ours, theirs):
        edit_file(str(f), [SetRpath(rpath)])
    facts = read_facts(str(ours))
    shrunk = shrink_rpath(rpath, facts.needed, library_provider(64, 62), allowed)
    edit_file(str(ours), [SetRpath(shrunk)])
    extra = ["--allowed-rpath-prefixes", ":".join(allowed)] if allowed else []
    patchelf("--shrink-rpath", *extra, theirs)
    assert read_facts(str(ours)).runpath == read_facts(str(theirs)).runpath


def test_shared_rpath_string(fx: Fixtures, tmp_path: Path) -> None:
    """patchelf #162: the rpath shares its bytes with the symbol `answer`."""
    ours, theirs = pair(fx, "shared-rpath", tmp_path)
    edit_file(str(ours), [SetRpath("lib")])
    patchelf("--set-rpath", "lib", theirs)
    assert run(ours, cwd=fx.root) == "answer 42\n"
    if patchelf_is_0_14():
        proc = subprocess.run([str(theirs)], capture_output=True, text=True, cwd=fx.root)
        assert proc.returncode != 0 and "undefined symbol: lib" in proc.stderr


def test_remove_needed_with_version_requirement(fx: Fixtures, tmp_path: Path) -> None:
    """patchelf #455: the VERNEED entry of the removed library is left behind and ld.so asserts."""
    ours, theirs = pair(fx, "weak", tmp_path)
    edit_file(str(ours), [RemoveNeeded("libver.so.1")])
    patchelf("--remove-needed", "libver.so.1", theirs)
    assert run(ours) == "answer 42 ver -1\n"
    if patchelf_is_0_14():
        proc = subprocess.run([str(theirs)], capture_output=True, text=True)
        assert proc.returncode != 0 and "Assertion `needed != NULL' failed" in proc.stderr


def test_repeated_growth_adds_no_segments(fx: Fixtures, tmp_path: Path) -> None:
    """The upstream `repeated-updates` test allows 3 new LOADs for 100 edits; storekit adds none."""
    ours, theirs = pair(fx, "pie", tmp_path)
    for i in range(30):
        rpath = f"{'/nonexistent/' + 'y' * (10 * (i % 7))}:{fx.libdir}"
        edit_file(str(ours), [SetRpath(rpath)])
        patchelf("--set-rpath", rpath, theirs)
    assert load_count(ours) == load_count(fx.path("pie"))
    assert load_count(ours) <= load_count(theirs)
    assert ours.stat().st_size <= theirs.stat().st_size
    assert run(ours) == run(theirs) == "answer 42\n"


def test_grown_bash_is_not_bigger_than_patchelfs(tmp_path: Path) -> None:
    if shutil.which("patchelf") is None:
        pytest.skip("patchelf is not installed")
    bash = os.path.realpath("/usr/bin/bash")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copy2(bash, ours)
    shutil.copy2(bash, theirs)
    edit_file(str(ours), [SetRpath(LONG)])
    patchelf("--set-rpath", LONG, theirs)
    assert read_facts(str(ours)).runpath == read_facts(str(theirs)).runpath == LONG
    # .bss became zeros in the file, but as a hole: the file takes less disk space than patchelf's.
    assert ours.stat().st_blocks <= theirs.stat().st_blocks
    assert run(ours, "-c", "echo ok") == run(theirs, "-c", "echo ok") == "ok\n"
