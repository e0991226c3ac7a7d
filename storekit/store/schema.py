"""The store database: Nix 2.8's SQLite schema (version 10) and the queries a local store runs on it.

The DDL below is Nix's `schema.sql` and `ca-specific-schema.sql` verbatim, so the `sqlite_master` of
a store storekit created is identical to one real Nix created and each can open the other's. Paths are
stored as full logical store paths (`/opt/store/…`), hashes as `sha256:<base16>`, like Nix.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence

from storekit.errors import StoreError
from storekit.frozen import Frozen
from storekit.store import sqlite
from storekit.store.lock import group_shared

SCHEMA_VERSION = 10
CA_SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 3600.0  # Nix waits an hour for a busy database

_UPDATE_INFO = "update ValidPaths set narSize = ?, hash = ?, ultimate = ?, sigs = ?, ca = ? where path = ?"

SCHEMA_SQL = """\
create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer, -- null implies "false"
    sigs             text, -- space-separated
    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo
);

create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);

create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);

-- Paths can refer to themselves, causing a tuple (N, N) in the Refs
-- table.  This causes a deletion of the corresponding row in
-- ValidPaths to cause a foreign key constraint violation (due to `on
-- delete restrict' on the `reference' column).  Therefore, explicitly
-- get rid of self-references.
create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;

create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null, -- symbolic output id, usually "out"
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);

create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
"""

CA_SCHEMA_SQL = """\
-- Extension of the sql schema for content-addressed derivations.
-- Won't be loaded unless the experimental feature `ca-derivations`
-- is enabled

create table if not exists Realisations (
    id integer primary key autoincrement not null,
    drvPath text not null,
    outputName text not null, -- symbolic output id, usually "out"
    outputPath integer not null,
    signatures text, -- space-separated list
    foreign key (outputPath) references ValidPaths(id) on delete cascade
);

create index if not exists IndexRealisations on Realisations(drvPath, outputName);

create table if not exists RealisationsRefs (
    referrer integer not null,
    realisationReference integer,
    foreign key (referrer) references Realisations(id) on delete cascade,
    foreign key (realisationReference) references Realisations(id) on delete restrict
);

-- used by QueryRealisationReferences
create index if not exists IndexRealisationsRefs on RealisationsRefs(referrer);
-- used by cascade deletion when ValidPaths is deleted
create index if not exists IndexRealisationsRefsOnOutputPath on Realisations(outputPath);
"""


_set = object.__setattr__


class PathRow(Frozen):
    """One `ValidPaths` row plus its references, as strings (the store turns them into values).

    Frozen values written by hand, as `storekit.frozen` says why: every command opening a local
    store imports this module.
    """

    __slots__ = (
        "ca",
        "deriver",
        "hash",
        "id",
        "nar_size",
        "path",
        "references",
        "registration_time",
        "sigs",
        "ultimate",
    )
    __match_args__ = (
        "id",
        "path",
        "hash",
        "registration_time",
        "deriver",
        "nar_size",
        "ultimate",
        "sigs",
        "ca",
        "references",
    )
    id: int
    path: str
    hash: str
    registration_time: int
    deriver: str | None
    nar_size: int
    ultimate: bool
    sigs: str | None
    ca: str | None
    references: tuple[str, ...]

    def __init__(
        self,
        id: int,
        path: str,
        hash: str,
        registration_time: int,
        deriver: str | None,
        nar_size: int,
        ultimate: bool,
        sigs: str | None,
        ca: str | None,
        references: tuple[str, ...],
    ) -> None:
        _set(self, "id", id)
        _set(self, "path", path)
        _set(self, "hash", hash)
        _set(self, "registration_time", registration_time)
        _set(self, "deriver", deriver)
        _set(self, "nar_size", nar_size)
        _set(self, "ultimate", ultimate)
        _set(self, "sigs", sigs)
        _set(self, "ca", ca)
        _set(self, "references", references)


class NewPath(Frozen):
    """What `register` writes for one path; `outputs` fills `DerivationOutputs` for a `.drv`."""

    __slots__ = (
        "ca",
        "deriver",
        "hash",
        "nar_size",
        "outputs",
        "path",
        "references",
        "registration_time",
        "sigs",
        "ultimate",
    )
    __match_args__ = (
        "path",
        "hash",
        "nar_size",
        "references",
        "deriver",
        "registration_time",
        "ultimate",
        "sigs",
        "ca",
        "outputs",
    )
    path: str
    hash: str
    nar_size: int
    references: tuple[str, ...]
    deriver: str | None
    registration_time: int
    ultimate: bool
    sigs: str
    ca: str | None
    outputs: tuple[tuple[str, str], ...]

    def __init__(
        self,
        path: str,
        hash: str,
        nar_size: int,
        references: tuple[str, ...],
        deriver: str | None = None,
        registration_time: int = 0,
        ultimate: bool = False,
        sigs: str = "",
        ca: str | None = None,
        outputs: tuple[tuple[str, str], ...] = (),
    ) -> None:
        _set(self, "path", path)
        _set(self, "hash", hash)
        _set(self, "nar_size", nar_size)
        _set(self, "references", references)
        _set(self, "deriver", deriver)
        _set(self, "registration_time", registration_time)
        _set(self, "ultimate", ultimate)
        _set(self, "sigs", sigs)
        _set(self, "ca", ca)
        _set(self, "outputs", outputs)


def read_schema_version(db_dir: str) -> int:
    try:
        with open(os.path.join(db_dir, "schema"), "rb") as f:  # (a text file's codec lookup imports one)
            text = f.read().decode("ascii")
    except FileNotFoundError:
        return 0
    try:
        return int(text.strip())
    except ValueError:
        raise StoreError(f"'{db_dir}/schema' is corrupt (expected a number, got {text[:20]!r})") from None


def create_database(db_dir: str) -> None:
    """Create `db.sqlite` with Nix's schema, then write the `schema` file last (it marks success)."""
    conn = _connect(os.path.join(db_dir, "db.sqlite"))
    try:
        conn.executescript(SCHEMA_SQL)
        conn.executescript(CA_SCHEMA_SQL)
    finally:
        conn.close()
    if group_shared(db_dir):  # SQLite makes it 0644; its journals copy the database's mode
        os.chmod(os.path.join(db_dir, "db.sqlite"), 0o664)
    _write_atomically(os.path.join(db_dir, "ca-schema"), str(CA_SCHEMA_VERSION))
    _write_atomically(os.path.join(db_dir, "schema"), str(SCHEMA_VERSION))


