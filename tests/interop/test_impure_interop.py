"""Impure derivations (`__impure`, experimental in Nix 2.8) stay refused, with the reason.

Real Nix 2.8 instantiates one (with `impure-derivations` and `ca-derivations` turned on); storekit
refuses to build it before building anything, and says why, and its input is not built either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from build_oracle import run_nix, storekit
from nixoracle import NixStore

pytestmark = pytest.mark.interop


def test_impure_derivation_refused_with_reason(nix_store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "impure.nix").write_text(
        """let dep = derivation { name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
                               args = [ "-c" "echo > $out" ]; };
        in derivation { name = "now"; system = builtins.currentSystem; builder = "/bin/sh";
                        args = [ "-c" "date > $out; echo ${dep}" ]; __impure = true; }"""
    )
    argv = ["nix-instantiate", "--store", nix_store.uri, str(tmp_path / "impure.nix")]
    argv += ["--extra-experimental-features", "impure-derivations ca-derivations"]
    drv = run_nix(nix_store, argv).stdout.strip()
    failed = storekit("build", drv, "--store", nix_store.uri, check=False)
    assert failed.returncode == 1
    assert "impure derivation (__impure), an experimental feature of Nix 2.8" in failed.stderr
    assert "no hash" in failed.stderr  # the reason, not just a refusal
    assert not list(Path(nix_store.store_dir).glob("*-dep"))  # refused before anything was built
