"""`storekit patchelf`: patchelf 0.19's command line, output and exit codes, on gcc-built fixtures.

The expected outputs are patchelf 0.19's (its source: `patchElf2`, `showHelp`, `modifyRPath` …);
its own test suite is run against `storekit patchelf` by hand (see docs/elf.md).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from elf_fixtures import LDSO, Fixtures, check_elf, run, sh, shared_fixtures

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return shared_fixtures(tmp_path_factory)


def patchelf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "storekit", "patchelf", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)


def ok(*args: str | Path) -> str:
    proc = patchelf(*args)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def test_prints_in_patchelfs_order_and_format(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    out = ok(
        "--print-needed", "--print-rpath", "--print-os-abi", "--print-interpreter", "--print-execstack", exe
    )
    assert out == f"{LDSO}\nSystem V\n{fx.libdir}\nexecstack: -\nlibans.so.1\nlibc.so.6\n"
    lib = tmp_path / "libans.so.1"
    lib.write_bytes((fx.libdir / "libans.so.1").read_bytes())
    assert ok("--print-soname", "--print-rpath", lib) == "libans.so.1\n\n"  # no rpath: an empty line
    assert ok("--print-soname", exe) == ""  # no DT_SONAME: nothing, as patchelf


def test_prints_show_the_file_before_the_edits(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    assert ok("--set-rpath", "/new", "--print-rpath", exe) == f"{fx.libdir}\n"
    assert ok("--print-rpath", exe) == "/new\n"


def test_errors_and_exit_codes(fx: Fixtures, tmp_path: Path) -> None:
    static = fx.copy("static", tmp_path)
    proc = patchelf("--print-interpreter", static)
    assert proc.returncode == 1 and proc.stdout == ""
    assert (
        proc.stderr
        == "patchelf: cannot find section '.interp'. The input file is most likely statically linked\n"
    )
    assert patchelf("--print-rpath", static).stderr.startswith("patchelf: cannot find section '.dynamic'")
    assert patchelf("--set-rpath").stderr == "patchelf: missing argument\n"
    assert patchelf("--print-rpath").stderr == "patchelf: missing filename\n"
    exe = fx.copy("pie", tmp_path)
    proc = patchelf("--set-rpath", "/a", "--add-rpath", "/b", exe)
    assert (proc.returncode, proc.stderr) == (
        1,
        "patchelf: --set-rpath option not allowed with --add-rpath\n",
    )
    proc = patchelf("--output", tmp_path / "o", exe, exe)
    assert proc.stderr == "patchelf: --output option only allowed with single input file\n"
    missing = tmp_path / "missing"
    proc = patchelf("--set-rpath", f"@{missing}", exe)
    assert proc.stderr == f"patchelf: getting info about '{missing}': No such file or directory\n"
    proc = patchelf("--page-size", "0", exe)
    assert proc.stderr == "patchelf: invalid argument to --page-size\n"
    assert patchelf("--set-os-abi", "plan9", exe).stderr == "patchelf: unrecognized OS ABI\n"


def test_help_version_and_no_arguments() -> None:
    proc = patchelf()
    assert proc.returncode == 1 and proc.stderr.startswith(
        "syntax: patchelf\n  [--set-interpreter FILENAME]\n"
    )
    proc = patchelf("--help")
    assert proc.returncode == 0 and "  [--rename-dynamic-symbols NAME_MAP_FILE]\tRenames" in proc.stderr
    assert patchelf("--version").stdout.startswith("patchelf 0.19.0 ")


def test_argument_from_file_and_raw_arguments(fx: Fixtures, tmp_path: Path) -> None:
    """`@FILE` is the file's whole content; `--debug` is patchelf's, not storekit's."""
    exe = fx.copy("pie", tmp_path)
    (tmp_path / "rpath").write_text(f"{fx.libdir}:/from/a/file")
    ok("--debug", "--add-rpath", "@" + str(tmp_path / "rpath"), exe)
    assert ok("--print-rpath", exe) == f"{fx.libdir}:{fx.libdir}:/from/a/file\n"
    assert run(exe) == "answer 42\n"


def test_rpath_kind_as_patchelf(fx: Fixtures, tmp_path: Path) -> None:
    """DT_RPATH becomes DT_RUNPATH unless --force-rpath, which turns DT_RUNPATH into DT_RPATH."""
    exe = fx.copy("pie-rpath", tmp_path)
    ok("--set-rpath", fx.libdir, exe)
    assert "(RUNPATH)" in sh("readelf", "-d", exe) and "(RPATH)" not in sh("readelf", "-d", exe)
    ok("--force-rpath", "--set-rpath", fx.libdir, exe)
    assert "(RPATH)" in sh("readelf", "-d", exe) and "(RUNPATH)" not in sh("readelf", "-d", exe)
    assert run(exe) == "answer 42\n"