class StoreDb:
    """A connection to one store's database; every method is one statement or one transaction."""

    def __init__(self, db_dir: str) -> None:
        version = read_schema_version(db_dir)
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"store database in '{db_dir}' has schema version {version}, but storekit only supports "
                f"{SCHEMA_VERSION} (Nix 2.x); open it once with a matching Nix to upgrade it"
            )
        if not os.access(db_dir, os.R_OK | os.W_OK):
            raise StoreError(f"store database directory '{db_dir}' is not writable by this user")
        self._path = os.path.join(db_dir, "db.sqlite")
        # Connections by thread id, from `_thread` rather than `threading` (a `threading.local`):
        # the `threading` module costs a short command a millisecond to import. A thread that
        # reuses a finished thread's id takes over its connection, idle since that thread ended.
        self._by_thread: dict[int, sqlite.Connection] = {}
        self._guard = _thread.allocate_lock()
        self._ca_tables = False  # seen once, they stay: neither Nix nor storekit drops them
        self._conn  # noqa: B018 - open now, so a broken database is reported by the constructor

    @property
    def _conn(self) -> sqlite.Connection:
        """One connection per thread: SQLite then arbitrates between threads as between processes."""
        me = _thread.get_ident()
        conn = self._by_thread.get(me)
        if conn is None:
            conn = _connect(self._path)
            with self._guard:
                self._by_thread[me] = conn
        return conn

    def close(self) -> None:
        with self._guard:
            for conn in self._by_thread.values():
                conn.close()
            self._by_thread.clear()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StoreDb]:
        """One write transaction; `begin immediate` so two writers queue instead of deadlocking."""
        self._conn.execute("begin immediate")
        try:
            yield self
        except BaseException:
            self._conn.execute("rollback")
            raise
        self._conn.execute("commit")

    # --- reads ------------------------------------------------------------------------------------

    def query_path(self, path: str) -> PathRow | None:
        row = self._conn.execute(
            "select id, hash, registrationTime, deriver, narSize, ultimate, sigs, ca "
            "from ValidPaths where path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        refs = self._conn.execute(
            "select path from Refs join ValidPaths on reference = id where referrer = ?", (row[0],)
        ).fetchall()
        return PathRow(
            id=row[0],
            path=path,
            hash=row[1],
            registration_time=row[2] or 0,
            deriver=row[3],
            nar_size=row[4] or 0,
            ultimate=row[5] == 1,
            sigs=row[6],
            ca=row[7],
            references=tuple(sorted(r[0] for r in refs)),
        )

    def closure(self, paths: Sequence[str]) -> set[str]:
        """The valid paths reachable from the valid ones among `paths` through references, in one
        recursive query per 500 paths (a build's input closure: not two queries per path in it)."""
        found: set[str] = set()
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            rows = self._conn.execute(
                "with recursive closure(id) as ("
                f"select id from ValidPaths where path in ({','.join('?' * len(chunk))}) "
                "union select reference from Refs join closure on referrer = closure.id) "
                "select path from ValidPaths where id in (select id from closure)",
                chunk,
            ).fetchall()
            found.update(r[0] for r in rows)
        return found

    def is_valid(self, path: str) -> bool:
        return self._id(path) is not None

    def valid_among(self, paths: list[str]) -> set[str]:
        """Which of `paths` are valid, in one query per 500: for a caller on a busy thread, where
        each query costs a turn at the GIL."""
        found: set[str] = set()
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"select path from ValidPaths where path in ({marks})", chunk)
            found.update(row[0] for row in rows)
        return found

    def referrers(self, path: str) -> list[str]:
        rows = self._conn.execute(
            "select path from Refs join ValidPaths on referrer = id "
            "where reference = (select id from ValidPaths where path = ?)",
            (path,),
        ).fetchall()
        return sorted(r[0] for r in rows)

    def all_paths(self) -> list[str]:
        return [r[0] for r in self._conn.execute("select path from ValidPaths")]

    def foreign_paths(self, prefix: str) -> list[str]:
        """Paths not starting with `prefix` (a store dir and '/'): rows another store put here."""
        query = "select path from ValidPaths where substr(path, 1, ?) != ? order by path"
        return [r[0] for r in self._conn.execute(query, (len(prefix), prefix))]

    def drop_foreign_paths(self, prefix: str) -> int:
        """Delete the rows `foreign_paths` gives, with every reference to them; returns how many."""
        where = "(select id from ValidPaths where substr(path, 1, ?) != ?)"
        args = (len(prefix), prefix)
        self._conn.execute(f"delete from Refs where reference in {where}", args)
        return self._conn.execute(f"delete from ValidPaths where id in {where}", args).rowcount

    def path_from_prefix(self, prefix: str) -> str | None:
        """Nix's `queryPathFromHashPart`: `path >= prefix limit 1`, then check the prefix."""
        row = self._conn.execute("select path from ValidPaths where path >= ? limit 1", (prefix,)).fetchone()
        return row[0] if row is not None and row[0].startswith(prefix) else None

    def derivation_outputs(self, drv: str) -> dict[str, str]:
        rows = self._conn.execute(
            "select d.id, d.path from DerivationOutputs d join ValidPaths v on d.drv = v.id where v.path = ?",
            (drv,),
        ).fetchall()
        return dict(rows)

    def schema_migrations(self) -> frozenset[str]:
        """The migrations Nix >= 2.25 recorded in `SchemaMigrations` (none for a Nix 2.8 database).

        storekit runs none of them and writes only what Nix 2.8's schema and every migrated one
        accept (the same `ValidPaths`/`Refs`/`DerivationOutputs` rows), so both keep reading the store.
        """
        if not self._has_table("SchemaMigrations"):
            return frozenset()
        return frozenset(r[0] for r in self._conn.execute("select migration from SchemaMigrations"))

    def build_trace(self, drv: str, output: str) -> tuple[str, str] | None:
        """(output path, signatures) recorded for one output of a CA derivation, in either layout.

        Newer Nix (migration 20251017-ca-derivations) keeps `BuildTraceV3` with the output path as
        text; Nix 2.8 to 2.34 keep `Realisations` pointing at a `ValidPaths` row.
        """
        if self._has_table("BuildTraceV3"):
            row = self._conn.execute(
                "select outputPath, signatures from BuildTraceV3 where drvPath = ? and outputName = ?",
                (drv, output),
            ).fetchone()
            if row is not None:
                return row[0], row[1] or ""
        if self._has_table("Realisations"):
            row = self._conn.execute(
                "select v.path, r.signatures from Realisations r join ValidPaths v on r.outputPath = v.id "
                "where r.drvPath = ? and r.outputName = ?",
                (drv, output),
            ).fetchone()
            if row is not None:
                return row[0], row[1] or ""
        return None

    def rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """One statement's rows: for the store's other tables (`store.realisations`)."""
        return [tuple(r) for r in self._conn.execute(sql, args).fetchall()]

    def ensure_ca_schema(self) -> None:
        """Nix's `migrateCASchema` from version 0: a database Nix made without `ca-derivations` has no
        `Realisations` table until one is needed (idempotent DDL, so a race is harmless)."""
        if not self.has_ca_tables():
            self._conn.executescript(CA_SCHEMA_SQL)
            _write_atomically(os.path.join(os.path.dirname(self._path), "ca-schema"), str(CA_SCHEMA_VERSION))
            self._ca_tables = True

    def has_ca_tables(self) -> bool:
        """Whether `Realisations` exists: asked of the database until it does (a read never creates
        it), then remembered, where each realisation read asked it again (a CA build reads dozens)."""
        if not self._ca_tables:
            self._ca_tables = self._has_table("Realisations")
        return self._ca_tables

    def _has_table(self, name: str) -> bool:
        query = "select 1 from sqlite_master where type = 'table' and name = ?"
        return self._conn.execute(query, (name,)).fetchone() is not None

    def valid_derivers(self, path: str) -> list[str]:
        rows = self._conn.execute(
            "select v.path from DerivationOutputs d join ValidPaths v on d.drv = v.id where d.path = ?",
            (path,),
        ).fetchall()
        return sorted(r[0] for r in rows)

    # --- writes (call inside `transaction()`) ---------------------------------------------------------

    def register(self, paths: Iterable[NewPath]) -> None:
        """Nix's `registerValidPaths`: insert or update each path, then add all references.

        The rows' ids are asked for a batch at a time (`_ids`), not a statement per path and reference:
        a copy registers runs of many small paths on the thread every other one waits for.
        """
        batch = list(paths)
        now = int(time.time())
        ids = self._ids([p.path for p in batch])
        for p in batch:
            if p.path in ids:
                self.update_info(
                    p.path, nar_hash=p.hash, nar_size=p.nar_size, sigs=p.sigs, ca=p.ca, ultimate=p.ultimate
                )
                continue
            cur = self._conn.execute(
                "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, ultimate, sigs, ca) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p.path,
                    p.hash,
                    p.registration_time or now,
                    p.deriver,
                    p.nar_size or None,
                    1 if p.ultimate else None,
                    p.sigs or None,
                    p.ca,
                ),
            )
            assert cur.lastrowid is not None
            ids[p.path] = cur.lastrowid
            if p.outputs:
                self._conn.executemany(
                    "insert or replace into DerivationOutputs (drv, id, path) values (?, ?, ?)",
                    [(cur.lastrowid, name, out) for name, out in p.outputs],
                )
        ids.update(self._ids(sorted({ref for p in batch for ref in p.references} - ids.keys())))
        refs = []
        for p in batch:
            referrer = ids[p.path]
            for ref in p.references:
                if ref not in ids:
                    raise StoreError(
                        f"cannot register a reference to '{ref}': that path is not valid in this store"
                    )
                refs.append((referrer, ids[ref]))
        if refs:  # one statement for the batch's references
            self._conn.executemany("insert or replace into Refs (referrer, reference) values (?, ?)", refs)

    def update_info(
        self, path: str, *, nar_hash: str, nar_size: int, sigs: str, ca: str | None, ultimate: bool
    ) -> None:
        self._conn.execute(
            _UPDATE_INFO,
            (nar_size or None, nar_hash, 1 if ultimate else None, sigs or None, ca, path),
        )

    def invalidate(self, path: str) -> None:
        """Remove a path; `Refs` rows go by cascade. The caller checks there are no other referrers."""
        try:
            self._conn.execute("delete from ValidPaths where path = ?", (path,))
        except sqlite.IntegrityError as e:
            raise StoreError(f"cannot invalidate '{path}': it is still referenced ({e})") from e

    # --- internals ------------------------------------------------------------------------------------

    def _ids(self, paths: list[str]) -> dict[str, int]:
        """The ids of those of `paths` that are valid, in one query per 500."""
        found: dict[str, int] = {}
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"select path, id from ValidPaths where path in ({marks})", chunk)
            found.update((path, int(id_)) for path, id_ in rows)
        return found

    def _id(self, path: str) -> int | None:
        row = self._conn.execute("select id from ValidPaths where path = ?", (path,)).fetchone()
        return None if row is None else int(row[0])


def _connect(path: str) -> sqlite.Connection:
    """Open like Nix's `SQLite` + `openDB`: foreign keys on, WAL, `synchronous = normal`."""
    try:
        conn = sqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("pragma foreign_keys = 1")
        conn.execute("pragma synchronous = normal")
        if conn.execute("pragma main.journal_mode").fetchone()[0] != "wal":
            conn.execute("pragma main.journal_mode = wal")
        conn.execute("pragma wal_autocheckpoint = 40000")
    except sqlite.Error as e:
        raise StoreError(f"cannot open the store database '{path}': {e}") from e
    return conn


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def sigs_text(sigs: Iterable[str]) -> str:
    return " ".join(sorted(sigs))
