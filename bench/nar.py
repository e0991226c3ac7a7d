"""NAR dump + sha256 of a large real tree against `nix hash path`, and restore against `nix-store --restore`.

The tree is /usr/lib/x86_64-linux-gnu (~1 GB of NAR); `--quick` uses its perl/ subtree. Every timing
is the best of 3 in the same run, with warm caches; the reference commands run with a throwaway Nix
state dir, so they never touch /nix.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from bench._harness import Row, best_of, run_cmd, storekit_argv, work_dir
from storekit.nar.fs import dump_path, hash_path, restore

TITLE = "NAR: hash a real tree, dump it, restore it (vs Nix 2.8)"
FULL_TREE = Path("/usr/lib/x86_64-linux-gnu")
QUICK_TREE = FULL_TREE / "perl"
REPO = Path(__file__).resolve().parent.parent


def _nix_env(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NIX_CONFIG"] = "experimental-features = nix-command"
    env["NIX_STATE_DIR"] = str(state / "var")
    env["NIX_LOG_DIR"] = str(state / "log")
    env["NIX_STORE_DIR"] = str(state / "store")
    env["HOME"] = str(state / "home")
    return env


def _drain(tree: Path) -> None:
    for _ in dump_path(tree):
        pass


def run(quick: bool) -> list[Row]:
    tree = QUICK_TREE if quick else FULL_TREE
    work = work_dir("bench-nar-")
    env = _nix_env(work)
    _, nar_size = hash_path(tree)  # warm the page cache and learn the size
    note = f"{nar_size / 1e9:.2f} GB NAR of {tree}"
    nix_hash = ["nix", "hash", "path", str(tree)]
    cli_hash = [*storekit_argv(), "hash", "path", str(tree)]
    rows = [
        Row(
            "hash path (in-process hash_path)",
            best_of(lambda: hash_path(tree)),
            "nix hash path",
            best_of(lambda: run_cmd(nix_hash, env=env)),
            note,
        ),
        Row(
            "hash path (CLI, incl. Python start)",
            best_of(lambda: run_cmd(cli_hash, cwd=REPO)),
            "nix hash path",
            best_of(lambda: run_cmd(nix_hash, env=env)),
        ),
        Row(
            "dump to NAR stream (dump_path)",
            best_of(lambda: _drain(tree)),
            "nix-store --dump",
            best_of(lambda: run_cmd(["nix-store", "--dump", str(tree)], env=env)),
        ),
    ]
    nar_file = work / "tree.nar"
    with open(nar_file, "wb") as f:
        for chunk in dump_path(tree):
            f.write(chunk)
    rows.append(_restore_row(nar_file, work / "out", env))
    return rows


def _restore_row(nar_file: Path, dest: Path, env: dict[str, str]) -> Row:
    def clear() -> None:
        shutil.rmtree(dest, ignore_errors=True)

    def ours() -> None:
        with open(nar_file, "rb", buffering=0) as raw, io.BufferedReader(raw, 1 << 20) as f:
            restore(f, dest)

    def nix() -> None:
        with open(nar_file, "rb") as f:
            subprocess.run(["nix-store", "--restore", str(dest)], stdin=f, env=env, check=True)

    mine = best_of(ours, setup=clear)
    theirs = best_of(nix, setup=clear)
    clear()
    return Row("restore NAR (fs.restore)", mine, "nix-store --restore", theirs)
