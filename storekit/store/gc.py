"""Garbage collection of a local store: roots, liveness, deleting paths, as Nix 2.8's gc.cc does it.

Roots are symlinks (or files named after a store path) under `<state>/gcroots` and `<state>/profiles`;
a symlink pointing outside the store is an *indirect* root (`gcroots/auto/<hash>` -> `/home/u/result`
-> store path), dropped once its target disappears. Temporary roots of running processes
(`<state>/temproots/<pid>`) are honoured too, and so are runtime roots: paths running processes use,
found in `/proc` (see `runtime_roots`). Everything reachable from a root through references
(and, like Nix's default `keep-derivations = true`, the derivers of live paths) is live.

While collecting, the GC holds `gc.lock` exclusively and, like Nix, listens on
`<state>/gc-socket/socket` so processes (real Nix included) can still register new temporary roots.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator

from storekit import nixbase32
from storekit.errors import InvalidStorePath, StoreError
from storekit.fdtree import tree_size
from storekit.frozen import Frozen
from storekit.hashing import Hash
from storekit.store import canonical
from storekit.store.layout import STAGING_PREFIX, remove_stale_staging
from storekit.store.local import LocalStore
from storekit.store.lock import lock_fd, open_lock_file, read_temp_roots
from storekit.store.overlay_roots import overlay_roots
from storekit.storepath import StorePath

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from storekit.progress import Progress


_set = object.__setattr__


class GcResult(Frozen):
    """What a collection deleted (or, for a dry run, would delete) and the bytes that frees.

    A frozen value written by hand (`storekit.frozen`): `storekit build` adds its roots through
    this module.
    """

    __slots__ = ("bytes_freed", "dry_run", "other_entries", "paths")
    __match_args__ = ("paths", "bytes_freed", "dry_run", "other_entries")
    paths: tuple[str, ...]
    bytes_freed: int
    dry_run: bool
    other_entries: tuple[str, ...]

    def __init__(
        self,
        paths: tuple[str, ...] = (),
        bytes_freed: int = 0,
        dry_run: bool = False,
        other_entries: tuple[str, ...] = (),
    ) -> None:
        _set(self, "paths", paths)
        _set(self, "bytes_freed", bytes_freed)
        _set(self, "dry_run", dry_run)
        _set(self, "other_entries", other_entries)


# --- roots -------------------------------------------------------------------------------------------


def add_root(store: LocalStore, path: StorePath, link: str) -> str:
    """Nix's `addPermRoot`: `link` -> `path`, registered as an indirect root in `gcroots/auto`."""
    link = os.path.abspath(link)
    for d in (store.store_dir.path, store.real_dir):
        if link == d or link.startswith(d + "/"):
            raise StoreError(f"creating a garbage collector root ({link}) in the store is forbidden")
    store.query_path_info(path)
    if os.path.lexists(link) and not (os.path.islink(link) and _in_store(store, os.readlink(link))):
        raise StoreError(f"cannot create symlink '{link}': it already exists and is not a root")
    _make_symlink(link, str(path))
    _make_symlink(auto_root(store, link), link)
    return link


def auto_root(store: LocalStore, link: str) -> str:
    """Where `gcroots/auto` holds the indirect root for `link` (an absolute path), named as Nix names it."""
    return os.path.join(store.gcroots_dir, "auto", nixbase32.encode(Hash.of(link.encode(), "sha1").digest))


def _make_symlink(link: str, target: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    temp = f"{link}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    os.symlink(target, temp)
    os.replace(temp, link)


def find_roots(store: LocalStore) -> dict[StorePath, set[str]]:
    """The permanent roots: each valid rooted path with the links that root it."""
    roots: dict[StorePath, set[str]] = {}
    for top in (store.gcroots_dir, os.path.join(store.state_dir, "profiles")):
        for link, target in _walk_roots(store, top):
            with contextlib.suppress(InvalidStorePath):
                path = store.store_dir.to_store_path(target)[0]
                if store.is_valid_path(path):
                    roots.setdefault(path, set()).add(link)
    return roots


def _walk_roots(store: LocalStore, top: str) -> Iterator[tuple[str, str]]:
    """(link, store path it points at) for every root under `top`, removing stale `auto` links."""
    auto_dir = os.path.join(store.gcroots_dir, "auto")
    stack = [top]
    seen_dirs: set[tuple[int, int]] = set()
    while stack:
        path = stack.pop()
        try:
            st = os.stat(path) if path == top else os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with contextlib.suppress(OSError), os.scandir(path) as entries:
                stack.extend(e.path for e in entries)
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            if _in_store(store, target):
                yield path, target
                continue
            target = os.path.join(os.path.dirname(path), target)
            if not os.path.lexists(target):
                if path.startswith(auto_dir + "/"):
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                continue
            if os.path.islink(target) and _in_store(store, os.readlink(target)):
                yield target, os.readlink(target)
        elif stat.S_ISREG(st.st_mode):
            yield path, f"{store.store_dir.path}/{os.path.basename(path)}"


def _in_store(store: LocalStore, target: str) -> bool:
    return target.startswith(store.store_dir.path + "/")


# --- the collector -----------------------------------------------------------------------------------


class _RootsServer:
    """Nix's GC socket: clients send a store path per line, get `1` once it is safe to use."""

    def __init__(self, state_dir: str) -> None:
        # here, as socket below: `storekit build` adds roots through this module, and collects none
        import threading

        self.hash_parts: set[str] = set()
        self.mutex = threading.Lock()  # held while checking and deleting one path
        self._path = os.path.join(state_dir, "gc-socket", "socket")
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        import socket

        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self._path)
        os.chmod(self._path, 0o666)
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import threading

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                base = os.path.basename(line.decode(errors="replace").strip())
                with self.mutex:
                    self.hash_parts.add(base[:32])
                conn.sendall(b"1")

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        self._thread.join(timeout=5)


