"""Checking a local store against its database, as `nix-store --verify [--check-contents] [--repair]`.

Every valid path must exist; with `check_contents` its NAR hash must match the DB and every `.links`
entry must hash to its name. What can be fixed locally is fixed with `repair`: a vanished path nobody
refers to is dropped from the DB (Nix does that even without `--repair`), corrupt `.links` entries are
removed, missing NAR sizes are filled in, and a modified path is restored from `substitute` when the
caller gives one (binary caches and other stores plug in there).

An overlay's upper store holds *borrowed* rows: lower paths registered so upper paths may refer to
them, with no files in the upper. `borrowed` tells `verify_store` which rows those are, so they are
neither reported as vanished nor dropped; whoever calls it checks them against the lower store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from storekit.errors import StoreError
from storekit.progress import Progress, ProgressEvent
from storekit.store import dbmarker
from storekit.store.local import LocalStore
from storekit.store.lock import lock_fd, open_lock_file
from storekit.storepath import StorePath

#: Gives a NAR of a path (e.g. from a substituter), or None when it has none.
Substitute = Callable[[StorePath], BinaryIO | None]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Problems found (`errors`, still there) and what was fixed (`fixed`), as messages for users."""

    errors: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def verify_store(
    store: LocalStore,
    *,
    check_contents: bool = False,
    repair: bool = False,
    substitute: Substitute | None = None,
    progress: Progress | None = None,
    borrowed: Callable[[StorePath], bool] | None = None,
) -> VerifyReport:
    errors: list[str] = []
    fixed: list[str] = []
    fd = open_lock_file(os.path.join(store.state_dir, "gc.lock"))
    try:
        lock_fd(fd, exclusive=False)  # no GC while we look: a consistent snapshot
        _check_foreign(store, repair, errors, fixed)
        present = set(os.listdir(store.real_dir))
        valid = _check_existence(store, present, repair, substitute, errors, fixed, borrowed)
        if check_contents:
            _check_links(store, repair, errors, fixed)
            for i, path in enumerate(sorted(valid)):
                if progress:
                    progress(ProgressEvent("verify", i, len(valid), item=str(path)))
                _check_contents(store, path, repair, substitute, errors, fixed)
    finally:
        os.close(fd)
    return VerifyReport(tuple(errors), tuple(fixed), len(store.query_all_valid_paths()))


def _check_existence(
    store: LocalStore,
    present: set[str],
    repair: bool,
    substitute: Substitute | None,
    errors: list[str],
    fixed: list[str],
    borrowed: Callable[[StorePath], bool] | None = None,
) -> set[StorePath]:
    """Nix's `verifyPath`: drop vanished paths whose referrers are all gone too (referrers first).

    Returns the paths whose files are here; borrowed rows count as present but are not returned.
    """
    existing: set[StorePath] = set()
    done: set[StorePath] = set()

    def visit(path: StorePath) -> None:
        if path in done:
            return
        done.add(path)
        if path.base_name in present:
            existing.add(path)
            return
        if borrowed is not None and borrowed(path):
            return
        can_invalidate = True
        for referrer in store.query_referrers(path) - {path}:
            visit(referrer)
            if referrer in existing:
                can_invalidate = False
        if can_invalidate:
            try:
                store.invalidate_and_delete(path)
            except StoreError as e:
                errors.append(f"path '{path}' disappeared, and it cannot be dropped: {e}")
                return
            fixed.append(f"path '{path}' disappeared, removed it from the database")
        elif repair and _repair(store, path, substitute):
            existing.add(path)
            fixed.append(f"path '{path}' disappeared, restored it")
        else:
            errors.append(f"path '{path}' disappeared, but it still has valid referrers!")

    for path in sorted(store.query_all_valid_paths()):
        visit(path)
    return existing


def _check_foreign(store: LocalStore, repair: bool, errors: list[str], fixed: list[str]) -> None:
    """Rows of another store dir in this database: two stores once shared this state dir."""
    foreign = store.foreign_rows()
    if not foreign:
        return
    dirs = sorted({os.path.dirname(p) for p in foreign})
    what = (
        f"the database in '{store.db_dir}' of store dir '{store.store_dir}' also registers "
        f"{len(foreign)} path(s) of store dir(s) {', '.join(repr(d) for d in dirs)} (e.g. '{foreign[0]}'): "
        "two stores shared this state dir"
    )
    if repair:
        store.drop_foreign_rows()
        fixed.append(
            f"{what}; removed those rows (their files are untouched: register them again by copying or "
            "relocating into a store with its own state dir)"
        )
        dbmarker.write_marker(store.db_dir, store.store_dir.path)
    else:
        errors.append(
            f"{what}; repair with `storekit store verify --repair --store '{store.uri}'`, which forgets "
            "those rows (files stay), then copy or relocate them again into a store with its own state dir"
        )


def _check_links(store: LocalStore, repair: bool, errors: list[str], fixed: list[str]) -> None:
    from storekit.nar.fs import hash_path

    with os.scandir(store.links_dir) as entries:
        links = sorted(e.path for e in entries)
    for link in links:
        got = hash_path(link)[0].nix32
        name = os.path.basename(link)
        if got == name:
            continue
        if repair:
            os.unlink(link)
            fixed.append(f"removed corrupt link '{link}' (its contents hash to '{got}')")
        else:
            errors.append(f"link '{link}' was modified! expected hash '{name}', got '{got}'")


def _check_contents(
    store: LocalStore,
    path: StorePath,
    repair: bool,
    substitute: Substitute | None,
    errors: list[str],
    fixed: list[str],
) -> None:
    from storekit.nar.fs import hash_path

    info = store.lookup_path_info(path)
    if info is None:
        return  # collected meanwhile
    current, size = hash_path(store.real_path(path), info.nar_hash.algo)
    if current != info.nar_hash:
        message = f"path '{path}' was modified! expected hash '{info.nar_hash}', got '{current}'"
        if not repair:
            errors.append(message)
        elif _repair(store, path, substitute):
            fixed.append(message + "; restored it")
        else:
            errors.append(message + "; cannot repair it: no substituter has it")
        return
    if info.nar_size == 0:
        store.update_path_info(info.replace(nar_size=size))
        fixed.append(f"updated the size of '{path}' to {size}")


def _repair(store: LocalStore, path: StorePath, substitute: Substitute | None) -> bool:
    if substitute is None:
        return False
    source = substitute(path)
    if source is None:
        return False
    with contextlib.closing(source):
        store.add_from_nar(store.query_path_info(path), source, repair=True)
    return True
