"""The `--cache-dir` of a pull-through `cache serve`: a plain binary cache directory plus LRU bookkeeping.

The layout is what `nix copy --to file://D` writes, so real Nix, nginx and `storekit cache gc` read
the directory as a `file://` cache, and a server can start on a cache Nix or storekit filled:

    D/nix-cache-info              StoreDir, WantMassQuery, Priority
    D/<hash part>.narinfo         one per cached path; its URL is nar/<file hash>.nar[.xz|.zst|.bz2]
    D/nar/<file hash>.nar[.ext]   the NAR file as the upstream served it, verified; its name is the
                                  nix-base32 sha256 of its bytes (the narinfo's FileHash)
    D/nar/.tmp-*                  downloads in progress, renamed into place once verified
    D/.storekit/lock              flock(2)ed exclusively around every change (below)
    D/.storekit/server.lock       flock(2)ed by the one server using D, for its lifetime
    D/.storekit/lru.sqlite        paths(hash_part, name, nar_url, size, last_used), for eviction only

What keeps readers safe:
- Every file is written under a temp name and renamed into place. A path is added NAR first, narinfo
  last, and removed narinfo first, NAR last; a narinfo is served only while its NAR file exists (one
  found without it is removed), so the server never answers a narinfo whose NAR it no longer has.
- A NAR file named by two narinfos (the same bytes) is deleted only when the last of them goes.
- A path may be cached without its references: the cache holds what clients asked for, and eviction
  removes single paths (least recently used first); a client asking for a missing reference makes
  the server fetch it again.

Writers: the server takes `.storekit/lock` around each publish, each eviction and its start-up check,
never while serving; `storekit cache gc` takes the same lock around its deletions, so neither sees
the other half done. `lru.sqlite` is the server's alone: a gc need not update it (rows whose files
are gone are dropped when met), and paths others add are adopted on first use, last used at their
narinfo's mtime. Orphan NAR files (a crash between the two renames) are left to `cache gc`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from storekit.errors import NarInfoError, StoreError, StorekitError
from storekit.narinfo import NarInfo, NixCacheInfo
from storekit.store import sqlite
from storekit.store.lock import lock_fd, open_lock_file, unlock_fd
from storekit.store.transport import FileTransport, PendingFile, name_problem
from storekit.storepath import StoreDir

CACHE_INFO = "nix-cache-info"
BOOKKEEPING = ".storekit"
#: A temp file this old is a crashed download (no server has taken this long to verify a NAR).
STALE_TEMP_S = 3600.0
#: Uses of paths are written to lru.sqlite after this many, or this many seconds, or before evicting.
FLUSH_EVERY = 256
FLUSH_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paths (
    hash_part TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    nar_url TEXT NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS paths_last_used ON paths(last_used);
CREATE INDEX IF NOT EXISTS paths_nar_url ON paths(nar_url);
"""


