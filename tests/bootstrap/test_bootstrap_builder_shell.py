"""The generic builder's shell helpers, run by bash as the builder defines them (`bootstrap/lfs/builder.sh`).

Each test takes one function's text out of builder.sh and runs it on real archives and trees, so a
helper is checked without a sandbox or a seed: `unpack` names what an archive made when it is not
exactly one directory (it used to fail with `$1: unbound variable`), `gcc_unpack_libraries` moves
mpfr, gmp and mpc into gcc's tree, and the compiler wrapper drops the C++ library's flags for
`-nostdinc++` compiles.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

BUILDER = (Path(__file__).resolve().parent.parent.parent / "bootstrap" / "lfs" / "builder.sh").read_text()
DIE = 'die() { echo "builder: $*" >&2; exit 1; }\n'


def function(name: str) -> str:
    m = re.search(rf"^{name}\(\) {{\n.*?^}}\n", BUILDER, re.M | re.S)
    assert m, name
    return m.group(0)


def run(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True, env=env
    )


def tarball(path: Path, members: list[str]) -> Path:
    src = path.parent / f"{path.name}.src"
    for m in members:
        (src / m).parent.mkdir(parents=True, exist_ok=True)
        (src / m).write_text(m)
    with tarfile.open(path, "w:gz") as tar:
        for m in sorted({p.split("/")[0] for p in members}):
            tar.add(src / m, arcname=m)
    return path


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (["m4-1.4.19/README"], "m4-1.4.19"),
        (
            ["a-1/x", "b-1/y"],
            "builder: 'two.tar.gz' unpacked into 2 top-level directories (a-1 b-1), not one",
        ),
        (["README", "configure"], "builder: 'two.tar.gz' unpacked into no new top-level directory"),
    ],
)
def test_unpack_names_what_an_archive_made(tmp_path: Path, members: list[str], expected: str) -> None:
    archive = tarball(tmp_path / "two.tar.gz", members)
    work = tmp_path / "work"
    work.mkdir()
    (work / "already-here").mkdir()  # not counted: it was there before
    out = run(DIE + function("unpack") + f'unpack "{archive}"', work, PATH="/usr/bin:/bin")
    if expected.startswith("builder:"):
        assert out.returncode == 1 and out.stderr.startswith(expected), out.stderr
        assert "unbound variable" not in out.stderr
    else:
        assert out.returncode == 0 and out.stdout == f"{expected}\n", out.stderr


def test_gcc_libraries_are_unpacked_into_gccs_tree(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    srcs = [
        tarball(store / f"{'a' * 32}-mpfr-4.2.0.tar.gz", ["mpfr-4.2.0/configure"]),
        tarball(store / f"{'b' * 32}-gmp-6.2.1+dfsg1.tar.gz", ["gmp-6.2.1/configure"]),
        tarball(store / f"{'c' * 32}-mpc-1.3.1.tar.gz", ["mpc-1.3.1/configure"]),
        tarball(store / f"{'d' * 32}-gcc-12.2.0.tar.gz", ["gcc-12.2.0/configure"]),
    ]
    gcc = tmp_path / "gcc"
    gcc.mkdir()
    script = (
        DIE
        + f"src_list=({' '.join(str(s) for s in srcs)})\n"
        + function("unpack")
        + function("gcc_unpack_libraries")
        + "gcc_unpack_libraries\n"
    )
    out = run(script, gcc, PATH="/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in gcc.iterdir()) == ["gmp", "mpc", "mpfr"]
    assert (gcc / "mpfr" / "configure").exists()
    # Debian's gmp has no doc/: a Makefile.in that does nothing stands in
    assert "maintainer-clean" in (gcc / "gmp" / "doc" / "Makefile.in").read_text()


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_the_cxx_wrapper_drops_its_library_for_nostdinc(tmp_path: Path) -> None:
    """wrap_cc's g++: `-isystem CXXLIB/include/c++/V` normally, none of CXXLIB's flags with -nostdinc++."""
    gcc = tmp_path / "gcc" / "bin"
    gcc.mkdir(parents=True)
    (gcc / "g++").write_text('#!/bin/sh\necho "$@"\n')
    (gcc / "g++").chmod(0o755)
    (gcc / "gcc").write_text("#!/bin/sh\necho x86_64-linux-gnu\n")
    (gcc / "gcc").chmod(0o755)
    libc = tmp_path / "libc" / "lib"
    libc.mkdir(parents=True)
    (libc / "ld-linux-x86-64.so.2").write_text("")
    cxx = tmp_path / "cxx" / "include" / "c++" / "12.2.0"
    cxx.mkdir(parents=True)
    out_dir = tmp_path / "out" / "bin"
    script = (
        DIE
        + function("wrap_cc")
        + f'wrap_cc "{out_dir}" "" "{gcc.parent}" "{libc.parent}" /h "{cxx.parents[2]}"\n'
    )
    made = run(script, tmp_path, PATH="/usr/bin:/bin", SHELL="/bin/bash")
    assert made.returncode == 0, made.stderr
    normal = subprocess.run([str(out_dir / "g++"), "-c", "t.cc"], capture_output=True, text=True, check=True)
    assert f"-isystem {cxx}" in normal.stdout and f"-L{cxx.parents[2]}/lib" in normal.stdout
    alone = subprocess.run(
        [str(out_dir / "g++"), "-nostdinc++", "-c", "t.cc"], capture_output=True, text=True
    )
    assert str(cxx.parents[2]) not in alone.stdout and "-nostdinc++" in alone.stdout
