"""Locks a local store shares with real Nix: `flock(2)` on the same files Nix uses.

- `<real path>.lock`: one writer per store path (Nix's `PathLocks`). A holder that is done deletes the
  file and writes one byte into it, so a waiter that then gets the lock on the unlinked file sees a
  non-empty file, knows it is stale and retries (Nix's protocol, kept so both tools interlock).
- `<state>/db/big-lock`: held shared while a store is open; exclusive only while creating the DB.
- `<state>/gc.lock`: shared while adding paths, exclusive while collecting garbage.
- `<state>/temproots/<pid>`: paths this process is adding, so a concurrent GC keeps them.

A process killed with SIGKILL loses its flocks with its file descriptors, so no lock outlives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from storekit.errors import StoreError


def group_shared(directory: str) -> bool:
    """Whether `directory` is group-writable: a store shared by a group (docs/shared-store.md).

    Files storekit creates there for every user to open again (lock files, the database) are then
    made group-writable too; otherwise they stay private to the user, as Nix makes them.
    """
    try:
        return bool(os.stat(directory).st_mode & 0o020)
    except OSError:
        return False


def open_lock_file(path: str, *, create: bool = True) -> int:
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    mode = 0o660 if create and group_shared(os.path.dirname(path) or ".") else 0o600
    try:
        return os.open(path, flags, mode)
    except OSError as e:
        raise StoreError(f"cannot open lock file '{path}': {e.strerror}") from e


def lock_fd(fd: int, *, exclusive: bool, wait: bool = True) -> bool:
    """flock `fd`; returns False instead of blocking when `wait` is False and someone else holds it."""
    op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(fd, op if wait else op | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock_fd(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def path_lock(real_path: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold Nix's lock on one store path for the duration of the block; the lock file goes afterwards.

    With `wait=False` the block gets False at once (holding nothing) when another holds the lock:
    a caller taking several locks at a time uses it, so two such callers never deadlock.
    """
    lock_path = real_path + ".lock"
    while True:
        fd = open_lock_file(lock_path)
        if not lock_fd(fd, exclusive=True, wait=wait):
            os.close(fd)
            yield False
            return
        if os.fstat(fd).st_size == 0:
            break
        os.close(fd)  # stale: its holder unlinked it after we opened it; take the new one
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.write(fd, b"d")
        os.close(fd)


class TempRoots:
    """This process's temporary GC roots file, `<state>/temproots/<pid>`, created on first use."""

    def __init__(self, temproots_dir: str) -> None:
        self._dir = temproots_dir
        self._fd: int | None = None

    def add(self, path: str) -> None:
        self.add_many([path])

    def add_many(self, paths: list[str]) -> None:
        if self._fd is None:
            self._fd = self._open()
        data = memoryview("".join(f"{path}\0" for path in paths).encode())
        while data:
            data = data[os.write(self._fd, data) :]

    def _open(self) -> int:
        name = os.path.join(self._dir, str(os.getpid()))
        while True:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)  # a file with our pid is stale: no two live processes share a pid
            fd = open_lock_file(name)
            lock_fd(fd, exclusive=True)
            if os.fstat(fd).st_size == 0:
                return fd
            os.close(fd)  # a GC deleted it between open and lock: try again

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._dir, str(os.getpid())))
            os.close(self._fd)
            self._fd = None


def read_temp_roots(temproots_dir: str) -> set[str]:
    """The temp roots of other live processes; files of dead ones (lockable) are removed, as Nix does.

    This process's own roots are skipped: it is the one collecting, so it is not adding meanwhile, and
    a long-lived process (or a test) must be able to collect what it added earlier.
    """
    roots: set[str] = set()
    try:
        names = os.listdir(temproots_dir)
    except FileNotFoundError:
        return roots
    for name in names:
        if name.startswith(".") or name == str(os.getpid()):
            continue
        path = os.path.join(temproots_dir, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if lock_fd(fd, exclusive=True, wait=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.write(fd, b"d")
                continue
            roots.update(_read_all(fd).decode(errors="replace").split("\0"))
        finally:
            os.close(fd)
    roots.discard("")
    return roots


def _read_all(fd: int) -> bytes:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
