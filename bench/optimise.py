"""Deduplication across stores: two stores on one file system holding overlapping trees.

Store A holds a tree, store B the same tree with one file changed (so a different store path whose
files are nearly all identical). `storekit store optimise --store A --store B` hard-links identical
files within and across both stores; real Nix's `nix-store --optimise` can only work store by store,
so it finds nothing to share between them. Both run on identical fresh copies of the two stores; the
row reports the time ratio and, in the note, the bytes each one freed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench._harness import Row, storekit_argv, storekit_env, work_dir
from storekit.store.canonical import delete_path

TITLE = "store optimise: dedup across two stores with overlapping trees (vs nix-store --optimise)"
BIG_TREE = "/usr/lib/python3"
QUICK_TREE = str(Path(os.__file__).parent / "email")
NIX_CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"


def run(quick: bool) -> list[Row]:
    tree = QUICK_TREE if quick or not os.path.isdir(BIG_TREE) else BIG_TREE
    root = work_dir("storekit-bench-optimise-")
    variant = root / "variant"
    shutil.copytree(tree, variant, symlinks=True)
    (variant / "storekit-bench-changed").write_text("one file differs\n")
    storekit_s, storekit_freed = _timed(root / "sk", tree, variant, _storekit_optimise)
    nix_s, nix_freed = _timed(root / "nix", tree, variant, _nix_optimise)
    note = f"{tree}: storekit freed {_mb(storekit_freed)}, Nix (per store) {_mb(nix_freed)}"
    return [Row("optimise two overlapping stores", storekit_s, "nix-store --optimise", nix_s, note)]


def _spec(root: Path, name: str) -> str:
    return f"local?store={root / name / 'store'}&state={root / name / 'var' / 'nix'}"


def _timed(root: Path, tree: str, variant: Path, optimise: object) -> tuple[float, int]:
    """Fill stores A and B with storekit, then time `optimise` on them and measure the bytes freed."""
    import time

    specs = [_spec(root, "a"), _spec(root, "b")]
    for spec, src in zip(specs, (tree, str(variant)), strict=True):
        _storekit("store", "add", "--store", spec, src, "--name", "tree")
    before = _disk_usage(root)
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    optimise(specs)  # type: ignore[operator]
    elapsed = time.perf_counter() - t0
    freed = before - _disk_usage(root)
    for name in ("a", "b"):
        delete_path(str(root / name))
    return elapsed, freed


def _storekit_optimise(specs: list[str]) -> None:
    args = ["store", "optimise"]
    for spec in specs:
        args += ["--store", spec]
    _storekit(*args)


def _nix_optimise(specs: list[str]) -> None:
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
    for spec in specs:
        subprocess.run(["nix-store", "--store", spec, "--optimise"], env=env, check=True, capture_output=True)


def _storekit(*args: str) -> None:
    env = storekit_env()
    subprocess.run([*storekit_argv(), *args], env=env, check=True, capture_output=True)


def _disk_usage(root: Path) -> int:
    """Bytes of disk the tree uses, counting each hard-linked inode once (what `du` reports)."""
    out = subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
