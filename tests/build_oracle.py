"""Comparing a storekit build with real Nix 2.8's build of the same `.drv`.

Real Nix instantiates an expression for a store dir that is not /nix/store; storekit builds the `.drv`
in that store (Nix's own database); real Nix builds it in its sandbox (`sandbox = true`, as root with
an empty `build-users-group`) in a second store with the same store dir whose files live elsewhere
(`real=`), so it must sandbox. Path infos are then read from both stores by real Nix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from nixoracle import NixStore

REPO = Path(__file__).parent.parent
COMPARED = ("narHash", "narSize", "references", "deriver", "ca")


def run_nix(nix_store: NixStore, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_store.env(), check=False)
    if check:
        assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stderr}"
    return proc


def storekit(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`storekit ARGS` in a directory of its own (build leaves `result` links where it runs)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory(prefix="storekit-cwd-") as cwd:
        argv = [sys.executable, "-m", "storekit", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=cwd)
    if check:
        assert proc.returncode == 0, f"storekit {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def oracle_uri(nix_store: NixStore) -> str:
    """A second store with the same store dir; its files live elsewhere, so Nix must sandbox."""
    root = nix_store.root.parent / "oracle"
    return (
        f"local?store={nix_store.store_dir}&real={root / 'store'}&state={root / 'var' / 'nix'}"
        f"&log={root / 'var' / 'log' / 'nix'}"
    )


def oracle_real(nix_store: NixStore) -> Path:
    return nix_store.root.parent / "oracle" / "store"


def instantiate(nix_store: NixStore, uri: str, expr: Path, attr: str, *args: str) -> str:
    argv = ["nix-instantiate", "--store", uri, str(expr), "-A", attr, *args]
    return run_nix(nix_store, argv).stdout.strip()


def realise(
    nix_store: NixStore, uri: str, *drvs: str, check: bool = True, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Real Nix builds in its sandbox."""
    argv = ["nix-store", "--store", uri, "--option", "sandbox", "true", *options, "--realise", *drvs]
    return run_nix(nix_store, argv, check=check)


def path_infos(nix_store: NixStore, uri: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    out = run_nix(nix_store, ["nix", "path-info", "--store", uri, "--json", *paths]).stdout
    return {o["path"]: o for o in json.loads(out)}


def assert_same_infos(nix_store: NixStore, paths: list[str]) -> None:
    """Each path has the same NAR hash, size, references, deriver and CA in both stores."""
    ours = path_infos(nix_store, nix_store.uri, paths)
    theirs = path_infos(nix_store, oracle_uri(nix_store), paths)
    for path in paths:
        for key in COMPARED:
            assert ours[path].get(key) == theirs[path].get(key), (path, key, ours[path], theirs[path])
