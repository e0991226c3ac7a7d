"""A view of the host in which a store's files appear at its logical store dir (`storekit run`).

A store whose store dir is `/opt/store` but whose files live in `~/stores/opt` (Nix's `real=`) holds
programs that only work at `/opt/store`. Without root, the way to put them there is a mount namespace:
bubblewrap in a new user namespace builds a root in which everything of the host is bind-mounted at
its own place, except along the store dir's path, where directories are recreated and the real dir
is mounted at the store dir. Nothing on the host is created or changed, even when `/opt` does not
exist, which is why the host root is mirrored entry by entry (as nix-user-chroot does) rather than
bind-mounted whole with a mount point made inside it.

Pure: the host's directory listings come from a caller-given function.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence

Entry = tuple[str, str | None]
"""A directory entry: its name and, for a symlink, its target."""
ListDir = Callable[[str], Sequence[Entry]]


def view_args(store_dir: str, real_dir: str, listdir: ListDir) -> list[str]:
    """bwrap options (after the executable, before the command) that show `real_dir` at `store_dir`."""
    args = ["--unshare-user", "--die-with-parent"]
    parts = [p for p in store_dir.split("/") if p]
    current = "/"
    for depth, part in enumerate(parts):
        for name, target in sorted(listdir(current)):
            if name == part:
                continue
            path = posixpath.join(current, name)
            if target is not None:
                args += ["--symlink", target, path]
            elif depth == 0 and name == "dev":
                args += ["--dev-bind", path, path]
            else:
                args += ["--bind", path, path]
        current = posixpath.join(current, part)
        if depth < len(parts) - 1:
            args += ["--dir", current]
    args += ["--bind", real_dir, store_dir]
    return args
