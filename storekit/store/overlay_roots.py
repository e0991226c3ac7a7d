"""The lower store's registry of overlay uppers, and the GC roots it gives: what the uppers still hold.

Several overlay stores may share one lower store. Each upper registers itself in
`<lower state>/overlay-uppers/` (one file naming its database); the lower's GC treats every path an
upper database holds as a root, as it does runtime roots (`runtime_roots`), so it never deletes a path
an upper still references. Kept apart from `overlay` (the store) because the GC needs these roots
while the overlay store calls the GC: in one module they were an import cycle.
"""

from __future__ import annotations

import contextlib
import os

from storekit import nixbase32
from storekit.errors import InvalidStorePath, StoreError
from storekit.hashing import Hash
from storekit.store import sqlite
from storekit.store.base import Store
from storekit.store.local import LocalStore
from storekit.storepath import StorePath

ROOTS_DIR = "overlay-uppers"


def register_upper(lower: Store, upper: LocalStore) -> bool:
    """Record `upper`'s database in the lower's state dir; False if the lower is not local or read-only."""
    if not isinstance(lower, LocalStore):
        return False
    directory = os.path.join(lower.state_dir, ROOTS_DIR)
    name = nixbase32.encode(Hash.of(upper.db_dir.encode(), "sha1").digest)
    target = os.path.join(directory, name)
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.path.exists(target):
            temp = f"{target}.tmp-{os.getpid()}"
            with open(temp, "w", encoding="utf-8") as f:
                f.write(upper.db_dir + "\n")
            os.replace(temp, target)
    except PermissionError:
        return False
    return True


def overlay_roots(lower: LocalStore) -> set[StorePath]:
    """The lower's paths that registered upper stores hold; the lower's GC keeps them (and their closure).

    A registration whose upper database is gone is removed. One that cannot be read stops the GC
    (raises), since collecting without it could delete what an upper needs.
    """
    directory = os.path.join(lower.state_dir, ROOTS_DIR)
    try:
        names = sorted(n for n in os.listdir(directory) if ".tmp-" not in n)
    except FileNotFoundError:
        return set()
    roots: set[StorePath] = set()
    for name in names:
        registration = os.path.join(directory, name)
        with open(registration, encoding="utf-8") as f:
            db_dir = f.read().strip()
        db_file = os.path.join(db_dir, "db.sqlite")
        if not os.path.exists(db_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(registration)
            continue
        for text in _upper_paths(db_file, registration):
            with contextlib.suppress(InvalidStorePath):
                path = lower.store_dir.parse_path(text)
                if lower.is_valid_path(path):
                    roots.add(path)
    return roots


def _upper_paths(db_file: str, registration: str) -> list[str]:
    try:
        conn = sqlite.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30)
        try:
            return [row[0] for row in conn.execute("select path from ValidPaths")]
        finally:
            conn.close()
    except sqlite.Error as e:
        raise StoreError(
            f"cannot read the database '{db_file}' of an overlay's upper store registered in "
            f"'{registration}': {e}; the lower store's GC will not run without it (delete that file "
            "if the overlay is gone)"
        ) from e
