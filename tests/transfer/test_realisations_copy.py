"""Realisations pushed with `copy_closure` and fetched for substitution, with Nix's signatures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.realisation import DrvOutput, Realisation
from storekit.signing import SecretKey
from storekit.store.binary_cache import BinaryCacheStore, open_binary_cache
from storekit.store.local import LocalStore
from storekit.store.specs import FileCacheSpec, local_spec_for, parse_store_spec
from storekit.store.substituters import SignaturePolicy, Substituters
from storekit.storepath import StorePath
from storekit.transfer.copy import copy_closure
from storekit.transfer.realisations import fetch_realisation, is_trusted, register_fetched, sign
from storekit.wire.common import realisation_fingerprint as fingerprint

A = DrvOutput("out", "sha256:" + "a" * 64)
B = DrvOutput("out", "sha256:" + "b" * 64)
STORE_DIR = "/opt/store"


def local(root: Path) -> LocalStore:
    return LocalStore(local_spec_for(STORE_DIR, state_dir=str(root / "var"), real_dir=str(root / "store")))


@pytest.fixture
def src(tmp_path: Path) -> Iterator[LocalStore]:
    s = local(tmp_path / "src")
    yield s
    s.close()


def cache(tmp_path: Path) -> BinaryCacheStore:
    return _cache(parse_store_spec(f"file://{tmp_path / 'cache'}?store={STORE_DIR}"))


def two_realisations(store: LocalStore) -> tuple[StorePath, StorePath]:
    a = store.add_text("a", b"a")
    b = store.add_text("b", str(a).encode(), [a])
    store.register_realisation(Realisation(a, id=A))
    store.register_realisation(Realisation(b, id=B, dependent={str(A): a}))
    return a, b


def test_copy_pushes_realisations_signed(tmp_path: Path, src: LocalStore) -> None:
    a, b = two_realisations(src)
    key = SecretKey.generate("test-1")
    dst = cache(tmp_path)
    copy_closure(src, dst, [b], sign_keys=[key])
    assert sorted(p.name for p in (tmp_path / "cache" / "realisations").iterdir()) == [f"{A}.doi", f"{B}.doi"]
    found = dst.query_realisation(B)
    assert found is not None and found.dependent == {str(A): a}
    policy = SignaturePolicy({key.name: key.public_key()}, require_sigs=True)
    assert is_trusted(found, policy)
    assert not is_trusted(found, SignaturePolicy({}, require_sigs=True))
    assert is_trusted(Realisation(b, id=B), SignaturePolicy({}, require_sigs=False))


def test_copy_between_local_stores_registers_dependencies_first(tmp_path: Path, src: LocalStore) -> None:
    a, b = two_realisations(src)
    dst = local(tmp_path / "dst")
    try:
        copy_closure(src, dst, [b])
        assert dst.query_realisation(B) == Realisation(b, id=B, dependent={str(A): a})
    finally:
        dst.close()


def test_fetch_and_register_with_dependencies(tmp_path: Path, src: LocalStore) -> None:
    a, b = two_realisations(src)
    key = SecretKey.generate("test-1")
    up = cache(tmp_path)
    copy_closure(src, up, [b], sign_keys=[key])
    subs = Substituters([up])
    strict = SignaturePolicy({key.name: key.public_key()}, require_sigs=True)
    assert fetch_realisation(subs, B, SignaturePolicy({}, require_sigs=True)) is None  # nobody vouches
    found = fetch_realisation(subs, B, strict)
    assert found is not None and found.out_path == b
    assert fetch_realisation(subs, DrvOutput("dev", B.drv_hash), strict) is None
    dst = local(tmp_path / "dst")
    try:
        copy_closure(subs, dst, [b], policy=SignaturePolicy(require_sigs=False))
        register_fetched(dst, subs, found, strict)
        got = dst.query_realisation(B)
        assert got is not None and got.dependent == {str(A): a}
        assert dst.query_realisation(A) is not None  # fetched as B's dependency
    finally:
        dst.close()


def test_fingerprint_is_the_json_without_signatures(src: LocalStore) -> None:
    a, _ = two_realisations(src)
    r = sign(Realisation(a, id=A), [SecretKey.generate("k")])
    assert fingerprint(r) == f'{{"dependentRealisations":{{}},"id":"{A}","outPath":"{a.base_name}"}}'
    assert r.signatures and r.signatures[0].startswith("k:")


def _cache(spec: object) -> BinaryCacheStore:
    assert isinstance(spec, FileCacheSpec)
    return open_binary_cache(spec)
