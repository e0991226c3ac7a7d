"""ELF patching on every dynamic ELF file of /usr/bin and /usr/lib/x86_64-linux-gnu, against patchelf.

Two jobs, each on a fresh copy of the files (copying is not timed):
- a longer rpath on every file (each file grows): storekit in one process (the API through temp file
  and rename, the API with `atomic=False`, one `--in-place` CLI invocation) against
  `patchelf --set-rpath R FILES…` in one process and one patchelf per file;
- a same-length prefix change (every file already has an rpath under the old prefix): storekit's
  `rewrite-prefix` (pwrite in place) against patchelf setting the new rpath, in one process and per file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench._harness import Row, best_of, storekit_argv, work_dir
from storekit.elf import SetRpath
from storekit.elf.fs import edit_file, open_elf
from storekit.elf.tree import TreeReport, rewrite_prefix
from storekit.errors import ElfError

TITLE = "ELF patching: storekit vs patchelf 0.14 (whole trees)"
SOURCES = ("/usr/bin", "/usr/lib/x86_64-linux-gnu")
LONG_RPATH = "/opt/storekit-bench/" + "a-long-store-path-component/" * 6 + "lib:/opt/storekit-bench/lib64"
OLD_PREFIX, NEW_PREFIX = "/opt/storekit-bench/old-prefix", "/opt/storekit-bench/new-prefix"


def _dynamic_elf_files() -> list[str]:
    """Regular dynamic ELF files (one name per inode) that patchelf and storekit can both read."""
    seen: set[tuple[int, int]] = set()
    found = []
    for top in SOURCES:
        for root, _, names in os.walk(top):
            for name in sorted(names):
                path = os.path.join(root, name)
                st = os.lstat(path)
                if not os.path.isfile(path) or os.path.islink(path) or (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                try:
                    with open_elf(path) as elf:
                        if elf.dynamic and elf.strtab_offset >= 0 and not elf.is_static_pie:
                            found.append(path)
                except ElfError:
                    continue
    return sorted(found)


def _stage(files: list[str], into: Path) -> list[str]:
    into.mkdir(parents=True)
    out = []
    for i, f in enumerate(files):
        dest = into / f"{i:05d}-{os.path.basename(f)}"
        shutil.copyfile(f, dest)
        os.chmod(dest, 0o755)
        out.append(str(dest))
    return out


def _fresh(src: Path, work: Path) -> Callable[[], None]:
    def setup() -> None:
        if work.exists():
            shutil.rmtree(work)
        subprocess.run(["cp", "-a", str(src), str(work)], check=True)

    return setup


def _patchelf(argv_tail: list[str], files: list[str], per_file: bool) -> Callable[[], None]:
    def go() -> None:
        if per_file:
            for f in files:
                subprocess.run(["patchelf", *argv_tail, f], check=True)
        else:
            subprocess.run(["patchelf", *argv_tail, *files], check=True)

    return go


def run(quick: bool) -> list[Row]:
    if shutil.which("patchelf") is None:
        print("patchelf is not installed: nothing to compare with")
        return []
    files = _dynamic_elf_files()
    if quick:
        files = files[:: max(1, len(files) // 60)]
    repeat = 3 if quick else 1
    base = work_dir("storekit-bench-elf-")
    staged = _stage(files, base / "src")
    size = sum(os.path.getsize(f) for f in staged)
    work = base / "work"
    names = [str(work / os.path.basename(f)) for f in staged]
    what = f"{len(files)} files, {size / 1e6:.0f} MB"
    rows = _longer_rpath(base, names, what, repeat)
    rows += _same_length_prefix(base, names, what, repeat)
    shutil.rmtree(work, ignore_errors=True)
    return rows


def _longer_rpath(base: Path, names: list[str], what: str, repeat: int) -> list[Row]:
    """Every file grows: storekit through temp file + rename (atomic) and in place, against patchelf."""
    fresh = _fresh(base / "src", base / "work")
    refused: list[str] = []

    def storekit(atomic: bool) -> Callable[[], None]:
        def go() -> None:
            refused.clear()
            for f in names:
                try:
                    edit_file(f, [SetRpath(LONG_RPATH)], atomic=atomic)
                except ElfError as e:
                    refused.append(str(e))

        return go

    def storekit_cli() -> None:
        argv = [*storekit_argv(), "elf", "set-rpath", "--in-place", LONG_RPATH, *names]
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    one = best_of(_patchelf(["--set-rpath", LONG_RPATH], names, False), repeat, fresh)
    atomic = best_of(storekit(True), repeat, fresh)
    note = f"{what}; every file grows" + (f"; {len(refused)} refused" if refused else "")
    fast = best_of(storekit(False), repeat, fresh)
    cli = best_of(storekit_cli, repeat, fresh)
    each = best_of(_patchelf(["--set-rpath", LONG_RPATH], names, True), 1, fresh)
    return [
        Row("longer rpath: API, temp file + rename", atomic, "patchelf 1 proc", one, note),
        Row("longer rpath: API, --in-place", fast, "patchelf 1 proc", one, what),
        Row("longer rpath: 1 CLI call, --in-place", cli, "patchelf 1 proc", one, what),
        Row("longer rpath: API, --in-place", fast, "patchelf per file", each, what),
    ]


def _same_length_prefix(base: Path, names: list[str], what: str, repeat: int) -> list[Row]:
    """Every file already has an rpath under the old prefix (set untimed); the new one has its length."""
    work = base / "work"
    old_rpath, new_rpath = f"{OLD_PREFIX}/lib:{OLD_PREFIX}/lib64", f"{NEW_PREFIX}/lib:{NEW_PREFIX}/lib64"
    _fresh(base / "src", work)()
    for f in names:
        try:
            edit_file(f, [SetRpath(old_rpath)], atomic=False)
        except ElfError:
            continue
    os.rename(work, base / "prefixed")
    again = _fresh(base / "prefixed", work)
    report: list[TreeReport] = []

    def storekit() -> None:
        report.append(rewrite_prefix([str(work)], OLD_PREFIX, NEW_PREFIX))

    sk = best_of(storekit, repeat, again)
    one = best_of(_patchelf(["--set-rpath", new_rpath], names, False), repeat, again)
    each = best_of(_patchelf(["--set-rpath", new_rpath], names, True), 1, again)
    note = f"{what}; {report[-1].summary() if report else ''}"
    return [
        Row("same-length prefix: rewrite-prefix", sk, "patchelf 1 proc", one, note),
        Row("same-length prefix: rewrite-prefix", sk, "patchelf per file", each, what),
    ]
