"""`storekit store sign`: signatures added to paths already in a local store or a binary cache, which
real Nix then trusts (`nix store verify --trusted-public-keys`, `nix copy` with `require-sigs`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on, open_nix_store, side_store
from nixoracle import NixStore

from storekit.cli import main
from storekit.transfer.copy import copy_closure

pytestmark = pytest.mark.interop


def storekit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_signed_local_paths_are_trusted_by_nix(
    nix_store: NixStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = build_closure(nix_store)
    with open_nix_store(nix_store) as src, side_store(tmp_path / "b", nix_store.store_dir) as dst:
        copy_closure(src, dst, [top])  # copied paths are not ultimate: only a signature makes them trusted
        closure = sorted(str(p) for p in src.closure([top]))
    side = fresh_nix_store(tmp_path / "b", nix_store.store_dir)
    key, public = nix_key(nix_store, tmp_path, "sign-test-1")
    verify = ("nix", "store", "verify", "--no-contents", "--trusted-public-keys", public, "-r", str(top))
    assert nix_on(nix_store, side, *verify, check=False).returncode != 0  # untrusted before

    code, out = storekit(capsys, "store", "sign", "--store", side, "--key-file", str(key), str(top))
    assert code == 0 and out == "added 1 signature\n", out
    assert nix_on(nix_store, side, *verify, check=False).returncode != 0  # `top` alone: mid, dep are not
    code, out = storekit(capsys, "store", "sign", "--store", side, "-k", str(key), "-r", str(top))
    assert code == 0 and out == "added 2 signatures\n", out
    nix_on(nix_store, side, *verify)
    code, out = storekit(capsys, "store", "sign", "--store", side, "-k", str(key), "-r", str(top))
    assert out == "added 0 signatures\n"  # signing twice adds nothing
    infos = nix_on(nix_store, side, "nix", "path-info", "--sigs", "-r", str(top)).stdout.splitlines()
    assert sorted(line.split()[0] for line in infos) == closure
    assert all(line.split()[-1].startswith("sign-test-1:") for line in infos)
    wrong = ("nix", "store", "verify", "--no-contents", "--trusted-public-keys", "x:" + public.split(":")[1])
    assert nix_on(nix_store, side, *wrong, "-r", str(top), check=False).returncode != 0


def test_signed_cache_paths_are_substituted_by_nix_with_require_sigs(
    nix_store: NixStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = build_closure(nix_store, salt="sign-cache")
    cache = f"file://{tmp_path / 'cache'}?store={nix_store.store_dir}"
    code, out = storekit(capsys, "copy", "-q", "--from", nix_store.store_dir, "--to", cache, str(top))
    assert code == 0, out
    key, public = nix_key(nix_store, tmp_path, "sign-cache-1")
    fetch = ("nix", "copy", "--from", cache, "--option", "require-sigs", "true")
    trusting = (*fetch, "--option", "trusted-public-keys", public, str(top))
    first = fresh_nix_store(tmp_path / "first", nix_store.store_dir)
    refused = nix_on(nix_store, first, *trusting, check=False)
    assert refused.returncode != 0 and "lacks a valid signature" in refused.stderr

    code, out = storekit(capsys, "store", "sign", "--store", cache, "-k", str(key), "-r", str(top))
    assert code == 0 and out == "added 3 signatures\n", out
    second = fresh_nix_store(tmp_path / "second", nix_store.store_dir)
    nix_on(nix_store, second, *trusting)
    nix_on(nix_store, second, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))


def test_a_store_that_keeps_no_signatures_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.sec"
    code, out = storekit(capsys, "key", "generate", "k-1")
    key.write_text(out)
    code, out = storekit(
        capsys, "store", "sign", "--store", "memory://", "-k", str(key), "/nix/store/" + "a" * 32 + "-x"
    )
    assert code == 1 and out.startswith("error: cannot sign paths in 'memory://?store=/nix/store'")
