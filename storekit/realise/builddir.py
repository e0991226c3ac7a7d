"""The host side of a build's `/build`: inside a private directory, locked while in use, reclaimed after.

A builder owns its `/build` and may `chmod 777` it. If that directory sat directly in `/tmp`, every
local user could then write into it, plant a tree, and swap a directory for a symlink while storekit
deletes it (Nix's CVE-2025-46415, CVE-2025-52991/52992/52993). So `/build` is `<top>/build`, where
`<top>` is `<tmp>/storekit-build-<name>-<random>`, mode 0700, which the builder never sees and so cannot
change; it holds the pasta pid file too. The directory is deleted with `fsdelete.remove_tree` (fd-
relative, no symlink followed, iterative), never by path.

`<top>` is flocked for as long as the build runs. It is created under a `.storekit-build-new-` name and
renamed once locked, so an unlocked `storekit-build-*` directory is always a leftover of a killed
process: `reclaim` deletes those (the next `storekit build`, and `storekit store gc`), except the ones
`--keep-failed` kept on purpose (marked `.kept`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Iterator

from storekit.errors import StorekitError
from storekit.frozen import Frozen
from storekit.store.deferred import later
from storekit.store.fsdelete import remove_tree
from storekit.store.lock import lock_fd
from storekit.tempdirs import make_temp_dir, temp_root

PREFIX = "storekit-build-"
_NEW_PREFIX = ".storekit-build-new-"
KEPT_MARK = ".kept"
#: Made in every build directory of this layout. Older storekit made `storekit-build-*` directories
#: too (0700, no lock, the build tree itself): a build of an older version still running must never
#: be taken for a killed one, so only directories holding this file are reclaimed.
OWN_MARK = ".storekit-builddir"
#: A `.storekit-build-new-` directory older than this was left between mkdir and rename by a kill.
_NEW_GRACE_S = 3600


_set = object.__setattr__


class BuildDir(Frozen):
    __slots__ = ("fd", "top")
    __match_args__ = ("top", "fd")
    top: str
    """The private directory (0700, locked); not visible in the sandbox."""
    fd: int
    """An open fd of `top`, holding its lock."""

    def __init__(
        self,
        top: str,
        fd: int,
    ) -> None:
        _set(self, "top", top)
        _set(self, "fd", fd)

    @property
    def build(self) -> str:
        """The host directory mounted at /build."""
        return os.path.join(self.top, "build")

    def file(self, name: str) -> str:
        """A path for storekit's own files of this build (the pasta pid file), beside /build."""
        return os.path.join(self.top, name)

    def keep(self) -> None:
        """Mark it kept (`--keep-failed`): `reclaim` leaves it alone."""
        os.close(
            os.open(KEPT_MARK, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        )


@contextlib.contextmanager
def build_dir(name: str, tmp_dir: str | None = None) -> Iterator[BuildDir]:
    """A fresh private build directory for derivation `name`; deleted at the end unless kept."""
    tmp = tmp_dir or temp_root()
    new = make_temp_dir(tmp, _NEW_PREFIX)  # 0700
    fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    deleting = False
    try:
        lock_fd(fd, exclusive=True)
        os.mkdir("build", 0o700, dir_fd=fd)
        os.close(os.open(OWN_MARK, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=fd))
        top = os.path.join(tmp, f"{PREFIX}{name}-{os.path.basename(new)[len(_NEW_PREFIX) :]}")
        os.rename(new, top)
        yield BuildDir(top, fd)
    finally:
        try:
            try:
                os.stat(KEPT_MARK, dir_fd=fd, follow_symlinks=False)
                kept = True
            except FileNotFoundError:
                kept = False
            if not kept:
                deleting = True  # the job closes fd: the dir stays locked until it is gone
                later(lambda: _remove_and_close(tmp, fd))
        finally:
            if not deleting:
                os.close(fd)


def _remove_and_close(tmp: str, fd: int) -> None:
    try:
        _remove_own(tmp, fd)
    finally:
        os.close(fd)


def _remove_own(tmp: str, fd: int) -> None:
    """Delete the directory `fd` names, wherever in `tmp` it is now (it was renamed once)."""
    st = os.fstat(fd)
    tmp_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in os.scandir(tmp_fd):
            if entry.name.startswith((PREFIX, _NEW_PREFIX)) and entry.inode() == st.st_ino:
                remove_tree(tmp_fd, entry.name)
                return
    finally:
        os.close(tmp_fd)


def reclaim(tmp_dir: str | None = None) -> int:
    """Delete the build directories of killed builds of this user in `tmp_dir`; returns how many.

    A directory counts when it is storekit's (its name), this user's and private (owner, mode 0700),
    not marked kept, and nobody holds its lock. Errors on one directory do not stop the others.
    """
    tmp = tmp_dir or temp_root()
    try:
        tmp_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    removed = 0
    try:
        for name in os.listdir(tmp_fd):
            if name.startswith(PREFIX) or name.startswith(_NEW_PREFIX):
                with contextlib.suppress(OSError, StorekitError):
                    removed += _reclaim_one(tmp_fd, name)
    finally:
        os.close(tmp_fd)
    return removed


def _reclaim_one(tmp_fd: int, name: str) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tmp_fd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EACCES):
            return 0
        raise
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700:
            return 0
        if name.startswith(_NEW_PREFIX) and time.time() - st.st_mtime < _NEW_GRACE_S:
            return 0
        with contextlib.suppress(FileNotFoundError):
            os.stat(KEPT_MARK, dir_fd=fd, follow_symlinks=False)
            return 0
        if name.startswith(PREFIX):
            try:
                os.stat(OWN_MARK, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return 0  # another layout's (an older storekit's build may be running in it)
        if not lock_fd(fd, exclusive=True, wait=False):
            return 0  # a live build
        remove_tree(tmp_fd, name)
        return 1
    finally:
        os.close(fd)