@contextlib.contextmanager
def locked_cache_dir(root: str) -> Iterator[None]:
    """Hold a cache dir's write lock (`.storekit/lock`, created if missing), as `cache gc` must.

    Another process's lock only: threads of one process share their open file's lock, so a server
    also serialises its own threads (`CacheDir.locked`).
    """
    meta = os.path.join(root, BOOKKEEPING)
    try:
        os.makedirs(meta, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot lock the cache dir '{root}': {e.strerror or e}") from e
    fd = open_lock_file(os.path.join(meta, "lock"))
    try:
        lock_fd(fd, exclusive=True)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _url_of(narinfo: bytes) -> str | None:
    """The `URL:` of a narinfo, read without parsing the rest (a hit needs only that)."""
    for line in narinfo.split(b"\n"):
        if line.startswith(b"URL: "):
            return line[5:].decode("utf-8", "replace").strip()
    return None


class CacheDirError(StoreError):
    """The cache dir itself failed (disk full, permissions): not the upstream's fault."""


def cached_store_dir(root: str) -> str | None:
    """The StoreDir a cache dir's `nix-cache-info` names, if it has one."""
    data = FileTransport(root).read(CACHE_INFO)
    return None if data is None else NixCacheInfo.parse(data.decode("utf-8", "replace")).store_dir


class CacheDir:
    """One `--cache-dir`, owned by this process while open; see the module docstring."""

    def __init__(
        self,
        root: str,
        store_dir: StoreDir,
        *,
        max_size: int | None = None,
        priority: int = 40,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self.store_dir = store_dir
        self.max_size = max_size
        self.log = log
        self.transport = FileTransport(self.root)
        self.cache_info = NixCacheInfo(store_dir.path, want_mass_query=True, priority=priority)
        meta = os.path.join(self.root, BOOKKEEPING)
        try:
            os.makedirs(os.path.join(self.root, "nar"), exist_ok=True)
            os.makedirs(meta, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the cache dir '{self.root}': {e.strerror or e}") from e
        self._server_fd = open_lock_file(os.path.join(meta, "server.lock"))
        if not lock_fd(self._server_fd, exclusive=True, wait=False):
            os.close(self._server_fd)
            raise StoreError(f"cache dir '{self.root}' is in use by another 'storekit cache serve'")
        self._lock_fd = open_lock_file(os.path.join(meta, "lock"))
        self._thread_lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._db = sqlite.connect(os.path.join(meta, "lru.sqlite"), check_same_thread=False)
        self._db.isolation_level = None  # autocommit: every statement is its own transaction
        self._db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + _SCHEMA)
        # Uses are noted in memory and written in batches (before an eviction, every FLUSH_S, at
        # close): a hit then costs no database write. `_known` mirrors the table's hash parts.
        self._known: set[str] = set()
        self._used: dict[str, float] = {}
        self._used_nars: dict[str, float] = {}
        self._flushed_at = time.monotonic()
        self._check_cache_info()
        self.check()

    def close(self) -> None:
        self._flush()
        with self._db_lock:
            self._db.close()
        os.close(self._lock_fd)
        os.close(self._server_fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The directory's write lock: this process's threads, then other processes (a `cache gc`)."""
        with self._thread_lock:
            lock_fd(self._lock_fd, exclusive=True)
            try:
                yield
            finally:
                unlock_fd(self._lock_fd)

    def _check_cache_info(self) -> None:
        found = cached_store_dir(self.root)
        if found is not None and found != self.store_dir.path:
            raise StoreError(
                f"cache dir '{self.root}' holds paths of store dir '{found}', not '{self.store_dir}'"
            )
        with self.locked():
            self.transport.write(CACHE_INFO, self.cache_info.to_text().encode())

    # --- reading -----------------------------------------------------------------------------------

    def lookup(self, hash_part: str) -> bytes | None:
        """The narinfo of `hash_part` if it is here with its NAR (and mark it used), else None."""
        name = f"{hash_part}.narinfo"
        data = self.transport.read(name)
        if data is None:
            return None
        url = _url_of(data)
        if url is None or name_problem(url) is not None:
            self._parse(name, data)  # says what is wrong with it
            return None
        if not os.path.exists(os.path.join(self.root, url)):
            with self.locked():
                if self._nar_missing(name):
                    self._say(f"removed '{name}' from the cache dir: its NAR is gone")
            return None
        self._touch(hash_part, name, data)
        return data

    def nar_file(self, file_name: str) -> str | None:
        """The full name of `nar/<file_name>` if it is here (and mark its paths used)."""
        url = f"nar/{file_name}"
        if name_problem(url) is not None or file_name.startswith("."):
            return None
        full = os.path.join(self.root, url)
        if not os.path.isfile(full):
            return None
        with self._db_lock:
            self._used_nars[url] = time.time()
        return full

    def _parse(self, name: str, data: bytes) -> NarInfo | None:
        """A narinfo file of the cache dir; a broken one is reported and treated as absent."""
        whence = os.path.join(self.root, name)
        try:
            narinfo = NarInfo.parse(data.decode("utf-8"), self.store_dir, whence)
        except (UnicodeDecodeError, NarInfoError) as e:
            self._say(f"ignoring '{whence}': {e}")
            return None
        if name_problem(narinfo.url) is not None:
            self._say(f"ignoring '{whence}': its URL {narinfo.url!r} leads outside the cache")
            return None
        return narinfo

    def _touch(self, hash_part: str, name: str, data: bytes, when: float | None = None) -> None:
        """Note a use of a path now (or at `when`), adopting it when it is not in the bookkeeping yet."""
        when = time.time() if when is None else when
        with self._db_lock:
            known = hash_part in self._known
            if known:
                self._used[hash_part] = when
            due = len(self._used) >= FLUSH_EVERY or time.monotonic() - self._flushed_at > FLUSH_S
        if not known:
            narinfo = self._parse(name, data)
            with contextlib.suppress(FileNotFoundError):
                if narinfo is not None:
                    size = os.stat(os.path.join(self.root, narinfo.url)).st_size + len(data)
                    self._record(narinfo, size, when)
        elif due:
            self._flush()

    def _flush(self) -> None:
        """Write the uses noted since the last flush."""
        with self._db_lock:
            used, self._used = self._used, {}
            used_nars, self._used_nars = self._used_nars, {}
            self._flushed_at = time.monotonic()
            self._db.executemany(
                "UPDATE paths SET last_used = ? WHERE hash_part = ?", ((t, h) for h, t in used.items())
            )
            self._db.executemany(
                "UPDATE paths SET last_used = ? WHERE nar_url = ?", ((t, u) for u, t in used_nars.items())
            )

    def _record(self, narinfo: NarInfo, size: int, when: float) -> None:
        path = narinfo.store_path
        with self._db_lock:
            self._db.execute(
                "INSERT OR REPLACE INTO paths VALUES (?, ?, ?, ?, ?)",
                (path.hash_part, path.name, narinfo.url, size, when),
            )
            self._known.add(path.hash_part)

    # --- writing (under the lock) --------------------------------------------------------------------

    def publish(self, narinfo: NarInfo, pending: PendingFile) -> bytes:
        """Rename the verified NAR file into place, write its narinfo, then evict to fit; its text."""
        text = narinfo.to_text().encode()
        name = f"{narinfo.store_path.hash_part}.narinfo"
        with self.locked():
            try:
                pending.publish(narinfo.url)
                self.transport.write(name, text)
            except (OSError, StorekitError) as e:
                raise CacheDirError(f"cannot add '{narinfo.store_path}' to '{self.root}': {e}") from e
            self._record(narinfo, narinfo.file_size + len(text), time.time())
            self._evict(keep=narinfo.store_path.hash_part)
        return text

    def check(self) -> None:
        """At start-up: drop narinfos without NARs and stale temp files, adopt new paths, fit the size."""
        with self.locked():
            names = set(self.transport.list_names(".narinfo"))
            for name in sorted(names):
                if self._nar_missing(name):
                    self._say(f"removed '{name}' from the cache dir: its NAR is gone")
                    names.discard(name)
            with self._db_lock:
                known = {row[0] for row in self._db.execute("SELECT hash_part FROM paths")}
                gone = [(h,) for h in known if f"{h}.narinfo" not in names]
                self._db.executemany("DELETE FROM paths WHERE hash_part = ?", gone)
                self._known = known - {h for (h,) in gone}
            for name in sorted(names):
                hash_part = name.removesuffix(".narinfo")
                if hash_part not in known:
                    self._adopt(name)
            self._remove_stale_temps()
            self._evict(keep=None)

    def _adopt(self, name: str) -> None:
        """Record a path others added, last used when its narinfo was written."""
        data = self.transport.read(name)
        with contextlib.suppress(FileNotFoundError):
            if data is not None:
                mtime = os.stat(os.path.join(self.root, name)).st_mtime
                self._touch(name.removesuffix(".narinfo"), name, data, mtime)

    def _nar_missing(self, name: str) -> bool:
        """Remove narinfo `name` if its NAR file is gone (under the lock); whether it was removed."""
        data = self.transport.read(name)
        url = None if data is None else _url_of(data)
        if url is None or name_problem(url) is not None or os.path.exists(os.path.join(self.root, url)):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, name))
        self._forget(name.removesuffix(".narinfo"))
        return True

    def _forget(self, hash_part: str) -> None:
        with self._db_lock:
            self._db.execute("DELETE FROM paths WHERE hash_part = ?", (hash_part,))
            self._known.discard(hash_part)

    def _remove_stale_temps(self) -> None:
        nar = os.path.join(self.root, "nar")
        for entry in os.scandir(nar):
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_S:
                        os.unlink(entry.path)

    def _evict(self, keep: str | None) -> None:
        """Remove least recently used paths until the cache fits `max_size` (never `keep`, just added)."""
        if self.max_size is None:
            return
        self._flush()
        with self._db_lock:
            total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM paths").fetchone()[0]
            if total <= self.max_size:
                return
            rows = self._db.execute(
                "SELECT hash_part, name, nar_url, size FROM paths ORDER BY last_used"
            ).fetchall()
        for hash_part, name, nar_url, size in rows:
            if total <= self.max_size:
                break
            if hash_part == keep:
                continue
            self._remove(hash_part, nar_url)
            total -= size
            self._say(f"evicted {self.store_dir.path}/{hash_part}-{name} ({size} bytes, least recently used)")
        if total > self.max_size:
            self._say(
                f"the cache dir holds {total} bytes, over --max-size {self.max_size}: one path is larger"
            )

    def _remove(self, hash_part: str, nar_url: str) -> None:
        """Narinfo first, NAR last (unless another narinfo names the same file)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, f"{hash_part}.narinfo"))
        self._forget(hash_part)
        with self._db_lock:
            shared = self._db.execute("SELECT 1 FROM paths WHERE nar_url = ? LIMIT 1", (nar_url,)).fetchone()
        if shared is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, nar_url))

    def _say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)
