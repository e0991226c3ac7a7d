"""Small input files and symlinks placed in the builder's store dir, instead of one mount each.

Nix 2.8 bind-mounts an input *directory* into its chroot but hard-links an input *file* (and copies it
when the link fails). A bind mount costs bubblewrap two mount calls (bind, then read-only), which the
kernel serialises on the namespace's mount lock; a chain of builds whose outputs are files mounts every
earlier output in every later build, so the cost grows with the square of the chain's length.

storekit cannot hard-link: its builder runs as the store's owner (uid 1000 in the sandbox maps to the
calling user), so it could `chmod` the shared inode and write the store's file. A copy is the
builder's own: writing it changes nothing outside this build, and the scratch store dir it lives in
is removed with the build (`output_copy.copy_outputs`, `runner._discard`). A copy looks as the store
file does: the same bytes, mode 0444 or 0555, mtime 1. A symlink is recreated with its own target,
which is also truer than a bind mount: bubblewrap would mount whatever the link points to on the host.

Files over `MAX_COPY` bytes and directories stay bind mounts: copying them would cost more than the
two mount calls it saves.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from storekit.errors import StoreError

#: The largest input file copied rather than bind-mounted (a bind costs about as much as copying this).
MAX_COPY = 64 * 1024

#: A store file's mtime (Nix's canonical 1 second), kept by the copies: builds compare mtimes.
_MTIME_NS = 1_000_000_000


def place_inputs(scratch: str, inputs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Copy into `scratch` (the builder's store dir) each input that is a symlink or a regular file of
    at most `MAX_COPY` bytes; return the other `(physical, logical)` inputs, to be bind-mounted."""
    mounts = []
    scratch_fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for physical, logical in inputs:
            name = os.path.basename(logical)
            try:
                placed = _place(scratch_fd, physical, name)
            except FileExistsError:  # left by an attempt whose sandbox could not be set up
                os.unlink(name, dir_fd=scratch_fd)
                placed = _place(scratch_fd, physical, name)
            if not placed:
                mounts.append((physical, logical))
    finally:
        os.close(scratch_fd)
    return tuple(mounts)


def _place(scratch_fd: int, physical: str, name: str) -> bool:
    """Copy or recreate `physical` as `name` in the scratch dir; False when it is to be mounted."""
    st = os.lstat(physical)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(physical), name, dir_fd=scratch_fd)
        os.utime(name, ns=(_MTIME_NS, _MTIME_NS), dir_fd=scratch_fd, follow_symlinks=False)
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_COPY:
        _copy_file(physical, st.st_size, scratch_fd, name, 0o555 if st.st_mode & 0o100 else 0o444)
        return True
    return False


def _copy_file(physical: str, size: int, scratch_fd: int, name: str, mode: int) -> None:
    """A store file is never written again, so one read of its size (and one more byte, which finds the
    end) is all of it; a file that changed since the lstat is refused rather than copied in part."""
    src = os.open(physical, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = os.read(src, size + 1)
    finally:
        os.close(src)
    if len(data) != size:
        raise StoreError(
            f"store path '{physical}' changed while it was copied into a build "
            f"({size} bytes, then {len(data)})"
        )
    dst = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=scratch_fd
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]
        os.fchmod(dst, mode)
        os.utime(dst, ns=(_MTIME_NS, _MTIME_NS))
    finally:
        os.close(dst)
