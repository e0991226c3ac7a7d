"""What the build hardening costs: outputs copied into fresh inodes, and pasta for fixed-output builds.

- Copying an output (`output_copy.copy_output`: fd-relative, no symlink followed, copy_file_range)
  against GNU `cp -a` of the same tree, for one big file and for many small ones. Before the
  hardening outputs were renamed (free); the copy is the price of an inode nobody else holds.
- A trivial fixed-output build (its own network namespace, pasta started and stopped) against the
  same trivial build as an ordinary derivation (loopback only), in-process, on fresh stores: the
  difference is pasta's start-up and shut-down.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bench._harness import Row, best_of, run_cmd
from storekit.hashing import Hash
from storekit.realise.driver import derivation_reader
from storekit.realise.output_copy import copy_output
from storekit.realise.plan import make_plan
from storekit.realise.recipe import instantiate_recipe
from storekit.realise.runner import BuildOptions, build_derivation, host_system
from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for

TITLE = "Build hardening: outputs copied into fresh inodes, pasta for fixed-output builds"


def _big_file(root: Path, mib: int) -> Path:
    out = root / "big"
    out.mkdir()
    block = os.urandom(1 << 20)
    with open(out / "blob", "wb") as f:
        for _ in range(mib):
            f.write(block)
    return out


def _small_files(root: Path, dirs: int, per_dir: int) -> Path:
    out = root / "small"
    for d in range(dirs):
        (out / f"d{d}").mkdir(parents=True)
        for i in range(per_dir):
            (out / f"d{d}" / f"f{i}").write_bytes(b"x" * 2000)
    return out


def _time_copies(tree: Path) -> tuple[float, float]:
    """(copy_output, cp -a) best times for copying `tree` next to itself."""
    target = tree.parent / "copy"

    def clear() -> None:
        shutil.rmtree(target, ignore_errors=True)

    fd = os.open(tree.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mine = best_of(lambda: copy_output(fd, tree.name, fd, "copy"), setup=clear)
    finally:
        os.close(fd)
    cp = best_of(lambda: run_cmd(["cp", "-a", str(tree), str(target)]), setup=clear)
    clear()
    return mine, cp


def _copy_rows(root: Path, quick: bool) -> list[Row]:
    mib = 64 if quick else 1024
    per_dir = 20 if quick else 200
    trees = [
        (f"copy one {mib} MiB file", _big_file(root, mib)),
        (f"copy {100 * per_dir:,} files of 2 kB", _small_files(root, 100, per_dir)),
    ]
    rows = []
    for task, tree in trees:
        mine, cp = _time_copies(tree)
        rows.append(Row(task, mine, "cp -a", cp))
    return rows


def _build_once(fixed: bool, i: int) -> float:
    """Time building one trivial recipe (busybox `echo`) in a fresh store; its input is added first."""
    tmp = Path(tempfile.mkdtemp(prefix="storekit-bench-"))
    try:
        (tmp / "bb").mkdir()
        shutil.copy("/bin/busybox", tmp / "bb" / "busybox")
        content = f"bench {i}\n"
        lines = [
            f'name = "b{i}"',
            'builder = "${inputs.bb}/busybox"',
            f"args = ['sh', '-c', 'echo bench {i} > $out']",
            "[inputs]",
            'bb = { path = "bb" }',
        ]
        if fixed:
            lines += ["[fixed-output]", f'hash = "{Hash.of(content.encode()).sri}"', 'mode = "flat"']
        (tmp / "r.toml").write_text("\n".join(lines) + "\n")
        spec = local_spec_for(
            str(tmp / "store"), state_dir=str(tmp / "var/nix"), log_dir=str(tmp / "var/log/nix")
        )
        with LocalStore(spec) as store:
            read = derivation_reader(store)
            drv = instantiate_recipe(store, str(tmp / "r.toml"), read, system=host_system())[0]
            (goal,) = make_plan([(drv, None)], store.store_dir, read, store.is_valid_path).todo
            return best_of(lambda: build_derivation(store, goal, BuildOptions()), repeat=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="storekit-bench-copy-"))
    try:
        rows = _copy_rows(root, quick)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = 2 if quick else 5
    fod = min(_build_once(True, i) for i in range(n))
    plain = min(_build_once(False, i + 100) for i in range(n))
    rows.append(
        Row("trivial fixed-output build (pasta)", fod, "ordinary build", plain, "ratio < 1: pasta's cost")
    )
    return rows
