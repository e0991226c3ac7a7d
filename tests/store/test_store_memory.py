"""The in-memory store: the same `Store` contract as the local store, for code written against `Store`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from storekit.errors import HashMismatch, StoreError
from storekit.hashing import Hash
from storekit.nar.fs import dump_path, hash_path
from storekit.store.base import ValidPathInfo
from storekit.store.export import export_paths, import_paths
from storekit.store.memory import MemoryStore
from storekit.store.open import open_store
from storekit.storepath import StoreDir


def test_memory_store_adds_and_serves_nars(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"data\n")
    store = open_store("memory://?store=/opt/store")
    assert isinstance(store, MemoryStore)
    p = store.add_path(str(tmp_path / "d"))
    assert p == StoreDir("/opt/store").make_source_path("d", hash_path(tmp_path / "d")[0])
    assert b"".join(store.nar_from_path(p)) == b"".join(dump_path(tmp_path / "d"))
    t = store.add_text("t", str(p).encode(), [p])
    assert store.closure([t]) == {t, p} and store.query_referrers(p) == {t}
    with pytest.raises(StoreError, match="in use by"):
        store.delete(p)


def test_memory_store_checks_hashes_and_references() -> None:
    store = MemoryStore(StoreDir("/opt/store"))
    nar = b"not really a nar"
    path = store.store_dir.make_text_path("x", Hash.of(b"x"))
    with pytest.raises(HashMismatch):
        store.add_from_nar(ValidPathInfo(path, Hash.of(b"other"), len(nar)), io.BytesIO(nar))
    ghost = store.store_dir.make_text_path("ghost", Hash.of(b"ghost"))
    with pytest.raises(StoreError, match="not valid"):
        store.add_from_nar(ValidPathInfo(path, Hash.of(nar), len(nar), frozenset({ghost})), io.BytesIO(nar))
    assert not store.query_all_valid_paths()


def test_export_from_memory_imports_into_memory() -> None:
    a = MemoryStore(StoreDir("/opt/store"))
    dep = a.add_text("dep", b"dep")
    top = a.add_text("top", str(dep).encode(), [dep])
    buf = io.BytesIO()
    export_paths(a, [top, dep], buf)
    b = MemoryStore(StoreDir("/opt/store"))
    assert import_paths(b, io.BytesIO(buf.getvalue())) == [dep, top]
    assert b.query_path_info(top).references == {dep}
