"""Provisioning job trees: 20 jobs of a ~1 GiB closure, and what they cost in time and disk.

A node store holds a closure of 64 paths of random data (1 GiB; 64 MiB with --quick) under a top
path referring to them all. storekit materialises 20 job trees of it (`storekit provision --into`:
hard links, a database and directories per job). The reference is what a job store costs without
links: real Nix's `nix copy` of the closure into a fresh store (same store dir, files elsewhere), for
one job. The row compares one job's time; the note gives the disk growth of the 20 trees, counted
exactly (blocks of inodes the node store does not already have, each counted once, as `du` does)
and as the file system's own free-block count saw it (noisier: other writers share the disk).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench._harness import Row
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath
from storekit.transfer.provision import materialise

TITLE = "provision: 20 job trees of one closure (vs nix copy into a store per job)"
JOBS = 20
PATHS = 64
NIX_CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"


def run(quick: bool) -> list[Row]:
    size = (64 << 20) if quick else (1 << 30)
    with tempfile.TemporaryDirectory(prefix="storekit-bench-provision-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        spec = local_spec_for(str(root / "node" / "store"))
        with LocalStore(spec) as node:
            top = _closure(node, root, size)
            nar_bytes = sum(node.query_path_info(p).nar_size for p in node.closure([top]))
            node_inodes = _inodes(node.real_dir)
            free_before = _free(root)
            t0 = time.perf_counter()
            trees = [materialise(node, [top], str(root / "jobs" / f"job{i}")) for i in range(JOBS)]
            storekit_s = (time.perf_counter() - t0) / JOBS
            os.sync()
            fs_growth = free_before - _free(root)
            growth = sum(_new_bytes(tree.dir, node_inodes) for tree in trees)
        nix_s, nix_growth = _nix_copy(str(spec), str(top), root)
    note = (
        f"{_mib(nar_bytes)} closure, {JOBS} trees: +{_mib(growth)} ({100 * growth / nar_bytes:.2f}%), "
        f"statvfs +{_mib(fs_growth)}; nix copy: +{_mib(nix_growth)} per job"
    )
    return [Row(f"one job tree of a {_mib(nar_bytes)} closure", storekit_s, "nix copy", nix_s, note)]


def _closure(node: LocalStore, root: Path, size: int) -> StorePath:
    """PATHS leaf paths of random data (two files and a symlink each) and a top path referring to all."""
    leaves = []
    per_path = size // PATHS
    for i in range(PATHS):
        src = root / "src" / f"leaf{i}"
        (src / "lib").mkdir(parents=True)
        (src / "lib" / "data.bin").write_bytes(os.urandom(per_path - 4096))
        (src / "README").write_bytes(os.urandom(4096))
        (src / "lib" / "link").symlink_to("data.bin")
        leaves.append(node.add_path(str(src), f"leaf{i}"))
    text = "\n".join(map(str, leaves)).encode()
    return node.add_text("top", text, leaves)


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
    subprocess.run(
        ["nix", "copy", "--no-check-sigs", "--from", node_uri, "--to", target, top],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - t0
    return elapsed, _new_bytes(str(job), set())


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
