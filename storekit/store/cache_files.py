"""A binary cache's files as a set that can be listed and deleted: what `storekit cache gc` works on.

`Transport` moves single named files and never deletes (a copy or a substituter has no business
deleting). Collecting garbage needs three more things: every file with its size and modification
time, deleting a batch of them, and a lock shared with other writers of the same cache. This module
gives them for a cache directory (`file://`, and `storekit cache serve --cache-dir`); `s3_files`
for an S3 bucket. An HTTP cache cannot be listed or deleted from.

A directory is read and changed relative to open directory descriptors, never following a symlink
in place of one of the cache's subdirectories (`nar/`, `log/` …): deleting must not reach outside the
cache the user named.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from storekit.errors import StoreError
from storekit.store.transport import FileTransport

#: A cache directory's lock: when this file exists at the top of the directory, every process that
#: changes the directory (`cache serve --cache-dir` storing or evicting, `cache gc` deleting) holds an
#: exclusive `flock` on it while it does; a plain `file://` cache without it needs no lock.
LOCK_FILE = ".storekit/lock"  # what `cache serve --cache-dir` creates (transfer/cache_dir.py)
#: How long `cache gc` waits for the lock before giving up with an error.
LOCK_TIMEOUT_S = 60.0
#: The subdirectories whose files belong to the cache (Nix's layout); `build-trace-v2/` has one level more.
SUBDIRS = ("nar", "log", "realisations", "debuginfo")
TRACE_DIR = "build-trace-v2"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class CacheFile:
    """One file of a cache: its name in the cache (`nar/….nar.xz`), size in bytes, mtime (epoch s)."""

    name: str
    size: int
    mtime: float


class CacheFiles(Protocol):
    """The files of one binary cache, listable and deletable (see the module docstring)."""

    uri: str
    read_jobs: int
    """How many files to read at once: 1 for a local directory, more where each read is a round trip."""

    def list_files(self) -> list[CacheFile]:
        """Every file of the cache's layout (top level, `nar/`, `log/`, `realisations/` …)."""
        ...

    def read(self, name: str) -> bytes | None:
        """A small file's bytes, or None when it is gone."""
        ...

    def delete(self, names: Sequence[str]) -> None:
        """Delete files that do not depend on each other (in any order); a file already gone is fine."""
        ...

    def sync(self) -> None:
        """Make the deletions so far durable before later ones (the order survives a power loss)."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclude the cache's other writers while held (when the cache has a lock)."""
        ...


class DirectoryFiles:
    """A cache in a local directory (`file://DIR`, or a cache server's `--cache-dir`)."""

    read_jobs = 1

    def __init__(self, root: str) -> None:
        self.root = root
        self.uri = f"file://{root}"
        self._dirty: set[str] = set()

    def _open_dir(self, relative: str) -> int | None:
        """A descriptor of a subdirectory, entered component by component without following symlinks."""
        fd = os.open(self.root, _DIR_FLAGS)
        for part in filter(None, relative.split("/")):
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    return None
                raise
            os.close(fd)
            fd = child
        return fd

    def _scan(self, relative: str, *, dirs: bool = False) -> list[tuple[str, os.stat_result]]:
        """(name, lstat) of the regular files (or, with `dirs`, the subdirectories) of a directory."""
        fd = self._open_dir(relative)
        if fd is None:
            return []
        try:
            found = []
            for entry in os.scandir(fd):
                st = entry.stat(follow_symlinks=False)
                if (stat.S_ISDIR if dirs else stat.S_ISREG)(st.st_mode):
                    found.append((entry.name, st))
            return found
        finally:
            os.close(fd)

    def list_files(self) -> list[CacheFile]:
        try:
            os.stat(self.root)
        except OSError as e:
            raise StoreError(
                f"binary cache '{self.uri}': cannot read its directory: {e.strerror or e}"
            ) from e
        try:
            found = [CacheFile(n, st.st_size, st.st_mtime) for n, st in self._scan("")]
            for sub in SUBDIRS:
                found += [CacheFile(f"{sub}/{n}", st.st_size, st.st_mtime) for n, st in self._scan(sub)]
            for drv, _ in self._scan(TRACE_DIR, dirs=True):
                where = f"{TRACE_DIR}/{drv}"
                found += [CacheFile(f"{where}/{n}", st.st_size, st.st_mtime) for n, st in self._scan(where)]
        except OSError as e:
            raise StoreError(f"binary cache '{self.uri}': cannot list its files: {e.strerror or e}") from e
        return sorted(found, key=lambda f: f.name)

    def read(self, name: str) -> bytes | None:
        return FileTransport(self.root).read(name)

    def delete(self, names: Sequence[str]) -> None:
        by_dir: dict[str, list[str]] = {}
        for name in names:
            directory, _, base = name.rpartition("/")
            by_dir.setdefault(directory, []).append(base)
        for directory, bases in by_dir.items():
            self._dirty.add(directory)
            fd = self._open_dir(directory)
            if fd is None:
                continue
            try:
                for base in bases:
                    self._unlink(fd, base, f"{directory}/{base}".lstrip("/"))
            finally:
                os.close(fd)

    def _unlink(self, dir_fd: int, base: str, name: str) -> None:
        try:
            os.unlink(base, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"binary cache '{self.uri}': cannot delete '{name}': {e.strerror or e}") from e

    def sync(self) -> None:
        """fsync the directories deleted from since the last sync."""
        while self._dirty:
            fd = self._open_dir(self._dirty.pop())
            if fd is not None:
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold `LOCK_FILE`'s exclusive `flock` if the directory has one (see `LOCK_FILE`)."""
        fd = self._open_dir("")
        if fd is None:
            yield
            return
        try:
            lock_fd = os.open(LOCK_FILE, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            lock_fd = None
        finally:
            os.close(fd)
        if lock_fd is None:
            yield
            return
        try:
            _flock(lock_fd, f"{self.root}/{LOCK_FILE}")
            yield
        finally:
            os.close(lock_fd)  # closing the last descriptor releases the flock


def _flock(fd: int, where: str) -> None:
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"'{where}' stayed locked by another process (a cache server storing or evicting?) "
                    f"for {LOCK_TIMEOUT_S:.0f} s; nothing was deleted, try again later"
                ) from None
            time.sleep(0.1)
