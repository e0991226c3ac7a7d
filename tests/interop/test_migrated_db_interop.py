"""A store database that newer Nix has migrated, read and written by storekit and by real Nix 2.8.

Nix >= 2.25 keeps fine-grained migrations in a `SchemaMigrations` table (`migration text primary
key`) instead of bumping the `schema` file; the ones a store meets: `20220326-ca-derivations` (Nix
2.8's `Realisations` tables), `20251017-ca-derivations` (`BuildTraceV3`: output paths as text, no
foreign key) and `20260309-drop-redundant-indexreferrer` (`drop index IndexReferrer`). These are the
facts of NixOS/nix's `src/libstore/local-store.cc` (`upgradeDBSchema`) and `ca-specific-schema.sql`;
the test applies them, as that Nix would, to a store real Nix 2.8 created, then checks that storekit
opens, reads, verifies, adds, collects garbage and reads the build trace, and that neither Nix 2.8
nor the migrated schema is left with anything it would not have written.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from nixoracle import NixStore

from storekit.store.gc import add_root, collect_garbage
from storekit.store.local import LocalStore
from storekit.store.schema import CA_SCHEMA_SQL
from storekit.store.specs import local_spec_for
from storekit.store.verify import verify_store

pytestmark = pytest.mark.interop

# What Nix >= 2.28 runs on an existing database (local-store.cc, upgradeDBSchema), as data.
MIGRATIONS = {
    "20251017-ca-derivations": """
        create table if not exists BuildTraceV3 (
            id integer primary key autoincrement not null,
            drvPath text not null,
            outputName text not null,
            outputPath text not null,
            signatures text
        );
        create index if not exists IndexBuildTraceV3 on BuildTraceV3(drvPath, outputName);
    """,
    "20260309-drop-redundant-indexreferrer": "drop index if exists IndexReferrer",
}


def migrate_like_newer_nix(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("create table SchemaMigrations (migration text primary key not null)")
    conn.execute("insert into SchemaMigrations values ('20220326-ca-derivations')")  # 2.8's CA tables
    for name, ddl in MIGRATIONS.items():  # each in one transaction, recorded with it
        conn.executescript(f"begin; {ddl}; insert or ignore into SchemaMigrations values ('{name}'); commit;")
    conn.close()


def objects(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("select name, coalesce(sql, '') from sqlite_master"))
    finally:
        conn.close()


def nix_verify(nix_store: NixStore) -> None:
    proc = subprocess.run(
        ["nix-store", "--store", nix_store.uri, "--verify", "--check-contents"],
        capture_output=True,
        env=nix_store.env(),
        check=False,
    )
    progress = {"reading the Nix store...", "checking path existence...", "checking link hashes..."}
    progress.add("checking store hashes...")
    problems = [line for line in proc.stderr.decode().splitlines() if line not in progress]
    assert proc.returncode == 0 and problems == [], proc.stderr.decode()


def test_a_database_newer_nix_migrated(nix_store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "dep").write_text("dependency\n")
    dep = nix_store.text("nix-store", "--add", str(tmp_path / "dep"))
    (tmp_path / "user.nix").write_text(
        f'derivation {{ name = "user"; system = "x"; builder = "/bin/sh"; d = builtins.storePath "{dep}"; }}'
    )
    drv = nix_store.text("nix-instantiate", str(tmp_path / "user.nix"))
    db = nix_store.state_dir / "db" / "db.sqlite"
    migrate_like_newer_nix(db)
    before = objects(db)
    assert "IndexReferrer" not in before and "SchemaMigrations" in before

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "insert into BuildTraceV3 (drvPath, outputName, outputPath, signatures) values (?, 'out', ?, ?)",
        (drv, dep, "cache-1:c2ln"),
    )
    conn.close()

    spec = local_spec_for(nix_store.store_dir, state_dir=str(nix_store.state_dir))
    with LocalStore(spec) as store:
        sd = store.store_dir
        assert store.query_path_info(sd.parse_path(drv)).references == {sd.parse_path(dep)}
        assert store.query_referrers(sd.parse_path(dep)) == {sd.parse_path(drv)}
        assert store._db.schema_migrations() == {"20220326-ca-derivations", *MIGRATIONS}
        assert store._db.build_trace(drv, "out") == (dep, "cache-1:c2ln")
        assert store._db.build_trace(drv, "dev") is None
        report = verify_store(store, check_contents=True)
        assert report.errors == ()
        (tmp_path / "new").write_text("written by storekit\n")
        added = store.add_path(str(tmp_path / "new"))
        assert store.is_valid_path(added)
        add_root(store, sd.parse_path(drv), str(tmp_path / "root"))  # keeps the .drv and its input
        result = collect_garbage(store)
        assert str(added) in result.paths and not store.is_valid_path(added)

    assert objects(db) == before  # nothing recreated (IndexReferrer), nothing dropped
    nix_verify(nix_store)  # and Nix 2.8 still reads every row
    assert nix_store.text("nix-store", "-q", "--references", drv) == dep


def test_realisations_of_nix_2_8_are_read_too(nix_store: NixStore, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("output\n")
    out = nix_store.text("nix-store", "--add", str(tmp_path / "out"))
    spec = local_spec_for(nix_store.store_dir, state_dir=str(nix_store.state_dir))
    with LocalStore(spec) as store:
        db = Path(store.db_dir) / "db.sqlite"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.executescript(CA_SCHEMA_SQL)  # what Nix 2.8 adds with ca-derivations enabled
        conn.execute(
            "insert into Realisations (drvPath, outputName, outputPath, signatures) "
            "select ?, 'out', id, '' from ValidPaths where path = ?",
            ("sha256:" + "1" * 64, out),
        )
        conn.close()
        assert store._db.build_trace("sha256:" + "1" * 64, "out") == (out, "")
        assert store._db.schema_migrations() == frozenset()
