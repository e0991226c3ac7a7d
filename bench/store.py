"""Copying a big path against `nix copy`: push to an uncompressed file:// cache, substitute it back,
and copy it between two local stores on one file system (storekit links files, Nix streams a NAR).

Both tools run as commands (`python -m storekit copy …` vs `nix copy …`), startup included, on the
same path added by `nix-store --add` to a store whose store dir is in a temp dir. Before each timed
run the destination is removed and dirty pages are synced, so neither tool pays for the other's
writes. The full run uses /usr/lib/x86_64-linux-gnu (about 0.7 GB here); `--quick` a small tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench._harness import Row, best_of, run_cmd, storekit_argv, storekit_env, work_dir
from storekit.store.canonical import delete_path

TITLE = "stores: file:// cache push/substitute and local->local copy vs nix copy"
BIG_TREE = "/usr/lib/x86_64-linux-gnu"
QUICK_TREES = ("/usr/lib/x86_64-linux-gnu/perl", str(Path(os.__file__).parent / "email"))
NIX_CONFIG = "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"


def run(quick: bool) -> list[Row]:
    tree = next((t for t in QUICK_TREES if os.path.isdir(t)), QUICK_TREES[-1]) if quick else BIG_TREE
    tmp = work_dir("storekit-bench-store-")
    return _Bench(tmp, tree, repeat=3).rows()


class _Bench:
    def __init__(self, tmp: Path, tree: str, repeat: int) -> None:
        self.tmp, self.repeat = tmp, repeat
        self.store_dir = str(tmp / "nix" / "store")
        self.env = dict(
            storekit_env(),
            NIX_CONFIG=NIX_CONFIG + "require-sigs = false\n",
            NIX_STORE_DIR=self.store_dir,
            NIX_STATE_DIR=str(tmp / "nix" / "var" / "nix"),
            NIX_LOG_DIR=str(tmp / "nix" / "var" / "log" / "nix"),
            HOME=str(tmp / "home"),
            XDG_CACHE_HOME=str(tmp / "cache"),
        )
        out = subprocess.run(
            ["nix-store", "--add", tree], env=self.env, check=True, capture_output=True, text=True
        )
        self.path = out.stdout.strip()
        du = subprocess.run(["du", "-sh", "--apparent-size", tree], capture_output=True, text=True)
        self.size = du.stdout.split()[0] if du.returncode == 0 else "?"

    def cache(self, name: str) -> str:
        return f"file://{self.tmp / name}?store={self.store_dir}&compression=none"

    def local(self, name: str) -> str:
        root = self.tmp / name
        return f"local?store={self.store_dir}&state={root}/var/nix&log={root}/var/log/nix&real={root}/store"

    def storekit(self, *args: str) -> Callable[[], None]:
        argv = [*storekit_argv(), "copy", "-q", *args, self.path]
        return lambda: run_cmd(argv, env=self.env)

    def nix(self, *args: str) -> Callable[[], None]:
        argv = ["nix", "copy", *args, self.path]
        return lambda: run_cmd(argv, env=self.env, stderr=subprocess.DEVNULL)

    def timed(self, fn: Callable[[], None], *clean: str) -> float:
        def setup() -> None:
            for name in clean:
                delete_path(str(self.tmp / name))
            os.sync()

        return best_of(fn, self.repeat, setup)

    def rows(self) -> list[Row]:
        note = f"{self.size} tree"
        push_sk = self.timed(self.storekit("--from", self.store_dir, "--to", self.cache("c-sk")), "c-sk")
        push_nix = self.timed(self.nix("--to", self.cache("c-nix")), "c-nix")
        # both substitute from the cache Nix wrote (the files are the same bytes as storekit's)
        sub_sk = self.timed(self.storekit("--from", self.cache("c-nix"), "--to", self.local("s-sk")), "s-sk")
        sub_nix = self.timed(self.nix("--from", self.cache("c-nix"), "--to", self.local("s-nix")), "s-nix")
        link_sk = self.timed(self.storekit("--from", self.store_dir, "--to", self.local("l-sk")), "l-sk")
        link_nix = self.timed(self.nix("--to", self.local("l-nix")), "l-nix")
        stream_sk = self.timed(
            self.storekit("--link", "stream", "--from", self.store_dir, "--to", self.local("t-sk")), "t-sk"
        )
        return [
            Row("push to file:// cache (compression=none)", push_sk, "nix copy", push_nix, note),
            Row("substitute from file:// cache", sub_sk, "nix copy", sub_nix, note),
            Row("local -> local, one FS (hard links)", link_sk, "nix copy", link_nix, note),
            Row("local -> local, NAR stream (--link stream)", stream_sk, "nix copy", link_nix, note),
        ]
