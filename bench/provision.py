"""Provisioning jobs: 20 jobs of a ~1 GiB closure, and what they cost in time and disk.

A node store holds a closure of this machine's libraries (Debian's /usr/lib/x86_64-linux-gnu, gcc and
python3: about 1 GiB; python3 alone with --quick), a path each, under a top path referring to them.
storekit provisions 20 jobs of it (`storekit provision --into`: one shared tree of hard links, its
directories and database, and a symlink per job). The reference is what a job store costs without
links: real Nix's `nix copy` of the closure into a fresh store (same store dir, files elsewhere), for
one job. The row compares one job's time; the note gives the disk growth of the 20 jobs, counted
exactly (blocks of inodes the node store did not have, each counted once, as `du` does) and as the
file system's own free-block count saw it (noisy: other writers share the disk).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench._harness import Row, work_dir
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath
from storekit.transfer.provision import materialise

TITLE = "provision: 20 jobs of one closure (vs nix copy into a store per job)"
JOBS = 20
#: About 1 GiB of real libraries (0.8 directories per MiB): what a job's runtime closure holds.
SOURCES = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/gcc", "/usr/lib/python3"]
QUICK_SOURCES = ["/usr/lib/python3"]  # 60 MiB, 7 directories per MiB: the dense end
NIX_CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"


def run(quick: bool) -> list[Row]:
    sources = [s for s in (QUICK_SOURCES if quick else SOURCES) if os.path.isdir(s)]
    root = work_dir("storekit-bench-provision-", "/var/tmp")
    spec = local_spec_for(str(root / "node" / "store"))
    node = LocalStore(spec)
    with node:
        top = _closure(node, sources)
        nar_bytes = sum(node.query_path_info(p).nar_size for p in node.closure([top]))
        known = _inodes(str(root / "node"))
        free_before = _free(root)
        t0 = time.perf_counter()
        first = materialise(node, [top], str(root / "jobs" / "job0"))
        first_s = time.perf_counter() - t0
        one_tree = _new_bytes(str(root / "node"), set(known))
        trees = [
            first,
            *(materialise(node, [top], str(root / "jobs" / f"job{i}")) for i in range(1, JOBS)),
        ]
        storekit_s = (time.perf_counter() - t0) / JOBS
        os.sync()
        fs_growth = free_before - _free(root)
        growth = _new_bytes(str(root / "node"), known) + sum(_new_bytes(t.dir, known) for t in trees)
    nix_s, nix_growth = _nix_copy(str(spec), str(top), root)
    dirs = sum(_count_dirs(s) for s in sources)
    note = (
        f"{_mib(nar_bytes)} closure ({dirs} dirs), {JOBS} jobs: +{_mib(growth)} "
        f"({100 * growth / nar_bytes:.2f}%), statvfs (noisy) {_mib(fs_growth)}; "
        f"the tree alone {_mib(one_tree)}, first job {first_s:.2f}s; nix copy: +{_mib(nix_growth)} per job"
    )
    return [
        Row(f"one job of a {_mib(nar_bytes)} closure (mean of {JOBS})", storekit_s, "nix copy", nix_s, note)
    ]


def _closure(node: LocalStore, sources: list[str]) -> StorePath:
    """A store path of each of `sources` (real trees of this machine), and a top path referring to all."""
    leaves = [node.add_path(src, os.path.basename(src)) for src in sources]
    text = "\n".join(map(str, leaves)).encode()
    return node.add_text("top", text, leaves)


def _count_dirs(top: str) -> int:
    return 1 + sum(len(dirs) for _, dirs, _ in os.walk(top))


def _inodes(top: str) -> set[tuple[int, int]]:
    found = set()
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            st = os.lstat(os.path.join(directory, name))
            found.add((st.st_dev, st.st_ino))
    return found


def _new_bytes(top: str, known: set[tuple[int, int]]) -> int:
    """Blocks of the inodes under `top` that are not in `known`, each once (what `du` would add)."""
    total = 0
    for directory, dirs, files in os.walk(top):
        for name in [directory, *(os.path.join(directory, n) for n in dirs + files)]:
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) not in known:
                known.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


def _nix_copy(node_uri: str, top: str, root: Path) -> tuple[float, int]:
    store_dir = str(root / "node" / "store")
    job = root / "nix-job"
    target = f"local?store={store_dir}&state={job / 'var' / 'nix'}&real={job / 'store'}"
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG, HOME=str(root / "home"), XDG_CACHE_HOME=str(root / "cache"))
    t0 = time.perf_counter()
    argv = ["nix", "copy", "--no-check-sigs", "--from", node_uri, "--to", target, top]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stderr}")
    elapsed = time.perf_counter() - t0
    return elapsed, _new_bytes(str(job), set())


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
