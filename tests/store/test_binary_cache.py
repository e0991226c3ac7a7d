"""Binary caches both ways against real Nix 2.8: same files as `nix copy --to file://`, caches Nix wrote
read by storekit, signed caches storekit wrote substituted by Nix with `require-sigs`.

All stores share the Nix store's store dir (never /nix/store); the caches say so in `nix-cache-info`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cache_helpers import build_closure, fresh_nix_store, nix_key, nix_on, open_nix_store, side_store
from nixoracle import NixStore

from storekit.store.binary_cache import BinaryCacheStore
from storekit.store.open import open_store
from storekit.store.substituters import SignaturePolicy
from storekit.transfer.copy import copy_closure

pytestmark = pytest.mark.interop


def cache_uri(directory: Path, store_dir: str, compression: str) -> str:
    return f"file://{directory}?store={store_dir}&compression={compression}"


def cache_files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("compression", ["xz", "none"])
def test_storekit_writes_the_files_nix_writes(nix_store: NixStore, tmp_path: Path, compression: str) -> None:
    top = build_closure(nix_store)
    nix_cache, our_cache = tmp_path / "nix-cache", tmp_path / "our-cache"
    nix_store.run("nix", "copy", "--to", cache_uri(nix_cache, nix_store.store_dir, compression), str(top))
    with (
        open_nix_store(nix_store) as src,
        open_store(cache_uri(our_cache, nix_store.store_dir, compression)) as dst,
    ):
        result = copy_closure(src, dst, [top])
    assert len(result.copied) == 3
    ours, theirs = cache_files(our_cache), cache_files(nix_cache)
    assert ours == theirs  # narinfos, NAR files (xz is byte-identical at Nix's preset) and nix-cache-info
    assert sorted(p.name for p in our_cache.iterdir()) == sorted(p.name for p in nix_cache.iterdir())


@pytest.mark.parametrize("compression", ["zstd", "bzip2"])
def test_nix_reads_other_compressions_storekit_wrote(
    nix_store: NixStore, tmp_path: Path, compression: str
) -> None:
    top = build_closure(nix_store)
    cache = tmp_path / "cache"
    with (
        open_nix_store(nix_store) as src,
        open_store(cache_uri(cache, nix_store.store_dir, compression)) as dst,
    ):
        copy_closure(src, dst, [top])
    ext = {"zstd": ".nar.zst", "bzip2": ".nar.bz2"}[compression]
    assert all(p.name.endswith(ext) for p in (cache / "nar").iterdir())
    target = fresh_nix_store(tmp_path / "target", nix_store.store_dir)
    nix_on(
        nix_store,
        target,
        "nix",
        "copy",
        "--no-check-sigs",
        "--from",
        cache_uri(cache, nix_store.store_dir, "xz"),
        str(top),
    )
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    mine = json.loads(nix_on(nix_store, target, "nix", "path-info", "--json", "-r", str(top)).stdout)
    theirs = json.loads(nix_store.text("nix", "path-info", "--json", "-r", str(top)))
    strip = lambda rows: sorted((r["path"], r["narHash"], r["narSize"], r["references"]) for r in rows)  # noqa: E731
    assert strip(mine) == strip(theirs)


@pytest.mark.parametrize("compression", ["xz", "zstd", "none"])
def test_storekit_reads_a_signed_cache_nix_wrote(
    nix_store: NixStore, tmp_path: Path, compression: str
) -> None:
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "nix-test-1")
    nix_store.run("nix", "store", "sign", "--key-file", str(key_file), "--recursive", str(top))
    cache = tmp_path / "cache"
    nix_store.run("nix", "copy", "--to", cache_uri(cache, nix_store.store_dir, compression), str(top))
    policy = SignaturePolicy.from_text(public)
    with open_store(cache_uri(cache, nix_store.store_dir, compression)) as src:
        assert isinstance(src, BinaryCacheStore)
        dst = side_store(tmp_path / "dst", nix_store.store_dir)
        with dst:
            result = copy_closure(src, dst, [top], policy=policy)
            assert len(result.copied) == 3
            infos = {p: dst.query_path_info(p) for p in dst.query_all_valid_paths()}
    target = fresh_nix_store(tmp_path / "dst", nix_store.store_dir)
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    nix_on(nix_store, target, "nix", "store", "verify", "--trusted-public-keys", public, "-r", str(top))
    theirs = {r["path"]: r for r in json.loads(nix_store.text("nix", "path-info", "--json", "-r", str(top)))}
    assert {str(p) for p in infos} == set(theirs)
    for path, info in infos.items():
        assert info.nar_hash.sri == theirs[str(path)]["narHash"]
        assert sorted(info.sigs) == theirs[str(path)]["signatures"]


def test_nix_substitutes_from_a_signed_cache_storekit_wrote(nix_store: NixStore, tmp_path: Path) -> None:
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "storekit-test-1")
    cache = cache_uri(tmp_path / "cache", nix_store.store_dir, "xz") + f"&secret-key={key_file}"
    with open_nix_store(nix_store) as src, open_store(cache) as dst:
        copy_closure(src, dst, [top])
    target = fresh_nix_store(tmp_path / "target", nix_store.store_dir)
    strict = ("--option", "require-sigs", "true", "--option", "trusted-public-keys")
    source = cache_uri(tmp_path / "cache", nix_store.store_dir, "xz")
    _, wrong = nix_key(nix_store, tmp_path, "other-1")
    refused = nix_on(
        nix_store, target, "nix", "copy", *strict, wrong, "--from", source, str(top), check=False
    )
    assert refused.returncode != 0 and "lacks a valid signature" in refused.stderr
    nix_on(nix_store, target, "nix", "copy", *strict, public, "--from", source, str(top))
    nix_on(nix_store, target, "nix-store", "--verify", "--check-contents")
    rows = json.loads(nix_on(nix_store, target, "nix", "path-info", "--json", "-r", str(top)).stdout)
    assert len(rows) == 3 and all(r["signatures"][0].startswith("storekit-test-1:") for r in rows)
