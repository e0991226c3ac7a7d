"""Installing many staged paths into a local store at once: one lock pass, one DB transaction.

`LocalStore.install_staged` makes one path valid: its lock, a rename, canonicalisation, one SQLite
transaction. A closure of a thousand small paths pays that a thousand times on the one thread that
must register in dependency order. `install_staged_batch` does the same for a run of paths (each
after its references, which are valid or earlier in the run): every path's lock is held, every tree
moved into place and made canonical, then all rows are written in one transaction, so a crash leaves
either all of them valid or none (at worst unregistered directories, which the next add replaces and
`gc` removes, as with one path), never a path valid without its files or references.

Locks are taken without waiting: a path another process holds ends the run there, and that path is
then installed alone, waiting for its lock while holding no other. Two processes copying overlapping
closures in different orders therefore never wait for each other in a cycle.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storekit.store import canonical
from storekit.store.base import ValidPathInfo
from storekit.store.local import LocalStore, _new_path
from storekit.store.lock import path_lock


@dataclass(slots=True, eq=False)  # identity: a sink keeps the ones holding locks in a set
class Staged:
    """A checked tree waiting to become `info.path`: `lock`, when its path lock is already held (taken
    by whoever staged it, without waiting), `canonical` when the tree was made canonical in staging."""

    info: ValidPathInfo
    tree: str
    lock: contextlib.ExitStack | None = None
    canonical: bool = False
    checked: bool = False  # `LocalStore.check_info_alone` passed already (on the staging worker)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def take_lock(store: LocalStore, info: ValidPathInfo) -> contextlib.ExitStack | None:
    """`info.path`'s lock if nobody holds it (None otherwise, without waiting), to pass in a `Staged`."""
    stack = contextlib.ExitStack()
    if stack.enter_context(path_lock(store.real_path(info.path), wait=False)):
        return stack
    stack.close()
    return None


def install_staged_batch(
    store: LocalStore, items: Sequence[Staged], before_waiting: Callable[[], None] = lambda: None
) -> list[bool]:
    """Move each staged tree into place and register them; per item, False if it was already valid.

    The caller checked every tree against its info (hash, size, content address), as for
    `install_staged`; items are in dependency order. `before_waiting` runs before this waits for a
    lock another process holds: it must release every lock its caller holds for paths not yet
    installed (`Staged.release`), so that two processes never wait for each other in a cycle.
    """
    installed: list[bool] = []
    while len(installed) < len(items):
        rest = items[len(installed) :]
        with contextlib.ExitStack() as locks:
            run: list[Staged] = []
            for item in rest:
                if item.lock is not None:
                    locks.enter_context(item.lock)
                    item.lock = None
                elif not locks.enter_context(path_lock(store.real_path(item.info.path), wait=False)):
                    break
                run.append(item)
            if run:
                installed += _install_locked(store, run)
                continue
        before_waiting()
        for item in rest:
            item.release()
        installed.append(store.install_staged(rest[0].info, rest[0].tree))
    return installed


def _install_locked(store: LocalStore, run: list[Staged]) -> list[bool]:
    new = frozenset(item.info.path for item in run)
    outside = {ref for item in run for ref in item.info.references} - new
    valid = store.valid_among(outside | new)  # one query for the whole run
    for item in run:
        if not item.checked:
            store.check_info_alone(item.info)
        store._check_references(item.info, new, valid)
    db = store._db
    fresh = [item.info.path not in valid for item in run]
    rows = []
    for item, todo in zip(run, fresh, strict=True):
        if not todo:
            continue
        outputs = store._derivation_outputs(item.info, item.tree)
        real = store.real_path(item.info.path)
        try:
            _move_into_place(item, real)
        except OSError as e:  # an unregistered leftover of a killed add is in the way
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise
            canonical.make_movable(real)
            os.rename(real, f"{item.tree}-old")  # deleted with the staging dir
            _move_into_place(item, real)
        rows.append(_new_path(item.info, outputs))
    if rows:
        with db.transaction() as tx:
            tx.register(rows)
    return fresh


def _move_into_place(item: Staged, real: str) -> None:
    """Rename `item`'s tree to `real`, made canonical. What is at `real` is left alone when the rename
    fails (`OSError`: a directory, or a file where the tree is a directory); a file or an empty
    directory there is replaced (the caller holds the path's lock: it is a leftover either way)."""
    if item.canonical:
        _move_canonical(item.tree, real)
    else:
        canonical.make_movable(item.tree)
        os.rename(item.tree, real)
        canonical.canonicalise_path(real)


def _move_canonical(tree: str, real: str) -> None:
    """Rename a canonical tree into place. Moving a directory to another parent rewrites its `..`,
    which needs write permission on it, so a read-only directory is made writable while it moves:
    only once the plain rename was refused (never for a file, nor for root), which spares the
    `lstat` of every small path of a large copy."""
    try:
        os.rename(tree, real)
        return
    except PermissionError as e:
        denied = e
    st = os.lstat(tree)
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IWUSR:
        raise denied
    mode = stat.S_IMODE(st.st_mode)
    os.chmod(tree, mode | stat.S_IWUSR)
    try:
        os.rename(tree, real)
    except OSError:
        os.chmod(tree, mode)
        raise
    os.chmod(real, mode)
