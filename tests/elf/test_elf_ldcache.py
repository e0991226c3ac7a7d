"""The library resolution cache note (`patchelf --build-resolution-cache`), found as the loader finds
notes: through a PT_NOTE, with no program header added and no section renumbered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, check_elf, run, shared_fixtures
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import NoteSegment

from storekit.elf import AddNeeded, RemoveNeeded, SetRpath
from storekit.elf.fs import build_resolution_cache, drop_resolution_cache, edit_file, read_facts
from storekit.elf.ldcache import NOTE_TYPE, descriptor
from storekit.errors import ElfPatchError

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def loader_notes(path: Path) -> list[bytes]:
    """The descriptors of the cache notes in the PT_NOTE segments (what a loader reads)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        return [
            bytes(n["n_descdata"], "latin-1") if isinstance(n["n_descdata"], str) else n["n_descdata"]
            for seg in elf.iter_segments()
            if isinstance(seg, NoteSegment)
            for n in seg.iter_notes()
            if n["n_name"] == "NixOS" and str(n["n_type"]) == str(NOTE_TYPE)
        ]


def sections(path: Path) -> list[str]:
    with open(path, "rb") as f:
        return [s.name for s in ELFFile(f).iter_sections()]


def phnum(path: Path) -> int:
    with open(path, "rb") as f:
        return int(ELFFile(f).header["e_phnum"])


def storekit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "storekit", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("name", ["pie", "nopie", "pie-rpath"])
def test_the_note_resolves_needed_libraries_and_the_program_still_runs(
    fx: Fixtures, tmp_path: Path, name: str
) -> None:
    exe = fx.copy(name, tmp_path)
    before = phnum(exe)
    assert build_resolution_cache(str(exe)) == "written"
    expected = b"libans.so.1\0=" + bytes(fx.libdir) + b"/libans.so.1\0\0"
    assert loader_notes(exe) == [expected]
    assert sections(exe).count(".note.nixos.ldcache") == 1
    assert phnum(exe) == before  # no program header added
    check_elf(exe)
    assert run(exe) == "answer 42\n"
    # the other notes are still there, for the loader too (the ABI tag, the build id)
    out = subprocess.run(["readelf", "-nW", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "NT_GNU_ABI_TAG" in out and "NT_GNU_BUILD_ID" in out


def test_building_again_is_a_no_op_and_a_stale_note_is_refused(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    build_resolution_cache(str(exe))
    once = exe.read_bytes()
    assert build_resolution_cache(str(exe)) == "up to date"
    assert exe.read_bytes() == once
    moved = tmp_path / "moved"
    shutil.copytree(fx.libdir, moved)
    # the run path now resolves elsewhere: a note made for the old one must not be kept or rebuilt over
    edit_file(str(exe), [SetRpath(str(moved))])
    assert loader_notes(exe) == []  # the edit dropped it
    build_resolution_cache(str(exe))
    assert loader_notes(exe) == [b"libans.so.1\0=" + bytes(moved) + b"/libans.so.1\0\0"]
    shutil.rmtree(moved)
    with pytest.raises(ElfPatchError, match="already present; rebuild from an unpatched binary"):
        build_resolution_cache(str(exe))


@pytest.mark.parametrize(
    "edit", [SetRpath("/elsewhere"), AddNeeded("libm.so.6"), RemoveNeeded("libans.so.1")], ids=str
)
def test_edits_of_what_it_resolves_drop_the_note_and_its_store_paths(
    fx: Fixtures, tmp_path: Path, edit: object
) -> None:
    exe = fx.copy("pie", tmp_path)
    build_resolution_cache(str(exe))
    edit_file(str(exe), [edit])  # type: ignore[list-item]
    assert loader_notes(exe) == [] and ".note.nixos.ldcache" not in sections(exe)
    assert b"=" + bytes(fx.libdir) not in exe.read_bytes()  # no stale path for a reference scan
    check_elf(exe)


def test_an_edit_that_changes_nothing_it_resolves_keeps_the_note(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    build_resolution_cache(str(exe))
    edit_file(str(exe), [RemoveNeeded("libabsent.so")])
    assert len(loader_notes(exe)) == 1


def test_dropping_the_note_leaves_the_other_sections_numbered_as_they_were(
    fx: Fixtures, tmp_path: Path
) -> None:
    exe = fx.copy("pie", tmp_path)
    names = sections(exe)
    build_resolution_cache(str(exe))
    assert sections(exe) == [*names, ".note.nixos.ldcache"]
    assert drop_resolution_cache(str(exe))
    assert sections(exe) == names
    assert not drop_resolution_cache(str(exe))
    check_elf(exe)
    assert run(exe) == "answer 42\n"


def test_directories_the_loader_must_search_itself_are_hints() -> None:
    hwcaps = {b"/hw"}
    found = {b"/a/libx.so", b"/b/libx.so", b"/b/liby.so", b"/hw/libx.so"}
    desc = descriptor(
        [b"liby.so", b"libx.so", b"/abs/libz.so"],
        [b"/a", b"", b"$ORIGIN/lib", b"/hw", b"/b"],
        lambda p: p in found,
        lambda d: d in hwcaps,
    )
    assert desc == (
        b"libx.so\0=/a/libx.so:?$ORIGIN/lib:?/hw:=/b/libx.so\0liby.so\0?$ORIGIN/lib:?/hw:=/b/liby.so\0\0"
    )
    assert descriptor([b"libq.so"], [b"/a"], lambda p: False, lambda d: False) is None


def test_patchelf_command_line(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    bare = fx.copy("static", tmp_path)
    done = storekit("patchelf", "--build-resolution-cache", str(exe))
    assert done.returncode == 0 and done.stderr == ""
    assert len(loader_notes(exe)) == 1
    done = storekit("patchelf", "--build-resolution-cache", str(bare))
    assert done.returncode == 0
    assert "warning: --build-resolution-cache: no dynamic section" in done.stderr
    done = storekit("patchelf", "--force-rpath", "--build-resolution-cache", str(exe))
    assert done.returncode == 1
    assert "cannot be combined with --force-rpath" in done.stderr
    # the edit makes the output's note stale (dropped); with no run path left there is nothing to cache
    out = tmp_path / "out"
    before = exe.read_bytes()
    done = storekit("patchelf", "--remove-rpath", "--build-resolution-cache", "--output", str(out), str(exe))
    assert done.returncode == 0
    assert "no DT_NEEDED entries or run path to resolve; no cache written" in done.stderr
    assert loader_notes(out) == [] and read_facts(str(out)).runpath is None
    assert exe.read_bytes() == before
