"""Trees of any depth, walked relative to directory descriptors, never following a symlink.

The depth of a tree is input (a NAR, a cache, a builder's output), so a walk must survive a tree
100,000 directories deep. Three things break there: recursion (`RecursionError` past ~1,000 levels),
one open descriptor per level (`EMFILE` past the descriptor limit) and full paths (`ENAMETOOLONG`
past `PATH_MAX`, 4,096 bytes). `DirChain` avoids all three: it keeps the chain from the root to the
current directory as (name, device, inode) with at most `KEEP` descriptors open, and going up re-opens
`..` of the child and checks that it is the directory that was left, so a directory moved during a
walk is an error, never a walk somewhere else. Paths are built only for messages.

`remove_tree` deletes with it (`unlinkat`/`rmdir` relative to the parent's descriptor, `O_NOFOLLOW`
everywhere), counting what it freed as Nix's `deletePath` does.
"""

from __future__ import annotations

import contextlib
import os
import stat

from storekit.errors import FileSystemError

TYPE_CHECKING = False  # `collections.abc` only for the type checker: `storekit hash path` imports this
if TYPE_CHECKING:
    from collections.abc import Iterator

KEEP = 32
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SHOWN_MAX = 240

StrPath = str | os.PathLike[str] | bytes


class DirChain:
    """The directories from a root down to the current one; `fd` is the current one's descriptor.

    The root's descriptor is owned by the chain (closed by `close`), as is every one below it.
    """

    __slots__ = ("_fds", "_ids", "_low", "_names", "root")

    def __init__(self, root: bytes, fd: int) -> None:
        st = os.fstat(fd)
        self.root = root
        self._names: list[bytes] = []
        self._fds = [fd]
        self._ids = [(st.st_dev, st.st_ino)]
        self._low = 1  # descriptors below this index (except the root's) are closed

    @classmethod
    def open(cls, root: bytes, dir_fd: int | None = None, name: bytes | None = None) -> DirChain:
        """Open `root` (or `name` in `dir_fd`, shown as `root`) as a directory, not following a symlink."""
        fd = os.open(root if name is None else name, DIR_FLAGS, dir_fd=dir_fd)
        return cls(root, fd)

    @property
    def fd(self) -> int:
        return self._fds[-1]

    @property
    def depth(self) -> int:
        return len(self._names)

    @property
    def name(self) -> bytes:
        """The current directory's name in its parent (the root's path at depth 0)."""
        return self._names[-1] if self._names else self.root

    def push(self, name: bytes, fd: int | None = None) -> int:
        """Descend into directory `name` of the current one (`fd`: already opened by the caller)."""
        if fd is None:
            fd = os.open(name, DIR_FLAGS, dir_fd=self._fds[-1])
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        self._names.append(name)
        self._fds.append(fd)
        self._ids.append((st.st_dev, st.st_ino))
        if len(self._fds) - self._low > KEEP:
            os.close(self._fds[self._low])
            self._fds[self._low] = -1
            self._low += 1
        return fd

    def pop(self) -> None:
        """Go back up to the parent, re-opening it through `..` if its descriptor was closed."""
        assert self._names, "pop at the root"
        child = self._fds[-1]
        if self._fds[-2] < 0:
            parent = os.open(b"..", DIR_FLAGS, dir_fd=child)
            st = os.fstat(parent)
            if (st.st_dev, st.st_ino) != self._ids[-2]:
                os.close(parent)
                shown = show_path(self.path())
                raise FileSystemError(shown, f"directory '{shown}' was moved while being walked")
            self._fds[-2] = parent
            self._low = len(self._fds) - 2
        os.close(child)
        self._names.pop()
        self._fds.pop()
        self._ids.pop()

    def path(self, name: bytes | None = None) -> bytes:
        """The current directory's path (or its entry `name`'s), for messages only."""
        parts = [self.root, *self._names]
        if name is not None:
            parts.append(name)
        return b"/".join(parts)

    def close(self) -> None:
        for fd in self._fds:
            if fd >= 0:
                os.close(fd)
        self._fds = [-1]
        self._names.clear()


