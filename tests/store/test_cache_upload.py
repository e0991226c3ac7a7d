"""Writing a NAR into a binary cache: small NARs are hashed inline, big ones ahead on a thread; both
are checked against the path's metadata before anything is published, and the NAR stream is let go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import HashMismatch
from storekit.hashing import Hash
from storekit.store.binary_cache import INLINE_NAR, BinaryCacheStore
from storekit.store.local import LocalStore
from storekit.store.open import open_store
from storekit.store.specs import local_spec_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = LocalStore(
        local_spec_for("/opt/store", state_dir=str(tmp_path / "var"), real_dir=str(tmp_path / "st"))
    )
    with s:
        yield s


@pytest.mark.parametrize("size", [100, INLINE_NAR + 4096])
def test_a_nar_is_checked_before_publishing_and_its_stream_closed(
    store: LocalStore, tmp_path: Path, size: int
) -> None:
    path = store.add_text("blob", os.urandom(size // 2).hex().encode(), [])
    info = store.query_path_info(path)
    assert (info.nar_size <= INLINE_NAR) == (size < INLINE_NAR)
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield from store.nar_from_path(path)
        finally:
            closed.append(True)

    with open_store(f"file://{tmp_path / 'cache'}?store=/opt/store&compression=none") as cache:
        assert isinstance(cache, BinaryCacheStore)
        with pytest.raises(HashMismatch):
            cache.upload_chunks(info.replace(nar_hash=Hash("sha256", bytes(32))), chunks())
        assert closed == [True]
        assert not list((tmp_path / "cache" / "nar").iterdir())
        narinfo = cache.upload_chunks(info, chunks())
        assert narinfo is not None and closed == [True, True]
        cache.publish(narinfo)
        assert cache.is_valid_path(path)
        assert (tmp_path / "cache" / narinfo.url).stat().st_size == info.nar_size
