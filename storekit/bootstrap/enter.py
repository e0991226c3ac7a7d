"""`storekit bootstrap enter`: a shell or a command with the built system as `/`, without root.

The book's `chroot "$LFS" /usr/bin/env -i … /bin/bash --login` needs root and mounts /dev, /proc,
/sys and /run by hand. Here bubblewrap does it in a user namespace: the rootfs tree's top-level
entries are bound read-only at `/` (its `bin -> usr/bin` links kept as links), the store at its own
path (the tree's links point there), a fresh /dev and /proc, and tmpfs for /tmp, /run, /root and
/home, so commands can write where a system expects to. Inside, the caller is uid 0.

Where the store lives under a directory the tree has too (`/var/tmp/…/store` and the tree's `/var`),
that directory is made on the tmpfs root and its own entries bound one by one, down to the store.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from storekit.bootstrap.driver import Bootstrap
from storekit.bootstrap.export import built_rootfs
from storekit.errors import StorekitError
from storekit.programs import which

#: Places a running system writes to: a tmpfs each (what the tree has there is hidden).
WRITABLE = ("tmp", "run", "root", "home", "var/tmp")
#: Made by bubblewrap itself.
SPECIAL = {"dev": "--dev", "proc": "--proc"}
ENV = {
    "PATH": "/usr/bin:/usr/sbin",
    "HOME": "/root",
    "TERM": "dumb",
    "LC_ALL": "POSIX",
    "PS1": "(lfs) \\u:\\w\\$ ",
}


def bwrap_argv(
    tree: str, store_dir: str, real_store: str, command: Sequence[str], term: str | None = None
) -> list[str]:
    """The bubblewrap command line that runs `command` with `tree` as `/` and the store inside."""
    bwrap = which("bwrap")
    if bwrap is None:
        raise StorekitError("enter needs bubblewrap (apt-get install bubblewrap)")
    args = [
        bwrap, "--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--unshare-ipc",
        "--unshare-uts", "--unshare-net", "--hostname", "lfs", "--die-with-parent",
    ]  # fmt: skip
    args += _mounts(tree, "", store_dir.strip("/"))
    for rel in WRITABLE:
        if os.path.isdir(os.path.join(tree, rel)) and not store_dir.strip("/").startswith(rel + "/"):
            args += ["--tmpfs", "/" + rel]
    args += ["--ro-bind", real_store, store_dir, "--clearenv"]
    for key, value in {**ENV, **({"TERM": term} if term else {})}.items():
        args += ["--setenv", key, value]
    return [*args, "--chdir", "/", "--", *command]


def _mounts(tree: str, rel: str, store: str) -> list[str]:
    """Bind each entry of `tree/rel`; descend (making directories) along the way to the store."""
    args: list[str] = []
    here = os.path.join(tree, rel) if rel else tree
    for name in sorted(os.listdir(here)):
        sub = f"{rel}/{name}" if rel else name
        real = os.path.join(here, name)
        if sub in SPECIAL:
            args += [SPECIAL[sub], "/" + sub]
        elif os.path.islink(real):
            args += ["--symlink", os.readlink(real), "/" + sub]
        elif store == sub or store.startswith(sub + "/"):
            args += ["--dir", "/" + sub, *_mounts(tree, sub, store)]
        elif sub in WRITABLE:
            continue  # a tmpfs, added after the tree
        elif sub == "nix-support" and not rel:
            continue  # the ownership manifest is the store's business, not the system's
        else:
            args += ["--ro-bind", real, "/" + sub]
    return args


def enter_argv(
    boot: Bootstrap, command: Sequence[str], term: str | None = None, rootfs: str | None = None
) -> list[str]:
    """`command` (default: a login shell) inside the profile's built system (the tree `rootfs`,
    default the last declared)."""
    tree_path = built_rootfs(boot, rootfs)
    tree = boot.store.real_path(tree_path)
    if not command:
        command = (
            ["/bin/bash", "--login"] if os.path.lexists(os.path.join(tree, "usr/bin/bash")) else ["/bin/sh"]
        )
    return bwrap_argv(tree, boot.store.store_dir.path, boot.store.real_dir, command, term)
