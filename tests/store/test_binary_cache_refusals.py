"""Bad caches are refused with a message naming the path (and both hashes), and nothing becomes valid.

The caches are written by real Nix (`nix copy --to file://…`, signed with `nix store sign`), then
damaged the way a disk, a proxy or an attacker would: a flipped byte in a NAR, a truncated file, a
signature by an untrusted key, a cache for another store dir, a narinfo with a broken line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cache_helpers import build_closure, nix_key, side_store
from nixoracle import NixStore

from storekit.errors import HashMismatch, NarInfoError, SignatureError, StoreError, StorekitError
from storekit.narinfo import NarInfo
from storekit.store.open import open_store
from storekit.store.substituters import SignaturePolicy
from storekit.storepath import StoreDir, StorePath
from storekit.transfer.copy import copy_closure

pytestmark = pytest.mark.interop


@pytest.fixture
def signed_cache(nix_store: NixStore, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(top path, cache dir for compression, trusted policy): a signed closure in three caches."""
    top = build_closure(nix_store)
    key_file, public = nix_key(nix_store, tmp_path, "good-1")
    nix_store.run("nix", "store", "sign", "--key-file", str(key_file), "--recursive", str(top))
    caches = {}
    for compression in ("none", "xz"):
        caches[compression] = tmp_path / f"cache-{compression}"
        uri = f"file://{caches[compression]}?store={nix_store.store_dir}&compression={compression}"
        nix_store.run("nix", "copy", "--to", uri, str(top))
    return top, caches, SignaturePolicy.from_text(public)


def narinfo_of(cache: Path, path: StorePath) -> tuple[Path, NarInfo]:
    file = cache / f"{path.hash_part}.narinfo"
    return file, NarInfo.parse(file.read_text(), StoreDir(path.store_dir))


def copy_from(cache: Path, nix_store: NixStore, tmp_path: Path, top: StorePath, policy: SignaturePolicy):  # type: ignore[no-untyped-def]
    """Copy `top` from `cache` into a fresh store; returns (error, paths valid afterwards)."""
    dst = side_store(tmp_path / "dst", nix_store.store_dir)
    try:
        with (
            open_store(f"file://{cache}?store={nix_store.store_dir}") as src,
            pytest.raises(StorekitError) as caught,
        ):
            copy_closure(src, dst, [top], policy=policy)
        return caught.value, dst.query_all_valid_paths()
    finally:
        dst.close()


def test_a_tampered_uncompressed_nar_is_refused(signed_cache, nix_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    _, info = narinfo_of(caches["none"], top)
    nar = caches["none"] / info.url
    data = bytearray(nar.read_bytes())
    data[-200] ^= 0x01  # inside the 70000 zero bytes of `top/zeros`
    nar.write_bytes(bytes(data))
    error, valid = copy_from(caches["none"], nix_store, tmp_path, top, policy)
    assert isinstance(error, HashMismatch)
    assert str(top) in str(error) and str(info.nar_hash) in str(error) and error.got != error.expected
    assert top not in valid and len(valid) == 2  # its references were fine and are valid


def test_a_tampered_compressed_nar_is_refused_by_its_file_hash(signed_cache, nix_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    _, info = narinfo_of(caches["xz"], top)
    nar = caches["xz"] / info.url
    data = bytearray(nar.read_bytes())
    data[len(data) // 2] ^= 0x40
    nar.write_bytes(bytes(data))
    error, valid = copy_from(caches["xz"], nix_store, tmp_path, top, policy)
    assert isinstance(error, HashMismatch)  # reported by the file hash even when xz notices first
    assert str(top) in str(error) and info.url in str(error)
    assert error.expected == str(info.file_hash) and error.got != error.expected
    assert top not in valid


@pytest.mark.parametrize("compression", ["none", "xz"])
def test_a_truncated_nar_is_refused(signed_cache, nix_store, tmp_path, compression) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    _, info = narinfo_of(caches[compression], top)
    nar = caches[compression] / info.url
    data = nar.read_bytes()
    nar.write_bytes(data[: len(data) // 2])
    error, valid = copy_from(caches[compression], nix_store, tmp_path, top, policy)
    assert "truncated" in str(error) and str(top) in str(error)
    assert f"{len(data) // 2} of {len(data)} bytes" in str(error)
    assert top not in valid


def test_a_signature_by_an_untrusted_key_is_refused_before_any_transfer(
    signed_cache, nix_store, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    top, caches, _ = signed_cache
    _, other = nix_key(nix_store, tmp_path, "other-1")
    error, valid = copy_from(caches["xz"], nix_store, tmp_path, top, SignaturePolicy.from_text(other))
    assert isinstance(error, SignatureError)
    assert "lacks a valid signature" in str(error) and "good-1" in str(error) and "other-1" in str(error)
    assert re.search(rf"path '{re.escape(nix_store.store_dir)}/\w{{32}}-(dep|mid|top)'", str(error))
    assert valid == set()


def test_a_forged_signature_under_a_trusted_name_is_refused(signed_cache, nix_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    file, _info = narinfo_of(caches["xz"], top)
    forged = file.read_text().replace("NarSize: ", "NarSize: 1", 1)  # the signature no longer matches
    file.write_text(forged)
    error, valid = copy_from(caches["xz"], nix_store, tmp_path, top, policy)
    assert isinstance(error, SignatureError) and str(top) in str(error)
    assert valid == set()


def test_no_signature_at_all_is_refused_unless_sigs_are_not_required(
    signed_cache, nix_store, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    for narinfo in caches["xz"].glob("*.narinfo"):
        narinfo.write_text(
            "".join(line for line in narinfo.read_text().splitlines(True) if not line.startswith("Sig:"))
        )
    error, valid = copy_from(caches["xz"], nix_store, tmp_path, top, policy)
    assert isinstance(error, SignatureError) and "no signatures" in str(error)
    assert valid == set()
    with (
        side_store(tmp_path / "dst", nix_store.store_dir) as dst,
        open_store(f"file://{caches['xz']}?store={nix_store.store_dir}") as src,
    ):
        copy_closure(src, dst, [top], policy=SignaturePolicy(require_sigs=False))
        assert dst.is_valid_path(top)


def test_a_cache_for_another_store_dir_is_refused(signed_cache, nix_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _top, caches, _ = signed_cache
    with pytest.raises(StoreError) as caught:
        open_store(f"file://{caches['xz']}?store=/opt/other/store")
    message = str(caught.value)
    assert f"prefix '{nix_store.store_dir}'" in message and "'/opt/other/store'" in message


def test_a_corrupted_narinfo_is_refused(signed_cache, nix_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    top, caches, policy = signed_cache
    file, _ = narinfo_of(caches["xz"], top)
    file.write_text(file.read_text().replace("NarHash: sha256:", "NarHash: sha256:!!", 1))
    error, valid = copy_from(caches["xz"], nix_store, tmp_path, top, policy)
    assert isinstance(error, NarInfoError)
    assert str(file) in str(error) and "corrupt" in str(error)
    assert valid == set()
