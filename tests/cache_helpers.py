"""What the cache, copy and overlay tests share: real-Nix-built closures, stores beside a Nix store, keys.

Paths built by real Nix (`nix-build` of a derivation with `/bin/sh` as builder) are input-addressed:
they carry no content address, so only a signature can make them trusted, which is what the
signature tests need. Every store made here shares the Nix store's store dir (paths are the same),
and keeps its files and state in its own directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nixoracle import NixStore

from storekit.store.local import LocalStore
from storekit.store.specs import local_spec_for
from storekit.storepath import StorePath

#: A closure of three input-addressed paths: `top` -> `mid` -> `dep`, with a file, a dir, a symlink.
CLOSURE_NIX = """
let
  sh = "/bin/sh";
  sys = builtins.currentSystem;
  dep = derivation { name = "dep"; builder = sh; system = sys; args = ["-c" "echo dep-SALT > $out"]; };
  mid = derivation {
    name = "mid"; builder = sh; system = sys;
    args = ["-c" "/bin/mkdir -p $out/bin; echo ${dep} > $out/ref;
                  printf '#!/bin/sh\\necho SALT' > $out/bin/run;
                  /bin/chmod +x $out/bin/run; /bin/ln -s bin/run $out/link"];
  };
  top = derivation {
    name = "top"; builder = sh; system = sys;
    args = ["-c" "/bin/mkdir $out; echo ${mid} > $out/uses; /bin/head -c 70000 /dev/zero > $out/zeros"];
  };
in top
"""


def build_closure(nix_store: NixStore, salt: str = "1") -> StorePath:
    """Build the three-path closure in the Nix store; returns `top` (salt makes distinct closures)."""
    out = nix_store.text("nix-build", "--no-out-link", "-E", CLOSURE_NIX.replace("SALT", salt))
    return StorePath(nix_store.store_dir, os.path.basename(out)[:32], os.path.basename(out)[33:])


def open_nix_store(nix_store: NixStore) -> LocalStore:
    """The Nix store itself, opened by storekit (a plain path: state in `<parent>/var/nix`)."""
    return LocalStore(local_spec_for(nix_store.store_dir))


def side_store(root: Path, store_dir: str) -> LocalStore:
    """Another local store for `store_dir`, with files under `root/store` and state under `root/var`."""
    return LocalStore(side_spec(root, store_dir))


def side_spec(root: Path, store_dir: str):  # type: ignore[no-untyped-def]
    return local_spec_for(
        store_dir,
        state_dir=str(root / "var" / "nix"),
        log_dir=str(root / "var" / "log" / "nix"),
        real_dir=str(root / "store"),
    )


def nix_on(
    nix_store: NixStore, store_uri: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a `nix …` command against another store (same store dir) with the Nix store's settings."""
    argv = [args[0], "--store", store_uri, *args[1:]]
    proc = subprocess.run(argv, capture_output=True, text=True, env=nix_store.env(), check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def nix_key(nix_store: NixStore, tmp: Path, name: str) -> tuple[Path, str]:
    """A secret key file made by `nix key generate-secret`, and its public key."""
    secret = nix_store.run("nix", "key", "generate-secret", "--key-name", name, store_flag=False)
    public = nix_store.run("nix", "key", "convert-secret-to-public", input=secret, store_flag=False)
    path = tmp / f"{name}.sec"
    path.write_bytes(secret)
    return path, public.decode().strip()


def fresh_nix_store(tmp: Path, store_dir: str) -> str:
    """The URI of an empty Nix-readable local store for `store_dir` with files elsewhere."""
    spec = side_spec(tmp, store_dir)
    return f"local?store={spec.store_dir}&state={spec.state_dir}&log={spec.log_dir}&real={spec.real_dir}"
