"""ELF edits on gcc-compiled programs and libraries: every result is run, verified by ld.so and readelf."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elf_fixtures import (
    LDSO,
    Fixtures,
    check_elf,
    dynsyms,
    ldso_verify,
    load_count,
    pyelftools_facts,
    run,
    sh,
    shared_fixtures,
)

from storekit.elf import (
    AddNeeded,
    AddRpath,
    RemoveNeeded,
    RemoveRpath,
    ReplaceNeeded,
    SetInterpreter,
    SetRpath,
    SetSoname,
)
from storekit.elf.fs import edit_file, open_elf, read_facts
from storekit.elf.versions import dynsym_count, symbol_name_offsets

PROGRAMS = ["pie", "pie-rpath", "nopie", "nopie-runpath", "pie-2m", "nopie-2m"]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def deep_dir(base: Path, depth: int = 12) -> Path:
    """A directory whose path is several times longer than the fixtures' rpath."""
    d = base.joinpath(*[f"a-rather-long-directory-name-{i}" for i in range(depth)])
    d.mkdir(parents=True)
    return d


def libs_in(d: Path, fx: Fixtures) -> Path:
    for lib in ("libans.so.1", "libver.so.1"):
        shutil.copy2(fx.libdir / lib, d / lib)
    return d


def kind_of(path: Path) -> str:
    facts = read_facts(str(path))
    return "rpath" if facts.rpath is not None else "runpath"


def assert_runs(exe: Path, expected: str = "answer 42\n") -> None:
    check_elf(exe)
    ldso_verify(exe, 0)
    assert run(exe) == expected


