"""HTTP binary caches against real programs: `storekit cache serve` substituted from by real Nix, and a
real nginx (Debian's) serving a cache directory Nix wrote, substituted from by storekit.

Everything listens on 127.0.0.1 on a free port; nginx runs in the foreground from a config generated
in the test's temp dir (the one documented in docs/stores.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on, side_store
from nginx_server import nginx_serving
from nixoracle import NixStore

from storekit.errors import StorekitError, SubstituteError
from storekit.store.open import open_store
from storekit.store.substituters import SignaturePolicy
from storekit.transfer.copy import copy_closure

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(cache dir, base URL): a real nginx serving an (empty) directory on a free port."""
    cache = tmp_path / "served"
    cache.mkdir()
    with nginx_serving(cache, tmp_path / "nginx") as server:
        yield cache, server.url


def test_storekit_substitutes_from_nginx_serving_a_cache_nix_wrote(
    nix_store: NixStore, tmp_path: Path, nginx: tuple[Path, str]
) -> None:
    cache, url = nginx
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "nginx-test-1")
    nix_store.run("nix", "store", "sign", "--key-file", str(key_file), "--recursive", str(top))
    nix_store.run(
        "nix", "copy", "--to", f"file://{cache}?store={nix_store.store_dir}&compression=xz", str(top)
    )
    with (
        open_store(f"{url}?store={nix_store.store_dir}") as src,
        side_store(tmp_path / "b", nix_store.store_dir) as dst,
    ):
        assert src.cache_info.store_dir == nix_store.store_dir  # type: ignore[attr-defined]
        result = copy_closure(src, dst, [top], policy=SignaturePolicy.from_text(public), jobs=3)
        assert len(result.copied) == 3
    target = fresh_nix_store(tmp_path / "b", nix_store.store_dir)
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    nix_on(nix_store, target, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))


def test_storekit_refuses_a_truncated_or_missing_nar_behind_nginx(
    nix_store: NixStore, tmp_path: Path, nginx: tuple[Path, str]
) -> None:
    cache, url = nginx
    top = build_closure(nix_store)
    nix_store.run(
        "nix", "copy", "--to", f"file://{cache}?store={nix_store.store_dir}&compression=none", str(top)
    )
    narinfo = (cache / f"{top.hash_part}.narinfo").read_text()
    nar = cache / next(line[5:] for line in narinfo.splitlines() if line.startswith("URL: "))
    data = nar.read_bytes()
    nar.write_bytes(data[:1000])  # nginx serves the short file with a matching Content-Length
    no_sigs = SignaturePolicy(require_sigs=False)
    with (
        open_store(f"{url}?store={nix_store.store_dir}") as src,
        side_store(tmp_path / "b", nix_store.store_dir) as dst,
    ):
        with pytest.raises(StorekitError) as caught:
            copy_closure(src, dst, [top], policy=no_sigs)
        assert "truncated: got 1000 of" in str(caught.value) and str(top) in str(caught.value)
        assert not dst.is_valid_path(top)
        nar.unlink()
        with pytest.raises(SubstituteError, match="but not its NAR"):
            copy_closure(src, dst, [top], policy=no_sigs)
        assert not dst.is_valid_path(top)


@pytest.fixture
def served(nix_store: NixStore, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(URL, public key): `storekit cache serve` on the Nix store, signing with a fresh key."""
    key_file, public = nix_key(nix_store, tmp_path, "serve-test-1")
    argv = [sys.executable, "-m", "storekit", "cache", "serve", "--store", nix_store.store_dir, "--port", "0"]
    argv += ["--sign-key", str(key_file), "--compression", request.param]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert " at http://127.0.0.1:" in line, proc.stderr.read().decode() if proc.stderr else line
        yield line.split(" at ")[1].strip(), public
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("served", ["none", "xz"], indirect=True)
def test_nix_substitutes_from_storekit_cache_serve(
    nix_store: NixStore, tmp_path: Path, served: tuple[str, str]
) -> None:
    url, public = served
    top = build_closure(nix_store)
    target = fresh_nix_store(tmp_path / "target", nix_store.store_dir)
    source = f"{url}?store={nix_store.store_dir}"
    strict = ("--option", "require-sigs", "true", "--option", "trusted-public-keys", public)
    nix_on(nix_store, target, "nix", "copy", *strict, "--from", source, str(top))
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    rows = json.loads(nix_on(nix_store, target, "nix", "path-info", "--json", "-r", str(top)).stdout)
    theirs = {r["path"]: r for r in json.loads(nix_store.text("nix", "path-info", "--json", "-r", str(top)))}
    assert {r["path"] for r in rows} == set(theirs)
    for row in rows:
        assert row["narHash"] == theirs[row["path"]]["narHash"]
        assert row["references"] == theirs[row["path"]]["references"]
        assert any(sig.startswith("serve-test-1:") for sig in row["signatures"])
    # and storekit itself, over the same HTTP
    with open_store(source) as src, side_store(tmp_path / "b", nix_store.store_dir) as dst:
        copy_closure(src, dst, [top], policy=SignaturePolicy.from_text(public))
        assert dst.closure([top]) == src.closure([top])
