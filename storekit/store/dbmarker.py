"""One database, one store dir: the store dir a state dir belongs to, recorded beside its database.

Nix's schema has no place for the store dir (every row holds a full path, and Nix checks each against
the store dir it was opened with), so nothing stopped two stores from sharing a database: a plain-path
store `$PWD/c10` keeps its state in `$PWD/var/nix`, which is where the docs put the state of an
`/opt/store`, and `relocate --to $PWD/c10` then registered `$PWD/c10` paths in `/opt/store`'s
database, after which `store verify`, `store gc` and `nix-store --verify` of `/opt/store` all failed.

`db/storekit-store-dir` holds the store dir, written when the store is first opened by storekit
(created, or an existing database whose paths all belong to it). Opening the state for another store
dir is refused, naming both, before anything is written. Nix 2.8 ignores files it does not know in
`db/` (it reads only `db.sqlite`, `schema`, `big-lock` and `reserved`), so it reads these stores as before.
"""

from __future__ import annotations

import contextlib
import os
import posixpath

from storekit.errors import StoreError
from storekit.store import sqlite

MARKER = "storekit-store-dir"


def marker_path(db_dir: str) -> str:
    return os.path.join(db_dir, MARKER)


def read_marker(db_dir: str) -> str | None:
    """The store dir recorded for `db_dir`, or None when none is (a new store, or one made before)."""
    try:
        with open(marker_path(db_dir), encoding="utf-8") as f:
            return f.read().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise StoreError(f"cannot read '{marker_path(db_dir)}': {e.strerror or e}") from e


def check_before_open(db_dir: str, store_dir: str, spec: str) -> bool:
    """Refuse a state dir that belongs to another store dir; True when the marker is still to be written.

    Reads only: called before the store creates or writes anything.
    """
    recorded = read_marker(db_dir)
    if recorded is not None:
        if recorded != store_dir:
            raise StoreError(
                _mismatch(db_dir, store_dir, recorded, spec, f"recorded in '{marker_path(db_dir)}'")
            )
        return False
    database = os.path.join(db_dir, "db.sqlite")
    if not os.path.exists(database):
        return True
    try:
        foreign, own = _peek(database, store_dir)
    except sqlite.Error:
        return False  # unreadable here: the store's own open reports it; no marker yet
    if foreign is not None and not own:
        other = posixpath.dirname(foreign)
        raise StoreError(_mismatch(db_dir, store_dir, other, spec, f"its paths, e.g. '{foreign}'"))
    return foreign is None  # a mixed database gets no marker: `store verify` reports it


def write_marker(db_dir: str, store_dir: str) -> None:
    """Record `store_dir` for `db_dir` (atomically; a concurrent writer of the same value is fine)."""
    temp = os.path.join(db_dir, f".{MARKER}.{os.getpid()}")
    try:
        with open(temp, "w", encoding="utf-8") as f:
            f.write(store_dir + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temp, marker_path(db_dir))
    except PermissionError:
        return  # a read-only state dir (another user's store): checked again on every open
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _peek(database: str, store_dir: str) -> tuple[str | None, bool]:
    """(a path not under `store_dir`, whether any path is under it), from a read-only connection."""
    prefix = store_dir.rstrip("/") + "/"
    conn = sqlite.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(
            "select path from ValidPaths where substr(path, 1, ?) != ? limit 1", (len(prefix), prefix)
        ).fetchone()
        own = conn.execute(
            "select 1 from ValidPaths where substr(path, 1, ?) = ? limit 1", (len(prefix), prefix)
        ).fetchone()
    finally:
        conn.close()
    return (None if row is None else str(row[0])), own is not None


def _mismatch(db_dir: str, store_dir: str, other: str, spec: str, how: str) -> str:
    state = os.path.dirname(db_dir)
    return (
        f"the state dir '{state}' belongs to store dir '{other}' ({how}), not to '{store_dir}'; "
        f"a database serves one store dir: give '{store_dir}' its own state dir "
        f"(local?store={store_dir}&state=<dir>), or open '{other}' (store spec was '{spec}')"
    )