@pytest.mark.parametrize("name", PROGRAMS)
def test_longer_rpath_grows_keeps_kind_and_runs(fx: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx.copy(name, tmp_path)
    kind = kind_of(exe)
    libdir = libs_in(deep_dir(tmp_path), fx)
    rpath = f"/nonexistent/first:{libdir}"
    assert len(rpath) > 4 * len(str(fx.libdir))
    result = edit_file(str(exe), [SetRpath(rpath)])
    assert result.outcome == "rewritten"
    facts = read_facts(str(exe))
    assert getattr(facts, kind) == rpath
    assert getattr(facts, "runpath" if kind == "rpath" else "rpath") is None
    assert pyelftools_facts(exe)[kind] == rpath
    assert_runs(exe)  # the only copy of libans.so.1 it can find is in libdir
    assert load_count(exe) == load_count(fx.path(name))
    assert dynsyms(exe) == dynsyms(fx.path(name))
    sh("strip", exe)
    assert_runs(exe)


@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_shorter_rpath_is_written_in_place(fx: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx.copy(name, tmp_path / "x")
    libdir = fx.root / f"l{name[0]}"  # shorter than fx.libdir, "<root>/lib"
    libdir.mkdir()
    libs_in(libdir, fx)
    inode, size = exe.stat().st_ino, exe.stat().st_size
    assert edit_file(str(exe), [SetRpath(str(libdir))]).outcome == "patched in place"
    assert exe.stat().st_ino == inode and exe.stat().st_size == size
    assert_runs(exe)


def test_noop_edits_leave_the_file_byte_identical(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    os.utime(exe, (1_000_000_000, 1_000_000_000))
    before = exe.read_bytes()
    facts = read_facts(str(exe))
    assert facts.runpath is not None and facts.interpreter is not None
    edits = [
        SetRpath(facts.runpath),
        SetInterpreter(facts.interpreter),
        AddNeeded("libc.so.6"),
        RemoveNeeded("libnothere.so"),
        ReplaceNeeded("libnothere.so", "libother.so"),
        AddRpath("/tmp/x"),
        SetRpath(facts.runpath),
    ]
    assert edit_file(str(exe), edits).outcome == "unchanged"
    assert exe.read_bytes() == before and exe.stat().st_mtime == 1_000_000_000


@pytest.mark.parametrize(
    ("name", "force", "tag"), [("pie", "rpath", "rpath"), ("nopie", "runpath", "runpath")]
)
def test_forced_tag_kind(fx: Fixtures, tmp_path: Path, name: str, force: str, tag: str) -> None:
    exe = fx.copy(name, tmp_path)
    assert kind_of(exe) != tag
    edit_file(str(exe), [SetRpath(str(fx.libdir), force)])  # type: ignore[arg-type]
    facts = read_facts(str(exe))
    assert getattr(facts, tag) == str(fx.libdir)
    assert getattr(facts, "rpath" if tag == "runpath" else "runpath") is None
    assert_runs(exe)


def test_remove_then_add_rpath(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    edit_file(str(exe), [RemoveRpath()])
    facts = read_facts(str(exe))
    assert facts.rpath is None and facts.runpath is None
    edit_file(str(exe), [AddRpath("/nonexistent"), AddRpath(str(fx.libdir))])
    assert read_facts(str(exe)).runpath == f"/nonexistent:{fx.libdir}"
    assert_runs(exe)


@pytest.mark.parametrize("name", ["pie", "nopie", "pie-2m", "nopie-2m"])
def test_moved_interpreter(fx: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx.copy(name, tmp_path)
    ldso = deep_dir(tmp_path, 6) / "ld-linux-x86-64.so.2"
    shutil.copy2(os.path.realpath(LDSO), ldso)
    assert edit_file(str(exe), [SetInterpreter(str(ldso))]).outcome == "rewritten"
    assert read_facts(str(exe)).interpreter == str(ldso)
    assert pyelftools_facts(exe)["interpreter"] == str(ldso)
    assert_runs(exe)
    os.unlink(ldso)  # the kernel really uses the new path: without it the program cannot start
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(exe)], capture_output=True)


def test_versioned_library_grown_then_dlopened(fx: Fixtures, tmp_path: Path) -> None:
    """Stale DT_VERDEF after growth makes dlopen crash in patchelf's bug class; here nothing mapped moves."""
    lib = tmp_path / "libver.so.1"
    shutil.copy2(fx.libdir / "libver.so.1", lib)
    long_name = "libver-with-a-much-longer-soname-than-before.so.1"
    result = edit_file(str(lib), [SetSoname(long_name), SetRpath(str(deep_dir(tmp_path)))])
    assert result.outcome == "rewritten"
    assert read_facts(str(lib)).soname == long_name
    check_elf(lib)
    ldso_verify(lib, 2)
    assert run(fx.path("dlopen"), lib, "ver_answer") == "ver_answer=7\n"
    assert "VERS_1.0" in sh("readelf", "-V", lib)
    sh("strip", lib)
    assert run(fx.path("dlopen"), lib, "ver_answer") == "ver_answer=7\n"


def test_shared_rpath_string_is_not_clobbered(fx: Fixtures, tmp_path: Path) -> None:
    """The rpath "answer" is the same .dynstr bytes as the symbol `answer` (patchelf #162)."""
    exe = fx.copy("shared-rpath", tmp_path)
    with open_elf(str(exe)) as elf:
        rpath_offset = next(d.val for d in elf.dynamic if d.tag == 29)
        names = set(symbol_name_offsets(elf, dynsym_count(elf) or 0))
    assert rpath_offset in names, "fixture does not share the rpath string with a symbol name"
    edit_file(str(exe), [SetRpath("lib")])  # shorter: would fit in place, but the symbol needs its bytes
    assert read_facts(str(exe)).runpath == "lib"
    check_elf(exe)
    assert run(exe, cwd=fx.root) == "answer 42\n"  # the rpath "lib" is relative to the working directory
    assert dynsyms(exe) == dynsyms(fx.path("shared-rpath"))


def test_remove_needed_drops_its_version_requirement(fx: Fixtures, tmp_path: Path) -> None:
    """A VERNEED entry left for a removed library makes ld.so assert (patchelf #455)."""
    exe = fx.copy("weak", tmp_path)
    assert run(exe) == "answer 42 ver 7\n"
    assert "libver.so.1" in sh("readelf", "-V", exe)
    edit_file(str(exe), [RemoveNeeded("libver.so.1")])
    assert read_facts(str(exe)).needed == ("libans.so.1", "libc.so.6")
    assert "libver.so.1" not in sh("readelf", "-V", exe)
    assert_runs(exe, "answer 42 ver -1\n")


def test_replace_needed_renames_its_version_requirement(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("weak", tmp_path)
    libdir = tmp_path / "libs"
    libdir.mkdir()
    shutil.copy2(fx.libdir / "libans.so.1", libdir)
    shutil.copy2(fx.libdir / "libver.so.1", libdir / "libver-renamed-longer.so.1")
    edit_file(str(exe), [ReplaceNeeded("libver.so.1", "libver-renamed-longer.so.1"), SetRpath(str(libdir))])
    assert read_facts(str(exe)).needed == ("libans.so.1", "libver-renamed-longer.so.1", "libc.so.6")
    assert "File: libver-renamed-longer.so.1" in sh("readelf", "-V", exe)
    assert_runs(exe, "answer 42 ver 7\n")


@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_add_needed(fx: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx.copy(name, tmp_path)
    edit_file(str(exe), [AddNeeded("libm.so.6"), AddNeeded("libver.so.1")])
    assert read_facts(str(exe)).needed == ("libans.so.1", "libc.so.6", "libm.so.6", "libver.so.1")
    assert_runs(exe)
    assert "libm.so.6" in sh("ldd", exe)


def test_set_soname_added_when_missing(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    edit_file(str(exe), [SetSoname("libprogram.so.7")])
    assert read_facts(str(exe)).soname == "libprogram.so.7"
    assert_runs(exe)


@pytest.mark.parametrize("name", ["pie", "nopie-2m"])
def test_repeated_edits_reuse_the_added_space(fx: Fixtures, tmp_path: Path, name: str) -> None:
    exe = fx.copy(name, tmp_path)
    ldso = deep_dir(tmp_path, 3) / "ld.so"
    shutil.copy2(os.path.realpath(LDSO), ldso)
    original = exe.stat().st_size
    for i in range(80):
        rpath = ":".join(f"/nonexistent/{i}/{'x' * (i % 17) * 8}/{j}" for j in range(i % 5 + 1))
        edits = [SetRpath(f"{rpath}:{fx.libdir}")]
        if i % 3 == 0:
            edits.append(SetInterpreter(str(ldso) if i % 2 else LDSO))
        if i % 4 == 0:
            edits.append(AddNeeded("libm.so.6") if i % 8 else RemoveNeeded("libm.so.6"))
        edit_file(str(exe), edits)
    assert load_count(exe) == load_count(fx.path(name))
    assert exe.stat().st_size < original + 16384
    assert_runs(exe)
    sh("strip", exe)
    assert_runs(exe)


def test_output_leaves_the_original_alone(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    os.chmod(exe, 0o750)
    before = exe.read_bytes()
    out = tmp_path / "out"
    edit_file(str(exe), [SetRpath(str(deep_dir(tmp_path)) + f":{fx.libdir}")], output=str(out))
    assert exe.read_bytes() == before
    assert out.stat().st_mode & 0o7777 == 0o750
    assert_runs(out)
    edit_file(str(exe), [], output=str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_mode_and_owner_kept_hard_links_split(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    os.chown(exe, 1234, 5678)
    os.chmod(exe, 0o4751)
    link = tmp_path / "link"
    os.link(exe, link)
    before = link.read_bytes()
    edit_file(str(exe), [SetRpath(f"{deep_dir(tmp_path)}:{fx.libdir}")])
    st = exe.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o4751)
    assert link.read_bytes() == before and st.st_nlink == 1
    check_elf(exe)  # not run: set-user-ID 1234 cannot enter root's temp dir
    inode = link.stat().st_ino
    assert edit_file(str(link), [SetRpath(f"{fx.root}/l")]).outcome == "patched in place"
    assert link.stat().st_ino == inode  # a file with one link is patched in place


def test_symlink_target_is_edited(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    link = tmp_path / "link"
    link.symlink_to(exe)
    edit_file(str(link), [SetRpath(f"{deep_dir(tmp_path)}:{fx.libdir}")])
    assert link.is_symlink()
    assert read_facts(str(exe)).runpath is not None and str(tmp_path) in (read_facts(str(exe)).runpath or "")


def test_trailing_payload_and_notes_kept(fx: Fixtures, tmp_path: Path) -> None:
    """Data appended after the ELF image (self-extracting archives) stays the file's tail."""
    exe = fx.copy("pie", tmp_path)
    payload = b"PAYLOAD" + bytes(range(256)) * 40
    with open(exe, "ab") as f:
        f.write(payload)
    edit_file(str(exe), [SetRpath(f"{deep_dir(tmp_path)}:{fx.libdir}")])
    assert exe.read_bytes().endswith(payload)
    assert sh("readelf", "-n", exe) == sh("readelf", "-n", fx.path("pie"))  # build-id and ABI notes
    assert_runs(exe)


def test_running_program_is_replaced_not_written(fx: Fixtures, tmp_path: Path) -> None:
    """A running executable cannot be opened for writing (ETXTBSY): it is replaced by rename."""
    src = tmp_path / "sleep.c"
    src.write_text("#include <unistd.h>\nint main(void) { sleep(5); return 0; }\n")
    exe = tmp_path / "sleeper"
    sh("gcc", "-o", exe, src, f"-Wl,-rpath,{fx.libdir}")
    proc = subprocess.Popen([str(exe)])
    try:
        inode = exe.stat().st_ino
        assert edit_file(str(exe), [SetRpath("/short")]).outcome == "rewritten"
        assert exe.stat().st_ino != inode and read_facts(str(exe)).runpath == "/short"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("name", [*PROGRAMS, "weak"])
def test_growth_in_place_gives_the_same_bytes(fx: Fixtures, tmp_path: Path, name: str) -> None:
    """`atomic=False` writes only the changed bytes into the file; the result is the same file."""
    atomic, fast = fx.copy(name, tmp_path / "a"), fx.copy(name, tmp_path / "b")
    rpath = f"/nonexistent/{'z' * 200}:{fx.libdir}"
    edits = [SetRpath(rpath), AddNeeded("libm.so.6"), SetInterpreter(os.path.realpath(LDSO))]
    assert edit_file(str(atomic), edits).outcome == "rewritten"
    inode = fast.stat().st_ino
    assert edit_file(str(fast), edits, atomic=False).outcome == "patched in place"
    assert fast.stat().st_ino == inode
    assert fast.read_bytes() == atomic.read_bytes()
    assert_runs(fast, run(fx.path(name)))
    for i in range(5):  # shrinking and growing again, in place
        edit_file(str(fast), [SetRpath(f"/n/{'q' * 40 * i}:{fx.libdir}")], atomic=False)
    assert_runs(fast, run(fx.path(name)))


def test_failed_growth_in_place_restores_the_file(
    fx: Fixtures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storekit.elf import fs
    from storekit.errors import ElfPatchError

    exe = fx.copy("pie", tmp_path)
    before = exe.read_bytes()

    def broken(elf: object, patch: object) -> None:
        raise ElfPatchError(str(exe), "simulated failure after writing")

    monkeypatch.setattr(fs, "_check", broken)
    with pytest.raises(ElfPatchError, match="simulated"):
        edit_file(str(exe), [SetRpath("/x" * 300)], atomic=False)
    assert exe.read_bytes() == before
    with pytest.raises(ElfPatchError, match="simulated"):
        edit_file(str(exe), [SetRpath("/y")])  # same size, in place
    assert exe.read_bytes() == before
    with pytest.raises(ElfPatchError, match="simulated"):
        edit_file(str(exe), [SetRpath("/x" * 300)])  # through a temp file
    assert exe.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pie"]


def test_strings_of_other_tags_are_kept(fx: Fixtures, tmp_path: Path) -> None:
    """DT_AUXILIARY (like DT_FILTER, DT_AUDIT) names a string storekit never edits: it must survive."""
    lib = tmp_path / "libaux.so"
    flags = ["-Wl,-soname,libaux.so", "-Wl,-f,libaux-filtee.so"]
    sh("gcc", "-shared", "-fPIC", "-o", lib, fx.path("lib.c"), *flags)
    aux = "Auxiliary library: [libaux-filtee.so]"
    assert aux in sh("readelf", "-d", lib)
    edit_file(str(lib), [SetSoname("l.so")])  # in place
    edit_file(str(lib), [SetSoname("libaux-with-a-much-longer-soname.so"), SetRpath("/x" * 50)])  # grows
    edit_file(str(lib), [SetSoname("libaux-with-another-long-soname.so")])  # grows again, reusing the tail
    out = sh("readelf", "-d", lib)
    assert aux in out and "Library soname: [libaux-with-another-long-soname.so]" in out
    check_elf(lib)
    assert run(fx.path("dlopen"), lib, "answer") == "answer=42\n"