def show_path(path: bytes) -> str:
    """A path for a one-line message: very deep ones keep their start and end around `/…/`."""
    text = os.fsdecode(path)
    if len(text) <= _SHOWN_MAX:
        return text
    return text[: _SHOWN_MAX // 3] + "/…/" + text[-(_SHOWN_MAX * 2 // 3) :]


def fs_error(doing: str, path: bytes, e: OSError) -> FileSystemError:
    """`<doing> '<path>': <reason>`, like Nix's messages, with a very deep path shortened."""
    shown = show_path(path)
    return FileSystemError(shown, f"{doing} '{shown}': {e.strerror or e}")


def list_names(fd: int) -> list[bytes]:
    """The entries of the directory open as `fd`, as bytes."""
    return [os.fsencode(n) for n in os.listdir(fd)]


# --- deletion ------------------------------------------------------------------------------------


def remove_tree(path: StrPath) -> int:
    """Delete `path` and everything under it, never following a symlink; returns the bytes freed.

    Read-only directories (a store's) are made writable first. A missing `path` frees 0 bytes.
    Freed bytes are counted like Nix's `deletePath`: a file counts unless it has other hard links
    (`.links` holds one, so a file with two links is freed with its last path).
    """
    p = os.fsencode(path)
    parent, name = os.path.split(p.rstrip(b"/") or p)
    try:
        parent_fd = os.open(parent or b".", DIR_FLAGS & ~os.O_NOFOLLOW)
    except FileNotFoundError:
        return 0
    try:
        return _remove_entry(parent_fd, name, p)
    except OSError as e:
        shown = show_path(p)
        raise FileSystemError(shown, f"deleting '{shown}': {e.strerror or e}") from e
    finally:
        os.close(parent_fd)


def _remove_entry(parent_fd: int, name: bytes, shown: bytes) -> int:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent_fd)
        return _freed(st)
    chain = DirChain(shown, _open_writable(parent_fd, name))
    freed = 0
    try:
        pending = [list_names(chain.fd)]
        while pending:
            names = pending[-1]
            if not names:
                pending.pop()
                if chain.depth:
                    done = chain.name
                    chain.pop()
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(done, dir_fd=chain.fd)
                continue
            entry = names.pop()
            try:
                est = os.stat(entry, dir_fd=chain.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(est.st_mode):
                chain.push(entry, _open_writable(chain.fd, entry))
                pending.append(list_names(chain.fd))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry, dir_fd=chain.fd)
                freed += _freed(est)
    finally:
        chain.close()
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=parent_fd)
    return freed


def _freed(st: os.stat_result) -> int:
    return st.st_size if st.st_nlink <= 2 else 0


def _open_writable(dir_fd: int, name: bytes) -> int:
    """Open directory `name` (no symlink followed) and give its owner rwx, so its entries can go."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # unreadable (mode 0): change it through an O_PATH descriptor, which needs no permission
        pfd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
        try:
            mode = stat.S_IMODE(os.fstat(pfd).st_mode)
            os.chmod(f"/proc/self/fd/{pfd}", mode | 0o700)
        finally:
            os.close(pfd)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o700 != 0o700:
        os.fchmod(fd, mode | 0o700)
    return fd


def tree_size(path: StrPath) -> int:
    """The bytes `remove_tree(path)` would free, found the same way but changing nothing."""
    p = os.fsencode(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return _freed(st)
    try:
        chain = DirChain.open(p)
    except OSError:
        return 0
    return sum(_freed(st) for _, st in walk_below(chain, skip_vanished=True) if not stat.S_ISDIR(st.st_mode))


def walk_below(chain: DirChain, *, skip_vanished: bool = False) -> Iterator[tuple[bytes, os.stat_result]]:
    """Every entry under the directory `chain` is at, each directory before its entries.

    Yields `(name, lstat)` while `chain.fd` is the entry's directory; a directory is entered only
    after the caller is done with it (so it may make it readable first). `skip_vanished` passes over
    entries that disappear or cannot be entered meanwhile. The chain is closed at the end.
    """
    try:
        pending = [list_names(chain.fd)]
        while pending:
            if not pending[-1]:
                pending.pop()
                if chain.depth:
                    chain.pop()
                continue
            name = pending[-1].pop()
            try:
                st = os.stat(name, dir_fd=chain.fd, follow_symlinks=False)
            except (FileNotFoundError, PermissionError):
                if skip_vanished:
                    continue
                raise
            yield name, st
            if stat.S_ISDIR(st.st_mode):
                try:
                    chain.push(name)
                except (FileNotFoundError, PermissionError):
                    if skip_vanished:
                        continue
                    raise
                pending.append(list_names(chain.fd))
    finally:
        chain.close()