def test_needed_edits_in_patchelfs_order(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    # patchelf removes, then replaces, then adds (at the front, sorted), whatever the argument order
    ok(
        "--add-needed",
        "libz.so.1",
        "--add-needed",
        "libm.so.6",
        "--replace-needed",
        "libc.so.6",
        "libc.so.6",
        exe,
    )
    assert ok("--print-needed", exe) == "libm.so.6\nlibz.so.1\nlibans.so.1\nlibc.so.6\n"
    ok("--remove-needed", "libz.so.1", "--remove-needed", "libm.so.6", exe)
    assert ok("--print-needed", exe) == "libans.so.1\nlibc.so.6\n"
    check_elf(exe)
    assert run(exe) == "answer 42\n"


def test_flags_osabi_execstack_debug_tag(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("nopie", tmp_path)
    ok("--no-default-lib", "--add-debug-tag", "--set-os-abi", "FreeBSD", "--set-execstack", exe)
    dynamic = sh("readelf", "-dW", exe)
    assert "NODEFLIB" in dynamic and dynamic.count("(DEBUG)") == 1
    assert ok("--print-os-abi", "--print-execstack", exe) == "FreeBSD\nexecstack: X\n"
    ok("--set-os-abi", "linux", "--clear-execstack", "--add-debug-tag", exe)
    assert ok("--print-os-abi", "--print-execstack", exe) == "Linux\nexecstack: -\n"
    assert sh("readelf", "-dW", exe).count("(DEBUG)") == 1
    check_elf(exe)


def test_clear_symbol_version(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    assert "printf@GLIBC" in sh("nm", "-D", exe)
    ok("--clear-symbol-version", "printf", exe)
    symbols = sh("nm", "-D", exe)
    assert "printf@GLIBC" not in symbols and " printf\n" in symbols
    assert run(exe) == "answer 42\n"


def test_output_always_writes(fx: Fixtures, tmp_path: Path) -> None:
    exe = fx.copy("pie", tmp_path)
    out = tmp_path / "copy"
    ok("--output", out, exe)  # nothing to change: still written, as patchelf does
    assert out.read_bytes() == exe.read_bytes()


def test_output_to_a_fifo_writes_through_it(fx: Fixtures, tmp_path: Path) -> None:
    """patchelf's suite writes `--output /dev/null`: a special file is written to, never replaced.

    Renaming the result over it once swapped the machine's /dev/null for a regular file; a FIFO stands
    in for the device here.
    """
    exe = fx.copy("pie", tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    ok("--set-rpath", "/opt/store/x/lib", "--output", fifo, exe)
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].startswith(b"\x7fELF") and b"/opt/store/x/lib" in got[0]


@pytest.mark.parametrize("name", ["nopie", "pie"])
def test_interpreter_and_rpath_in_either_order(fx: Fixtures, tmp_path: Path, name: str) -> None:
    """patchelf #524: patchelf's result depends on the order of --set-interpreter and --set-rpath
    calls (different files; broken ones on i686). storekit gives the same file in any order."""
    interp = "/lib64/" + "/" * 90 + "ld-linux-x86-64.so.2"  # the same loader, longer: both grow
    rpath = f"{fx.libdir}:/nonexistent/" + "r" * 100
    results = []
    for steps in (
        [["--set-interpreter", interp, "--set-rpath", rpath]],
        [["--set-rpath", rpath, "--set-interpreter", interp]],
        [["--set-interpreter", interp], ["--set-rpath", rpath]],
        [["--set-rpath", rpath], ["--set-interpreter", interp]],
    ):
        exe = fx.copy(name, tmp_path / str(len(results)))
        for argv in steps:
            ok(*argv, exe)
        check_elf(exe)
        assert run(exe) == "answer 42\n"
        results.append(exe.read_bytes())
    assert all(r == results[0] for r in results)


def test_rename_dynamic_symbols(fx: Fixtures, tmp_path: Path) -> None:
    """The library and the program renamed alike still link (GNU and SysV hash tables rebuilt)."""
    lib = tmp_path / "libans.so.1"
    sh(
        "gcc",
        "-shared",
        "-fPIC",
        "-Wl,-soname,libans.so.1",
        "-Wl,--hash-style=both",
        "-o",
        lib,
        fx.path("lib.c"),
    )
    exe = tmp_path / "main"
    sh("gcc", "-o", exe, fx.path("main.c"), lib, f"-Wl,-rpath,{tmp_path}")
    mapping = tmp_path / "map"
    mapping.write_text("answer answer_renamed_with_a_much_longer_name\nwho whom\n")
    ok("--rename-dynamic-symbols", mapping, lib, exe)
    assert "answer_renamed_with_a_much_longer_name" in sh("nm", "-D", lib)
    assert " answer\n" not in sh("nm", "-D", lib) and "whom" in sh("nm", "-D", lib)
    assert "U answer_renamed_with_a_much_longer_name" in sh("nm", "-D", exe)
    check_elf(lib)
    check_elf(exe)
    assert run(exe) == "answer 42\n"
    mapping.write_text("whom x\n\nanswer_renamed_with_a_much_longer_name y\n")
    ok("--rename-dynamic-symbols", mapping, lib)  # stops at the first empty line, as patchelf
    assert " x\n" in sh("nm", "-D", lib) and " y\n" not in sh("nm", "-D", lib)
    (tmp_path / "bad").write_text("answer\n")
    proc = patchelf("--rename-dynamic-symbols", tmp_path / "bad", lib)
    assert proc.stderr == f"patchelf: {tmp_path / 'bad'}:1: Map file line is missing the second element\n"
