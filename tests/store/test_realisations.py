"""Realisations in a local store's database and in a binary cache, as Nix 2.8 keeps them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storekit.errors import StoreError
from storekit.realisation import DrvOutput, Realisation
from storekit.store.binary_cache import BinaryCacheStore, open_binary_cache
from storekit.store.local import LocalStore
from storekit.store.schema import SCHEMA_SQL, SCHEMA_VERSION
from storekit.store.specs import FileCacheSpec, local_spec_for, parse_store_spec
from storekit.storepath import StorePath

A = DrvOutput("out", "sha256:" + "a" * 64)
B = DrvOutput("out", "sha256:" + "b" * 64)


def open_local(root: Path) -> LocalStore:
    return LocalStore(local_spec_for(str(root / "store"), state_dir=str(root / "var" / "nix")))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    s = open_local(tmp_path)
    yield s
    s.close()


def add(store: LocalStore, name: str, refs: tuple[StorePath, ...] = ()) -> StorePath:
    return store.add_text(name, name.encode(), refs)


def test_register_and_query_with_dependencies(store: LocalStore) -> None:
    a = add(store, "a")
    b = add(store, "b", (a,))
    store.register_realisation(Realisation(a, id=A))
    store.register_realisation(Realisation(b, ("k:sig",), id=B, dependent={str(A): a}))
    assert store.query_realisation(A) == Realisation(a, id=A)
    assert store.query_realisation(B) == Realisation(b, ("k:sig",), id=B, dependent={str(A): a})
    assert store.query_realisation(DrvOutput("dev", A.drv_hash)) is None
    assert {str(r.id) for r in store.realisations_of_paths([a, b])} == {str(A), str(B)}
    # Nix's rows: the hash in `drvPath`, the output by id in `outputPath`
    db = sqlite3.connect(os.path.join(store.db_dir, "db.sqlite"))
    query = "select drvPath, outputName, v.path from Realisations r join ValidPaths v on v.id = outputPath"
    rows = db.execute(query)
    assert sorted(rows) == [(A.drv_hash, "out", str(a)), (B.drv_hash, "out", str(b))]
    assert db.execute("select count(*) from RealisationsRefs").fetchone() == (1,)


def test_realisation_closure_walks_every_dependency_once(store: LocalStore) -> None:
    # a diamond under a chain: D depends on B and C, both on A; E stands apart
    keys = {n: DrvOutput("out", "sha256:" + n.lower() * 64) for n in "ABCDE"}
    paths = {n: add(store, n.lower()) for n in "ABCDE"}
    deps = {"A": "", "B": "A", "C": "A", "D": "BC", "E": ""}
    for n in "ABCDE":
        dependent = {str(keys[d]): paths[d] for d in deps[n]}
        store.register_realisation(Realisation(paths[n], (f"k:{n}",), id=keys[n], dependent=dependent))
    found = store.realisation_closure([keys["D"]])
    assert sorted(str(r.id) for r in found) == sorted(str(keys[n]) for n in "ABCD")
    # each as query_realisation gives it: path, signatures, its own dependencies
    assert {str(r.id): r for r in found} == {str(keys[n]): store.query_realisation(keys[n]) for n in "ABCD"}
    both = store.realisation_closure([keys["B"], keys["E"], DrvOutput("dev", keys["A"].drv_hash)])
    assert sorted(str(r.id) for r in both) == sorted(str(keys[n]) for n in "ABE")
    assert store.realisation_closure([]) == []


def test_same_path_merges_signatures_another_is_refused(store: LocalStore) -> None:
    a, other = add(store, "a"), add(store, "other")
    store.register_realisation(Realisation(a, ("k1:x",), id=A))
    store.register_realisation(Realisation(a, ("k2:y",), id=A))
    found = store.query_realisation(A)
    assert found is not None and found.signatures == ("k1:x", "k2:y")
    with pytest.raises(StoreError, match="already has another one"):
        store.register_realisation(Realisation(other, id=A))


def test_dependencies_and_outputs_must_be_known(store: LocalStore) -> None:
    a, b = add(store, "a"), add(store, "b")
    with pytest.raises(StoreError, match="not registered"):
        store.register_realisation(Realisation(b, id=B, dependent={str(A): a}))
    store.register_realisation(Realisation(a, id=A))
    with pytest.raises(StoreError, match="this store has it at"):
        store.register_realisation(Realisation(b, id=B, dependent={str(A): b}))
    assert store.query_realisation(B) is None  # the failed registration left nothing
    gone = StorePath(store.store_dir, "c" * 32, "gone")
    with pytest.raises(StoreError, match="is not valid"):
        store.register_realisation(Realisation(gone, id=B))


def test_database_without_the_ca_tables_gets_them(tmp_path: Path) -> None:
    """Nix creates `Realisations` only with ca-derivations on; storekit adds them when needed."""
    db_dir = tmp_path / "var" / "nix" / "db"
    db_dir.mkdir(parents=True)
    db = sqlite3.connect(db_dir / "db.sqlite")
    db.executescript(SCHEMA_SQL)
    db.close()
    (db_dir / "schema").write_text(str(SCHEMA_VERSION))
    store = open_local(tmp_path)
    try:
        assert store.query_realisation(A) is None
        assert store.realisations_of_paths([]) == []
        assert store.realisation_closure([A]) == []
        assert not (db_dir / "ca-schema").exists()  # reading changes nothing
        a = add(store, "a")
        store.register_realisation(Realisation(a, id=A))
        assert store.query_realisation(A) == Realisation(a, id=A)
    finally:
        store.close()
    assert (db_dir / "ca-schema").read_text() == "3"
    conn = sqlite3.connect(db_dir / "db.sqlite")
    names = conn.execute("select name from sqlite_master where type = 'table'")
    assert {"Realisations", "RealisationsRefs"} <= {row[0] for row in names}


def test_binary_cache_writes_nix_json(tmp_path: Path, store: LocalStore) -> None:
    a, b = add(store, "a"), add(store, "b")
    cache = _cache(parse_store_spec(f"file://{tmp_path / 'cache'}?store={store.store_dir}"))
    value = Realisation(b, ("k:sig",), id=B, dependent={str(A): a}, json_keys=("id", "outPath"))
    cache.register_realisation(value)
    text = (tmp_path / "cache" / "realisations" / f"{B}.doi").read_text()
    assert text == json.dumps(
        {"dependentRealisations": {str(A): a.base_name}, "id": str(B), "outPath": b.base_name,
         "signatures": ["k:sig"]},
        separators=(",", ":"),
    )  # fmt: skip
    found = cache.query_realisation(B)
    assert found is not None
    assert (found.out_path, found.dependent, found.signatures) == (b, {str(A): a}, ("k:sig",))


def _cache(spec: object) -> BinaryCacheStore:
    assert isinstance(spec, FileCacheSpec)
    return open_binary_cache(spec)


def test_cli_names_what_is_missing(tmp_path: Path, store: LocalStore) -> None:
    """`storekit store realisation` of an output that has none, or that does not exist, says so."""
    from storekit.derivation.aterm import print_aterm
    from storekit.derivation.hashing import instantiate
    from storekit.derivation.model import Derivation, DerivationOutput

    template = Derivation(
        outputs={"out": DerivationOutput()}, system="x86_64-linux", builder="/bin/sh", env={"name": "x"}
    )
    path, drv = instantiate(template, store.store_dir, lambda p: template)
    assert store.add_text(path.name, print_aterm(drv).encode()) == path
    argv = [sys.executable, "-m", "storekit", "store", "realisation", "--store", store.uri]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent.parent)}
    for target, message in ((str(path), "output 'out' of"), (f"{path}!dev", "has no output 'dev'")):
        proc = subprocess.run([*argv, target], capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and message in proc.stderr
