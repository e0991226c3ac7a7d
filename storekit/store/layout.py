"""The directories and files of a local store on disk, created the way Nix 2.8's `LocalStore` does.

Creating exactly what Nix creates (and nothing it would trip over) means either tool can open a
store the other made first. Also here: the *staging* directories storekit writes new paths into,
and the clean-up of those a killed process left behind.
"""

from __future__ import annotations

import contextlib
import os

from storekit.errors import StoreError
from storekit.store import canonical
from storekit.store.lock import lock_fd

STAGING_PREFIX = ".storekit-tmp-"
#: A staging dir's name until it is locked (see `LocalStore.staging`): the sweep leaves it alone.
STAGING_NEW_PREFIX = STAGING_PREFIX + "new-"
RESERVED_SIZE = 8 << 20  # Nix's gc-reserved-space default


def create_layout(real_dir: str, state_dir: str) -> None:
    """`<real>/.links`, `<state>/{db,temproots,profiles/per-user,gcroots/per-user}`, gcroots/profiles."""
    gcroots = os.path.join(state_dir, "gcroots")
    profiles = os.path.join(state_dir, "profiles")
    db_dir = os.path.join(state_dir, "db")
    try:
        for d in (real_dir, os.path.join(real_dir, ".links"), db_dir, os.path.join(state_dir, "temproots")):
            os.makedirs(d, exist_ok=True)
        os.makedirs(profiles, exist_ok=True)
        if not os.path.isdir(gcroots):
            os.makedirs(gcroots, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.symlink(profiles, os.path.join(gcroots, "profiles"))
        for per_user in (os.path.join(profiles, "per-user"), os.path.join(gcroots, "per-user")):
            os.makedirs(per_user, exist_ok=True)
    except PermissionError as e:
        raise StoreError(
            f"cannot create the local store in '{real_dir}' (state '{state_dir}'): {e.strerror} on "
            f"'{e.filename}'; pick a store you can write to (--store or $STOREKIT_STORE)"
        ) from e
    _reserve_space(os.path.join(db_dir, "reserved"))


def _reserve_space(reserved: str) -> None:
    """Nix keeps `db/reserved` so a full disk can still be garbage-collected; keep its size (sparse)."""
    with contextlib.suppress(OSError):
        if not os.path.exists(reserved) or os.path.getsize(reserved) != RESERVED_SIZE:
            with open(reserved, "wb") as f:
                f.truncate(RESERVED_SIZE)


def remove_stale_staging(real_dir: str) -> int:
    """Delete staging dirs of processes that died (their flock is gone); returns how many."""
    removed = 0
    try:
        names = [
            n
            for n in os.listdir(real_dir)
            if n.startswith(STAGING_PREFIX) and not n.startswith(STAGING_NEW_PREFIX)
        ]
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(real_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            if lock_fd(fd, exclusive=True, wait=False):
                canonical.delete_path(path)
                removed += 1
        finally:
            os.close(fd)
    return removed