@contextlib.contextmanager
def collector(store: LocalStore) -> Iterator[_RootsServer]:
    fd = open_lock_file(os.path.join(store.state_dir, "gc.lock"))
    try:
        lock_fd(fd, exclusive=True)
        server = _RootsServer(store.state_dir)
        try:
            yield server
        finally:
            server.close()
    finally:
        os.close(fd)


def _live_paths(store: LocalStore, extra_hash_parts: Iterable[str]) -> set[StorePath]:
    from storekit.store.runtime_roots import find_runtime_roots  # (with `re`: not on `build -o`'s path)

    roots = set(find_roots(store)) | set(find_runtime_roots(store))
    for text in read_temp_roots(store.temproots_dir):
        with contextlib.suppress(InvalidStorePath):
            path = store.store_dir.parse_path(text)
            if store.is_valid_path(path):
                roots.add(path)
    for hash_part in extra_hash_parts:
        found = store.query_path_from_hash_part(hash_part)
        if found is not None:
            roots.add(found)
    roots |= overlay_roots(store)  # paths the overlays on this store reference
    return store.closure(roots, include_derivers=True)


def collect_garbage(
    store: LocalStore,
    *,
    dry_run: bool = False,
    max_freed: int | None = None,
    progress: Progress | None = None,
) -> GcResult:
    """Delete every path not reachable from a root, then unused `.links` entries and leftovers."""
    with collector(store) as server:
        live = _live_paths(store, ())
        temp_hashes = {os.path.basename(p)[:32] for p in read_temp_roots(store.temproots_dir)}
        dead = store.topo_sort(store.query_all_valid_paths() - live)
        deleted: list[str] = []
        keep: set[StorePath] = set()
        freed = 0
        for path in dead:
            if max_freed is not None and freed >= max_freed:
                break
            with server.mutex:
                if path in keep or path.hash_part in server.hash_parts or path.hash_part in temp_hashes:
                    # a new temp root: `dead` lists referrers first, so its closure is still here
                    keep |= store.closure([path])
                    continue
                if progress:
                    from storekit.progress import ProgressEvent  # (not at import: `storekit build`)

                    progress(ProgressEvent("gc", len(deleted), len(dead), item=str(path)))
                freed += _size_of(store.real_path(path)) if dry_run else store.invalidate_and_delete(path)
                deleted.append(str(path))
        others = _other_entries(store, temp_hashes | server.hash_parts)
        for name in others:
            full = os.path.join(store.real_dir, name)
            freed += _size_of(full) if dry_run else canonical.delete_path(full)
        if not dry_run:
            remove_stale_staging(store.real_dir)
            _delete_unused_links(store)
    return GcResult(tuple(deleted), freed, dry_run, tuple(others))


def delete_paths(store: LocalStore, paths: Iterable[StorePath], *, dry_run: bool = False) -> GcResult:
    """Nix's `--delete`: delete exactly `paths`, refusing any that is rooted or still referenced."""
    wanted = set(paths)
    for path in wanted:
        store.query_path_info(path)
    with collector(store):
        live = _live_paths(store, ())
        for path in sorted(wanted):
            if path in live:
                raise StoreError(
                    f"cannot delete path '{path}' since it is still alive (a GC root "
                    "or a live path refers to it); see `storekit store roots`"
                )
            users = sorted(str(r) for r in store.query_referrers(path) - wanted - {path})
            if users:
                raise StoreError(f"cannot delete path '{path}' because it is in use by {', '.join(users)}")
        order = store.topo_sort(wanted)
        freed = 0
        for path in order:
            freed += _size_of(store.real_path(path)) if dry_run else store.invalidate_and_delete(path)
    return GcResult(tuple(str(p) for p in order), freed, dry_run)


def _other_entries(store: LocalStore, protected_hashes: set[str]) -> list[str]:
    """Entries of the real dir that are not valid paths: leftovers of killed adds, stale `.lock`s."""
    result = []
    for name in sorted(os.listdir(store.real_dir)):
        if name == ".links" or name.startswith(STAGING_PREFIX) or name[:32] in protected_hashes:
            continue
        try:
            path = store.store_dir.parse_base_name(name)
        except InvalidStorePath:
            result.append(name)
            continue
        if not store.is_valid_path(path):
            result.append(name)
    return result


def _delete_unused_links(store: LocalStore) -> None:
    """A `.links` entry whose only link is itself is unused (as Nix's GC decides)."""
    with os.scandir(store.links_dir) as entries:
        for entry in entries:
            if entry.stat(follow_symlinks=False).st_nlink == 1:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _size_of(path: str) -> int:
    """Bytes deleting `path` would free, counted like `fsdelete.remove_tree` (any depth)."""
    return tree_size(path)
