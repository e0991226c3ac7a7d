"""A local store with Nix 2.8's on-disk layout, so real Nix and storekit read and write the same store.

Layout (for `/opt/store`): files in the *real* dir (usually the store dir itself), `.links` beside them;
state in `/opt/var/nix`: `db/{db.sqlite,schema,big-lock,reserved}`, `gcroots/`, `profiles/`,
`temproots/`, `gc.lock`. The DB and every hash use the *logical* store dir; only file operations use
the real dir, which is how `local?store=/opt/store&real=/mnt/x/store` prepares a store elsewhere.

Adding a path is atomic in Nix's sense: the contents are written under a temp name in the real dir
(a locked *staging* directory), then, under the path's lock, renamed into place, made canonical and
registered in one DB transaction. A process killed at any moment leaves at worst an unregistered
directory or staging leftover, which the next add of that path replaces and `gc` (or the next open)
removes; the DB never claims a path whose files are not all there.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence

from storekit.errors import HashMismatch, PathNotValid, StoreError, StorekitError
from storekit.hashing import Hash
from storekit.store import canonical, dbmarker, schema
from storekit.store.base import Store, ValidPathInfo
from storekit.store.content_address import ContentAddress, source_ca, text_ca
from storekit.store.deferred import later
from storekit.store.layout import STAGING_NEW_PREFIX, STAGING_PREFIX, create_layout, remove_stale_staging
from storekit.store.lock import TempRoots, lock_fd, open_lock_file, path_lock, unlock_fd
from storekit.store.specs import LocalStoreSpec
from storekit.storepath import StoreDir, StorePath, check_name
from storekit.tempdirs import make_temp_dir

TYPE_CHECKING = False  # no `typing` at run time: every `storekit build` opens a local store first
if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet

    from storekit.bytestreams import ByteSource

    # realisations (content-addressed derivations) are imported when used: their wire
    # types cost every `storekit build` several ms of start-up, and most builds have none
    from storekit.realisation import DrvOutput, Realisation


class LocalStore(Store):
    """A store on this machine's file system; see the module docstring for layout and atomicity."""

    def __init__(self, spec: LocalStoreSpec) -> None:
        self.spec = spec
        self.store_dir = StoreDir(spec.store_dir)
        self.real_dir = spec.real_dir
        self.state_dir = spec.state_dir
        self.db_dir = os.path.join(spec.state_dir, "db")
        self.links_dir = os.path.join(spec.real_dir, ".links")
        self.gcroots_dir = os.path.join(spec.state_dir, "gcroots")
        self.temproots_dir = os.path.join(spec.state_dir, "temproots")
        mark = dbmarker.check_before_open(self.db_dir, spec.store_dir, str(spec))  # before any write
        create_layout(spec.real_dir, spec.state_dir)
        self._big_lock = open_lock_file(os.path.join(self.db_dir, "big-lock"))
        try:
            self._open_database()
        except BaseException:
            os.close(self._big_lock)
            raise
        if mark:
            dbmarker.write_marker(self.db_dir, spec.store_dir)
        self._temp_roots = TempRoots(self.temproots_dir)
        self._gc_lock: int | None = None
        self._roots_guard = _thread.allocate_lock()  # the gc.lock fd is shared by this store's threads
        self._closed = False
        remove_stale_staging(self.real_dir)

    @property
    def uri(self) -> str:
        return str(self.spec)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._db.close()
        self._temp_roots.close()
        for fd in (self._gc_lock, self._big_lock):
            if fd is not None:
                os.close(fd)
        self._gc_lock = None

    # --- opening ---------------------------------------------------------------------------------

    def _open_database(self) -> None:
        """Hold the big lock shared while open; take it exclusively only to create a new database."""
        if schema.read_schema_version(self.db_dir) == 0:
            lock_fd(self._big_lock, exclusive=True)
            if schema.read_schema_version(self.db_dir) == 0:
                schema.create_database(self.db_dir)
        lock_fd(self._big_lock, exclusive=False)
        self._db = schema.StoreDb(self.db_dir)

    # --- queries -----------------------------------------------------------------------------------

    def real_path(self, path: StorePath) -> str:
        """Where the files of `path` are (under the real dir, which may differ from the store dir)."""
        return os.path.join(self.real_dir, path.base_name)

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        if path.store_dir != self.store_dir:
            return None
        row = self._db.query_path(str(path))
        return None if row is None else self._info_from_row(path, row)

    def is_valid_path(self, path: StorePath) -> bool:
        return path.store_dir == self.store_dir and self._db.is_valid(str(path))

    def closure(self, paths: Iterable[StorePath], *, include_derivers: bool = False) -> set[StorePath]:
        """`Store.closure` in one recursive query of the database: every build computes its input
        closure, and a path-by-path walk made two queries (and a parsed row) per path in it."""
        if include_derivers:
            return super().closure(paths, include_derivers=True)
        roots = list(paths)
        for path in reversed(roots):  # the invalid path `Store.closure` would report
            if not self.is_valid_path(path):
                raise PathNotValid(str(path), self.uri)
        parse = self.store_dir.parse_path
        return {parse(p) for p in self._db.closure(sorted({str(p) for p in roots}))}

    def valid_among(self, paths: Iterable[StorePath]) -> set[StorePath]:
        """The valid ones of `paths`: `is_valid_path` of many at once (one database query)."""
        mine = {str(p): p for p in paths if p.store_dir == self.store_dir}
        return {mine[p] for p in self._db.valid_among(list(mine))}

    def _info_from_row(self, path: StorePath, row: schema.PathRow) -> ValidPathInfo:
        parse = self.store_dir.parse_path
        try:
            nar_hash = Hash.parse(row.hash)
        except StorekitError as e:
            raise StoreError(f"invalid-path entry for '{path}' in '{self.db_dir}': {e}") from e
        return ValidPathInfo(
            path=path,
            nar_hash=nar_hash,
            nar_size=row.nar_size,
            references=frozenset(parse(r) for r in row.references),
            deriver=parse(row.deriver) if row.deriver else None,
            registration_time=row.registration_time,
            ultimate=row.ultimate,
            sigs=frozenset((row.sigs or "").split()),
            ca=row.ca or None,
        )

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return {self.store_dir.parse_path(p) for p in self._db.referrers(str(path))}

    def query_all_valid_paths(self) -> set[StorePath]:
        """Every valid path of this store dir (rows of another store dir, in a database two stores
        shared before `dbmarker`, are not this store's: `store verify` reports them)."""
        prefix = self.store_dir.path.rstrip("/") + "/"
        return {self.store_dir.parse_path(p) for p in self._db.all_paths() if p.startswith(prefix)}

    def foreign_rows(self) -> list[str]:
        """Rows of the database that are not paths of this store dir (see `dbmarker`)."""
        return self._db.foreign_paths(self.store_dir.path.rstrip("/") + "/")

    def drop_foreign_rows(self) -> int:
        """Forget the rows of another store dir (their files are not touched); returns how many."""
        with self._db.transaction() as db:
            return db.drop_foreign_paths(self.store_dir.path.rstrip("/") + "/")

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        found = self._db.path_from_prefix(f"{self.store_dir.path}/{hash_part}")
        return None if found is None else self.store_dir.parse_path(found)

    def query_derivation_outputs(self, drv: StorePath) -> dict[str, StorePath]:
        return {k: self.store_dir.parse_path(v) for k, v in self._db.derivation_outputs(str(drv)).items()}

    def query_valid_derivers(self, path: StorePath) -> set[StorePath]:
        return {self.store_dir.parse_path(p) for p in self._db.valid_derivers(str(path))}

    def query_realisation(self, output: DrvOutput) -> Realisation | None:
        """Where an output of a content-addressed derivation went (`store.realisations`)."""
        from storekit.store import realisations

        return realisations.query_realisation(self._db, self.store_dir, output)

    def register_realisation(self, value: Realisation) -> None:
        from storekit.store import realisations

        realisations.register_realisation(self._db, self.store_dir, value)

    def realisation_closure(self, keys: Iterable[DrvOutput]) -> list[Realisation]:
        """The realisations of `keys` and all they depend on (`store.realisations.realisation_closure`)."""
        from storekit.store import realisations

        return realisations.realisation_closure(self._db, self.store_dir, list(keys))

    def realisations_of_paths(self, paths: Iterable[StorePath]) -> list[Realisation]:
        from storekit.store import realisations

        return realisations.realisations_of_paths(self._db, self.store_dir, [str(p) for p in paths])

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        from storekit.nar.fs import dump_path

        self.query_path_info(path)
        return dump_path(self.real_path(path))

    # --- adding ----------------------------------------------------------------------------------

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        from storekit.nar.fs import restore
        from storekit.store.streams import HashingReader  # (with `typing`: not on a build's start-up)

        self._check_new_info(info)
        self.add_temp_root(info.path)
        if not repair and self.is_valid_path(info.path):
            return
        with self.staging() as stage:
            staged = os.path.join(stage, "x")
            reader = HashingReader(source)
            restore(reader, staged, nar_size=info.nar_size or None)
            got_hash, got_size = reader.finish()
            if got_hash != info.nar_hash:
                raise HashMismatch(f"NAR of '{info.path}'", str(info.nar_hash), str(got_hash))
            if got_size != info.nar_size:
                raise StoreError(
                    f"size mismatch importing path '{info.path}': specified {info.nar_size} bytes, "
                    f"got {got_size}; the NAR is truncated or not the one its metadata describes"
                )
            check_content_address(info, staged, got_hash)
            self.install_staged(info, staged, repair=repair)

    def add_path(self, src: str, name: str | None = None) -> StorePath:
        """`nix-store --add` in one pass: the tree is serialised, hashed and restored at once."""
        from storekit.nar.fs import dump_path, restore
        from storekit.store.streams import ChunkReader, HashingReader

        name = name or os.path.basename(os.path.normpath(src))
        check_name(name, rule=self.store_dir.name_rule)  # before any work
        with self.staging() as stage:
            staged = os.path.join(stage, "x")
            reader = HashingReader(ChunkReader(dump_path(src)))
            restore(reader, staged)
            nar_hash, size = reader.finish()
            path = self.store_dir.make_source_path(name, nar_hash)
            self.add_temp_root(path)
            if not self.is_valid_path(path):
                self.install_staged(ValidPathInfo(path, nar_hash, size, ca=source_ca(nar_hash)), staged)
        return path

    def add_text(self, name: str, text: bytes, references: Iterable[StorePath] = ()) -> StorePath:
        """A text path: its NAR is made in memory and the file written canonical at once
        (`small_nar`), not written, then read back to hash, then canonicalised."""
        from storekit.nar.format import file_nar
        from storekit.store.small_nar import stage_in_memory

        refs = frozenset(references)
        content_hash = Hash.of(text)
        path = self.store_dir.make_text_path(name, content_hash, refs)
        self.add_temp_root(path)
        if self.is_valid_path(path):
            return path
        nar = file_nar(text)
        info = ValidPathInfo(path, Hash.of(nar), len(nar), refs, ca=text_ca(content_hash))
        with self.staging() as stage:
            staged = stage_in_memory(nar, stage, info, "x")
            assert staged is not None, "one regular file with a text content address is staged in memory"
            self.install_staged(info, staged)
        return path

    @contextlib.contextmanager
    def staging(self) -> Iterator[str]:
        """A fresh directory in the real dir (same file system, so `rename` into place is atomic).

        It is flocked while in use; an unlocked one is a leftover of a killed process and is removed
        on the next open or by `gc`. It is made under a `STAGING_NEW_PREFIX` name and renamed once
        locked (as build dirs are), so another process's sweep never sees it unlocked between the two.
        Put new contents at `<staging>/x`, then call `install_staged`.
        """
        new = make_temp_dir(self.real_dir, STAGING_NEW_PREFIX)
        fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stage = new
        try:
            lock_fd(fd, exclusive=True)
            stage = os.path.join(
                self.real_dir, STAGING_PREFIX + os.path.basename(new)[len(STAGING_NEW_PREFIX) :]
            )
            os.rename(new, stage)
            yield stage
        finally:
            later(lambda: _delete_and_close(stage, fd))  # locked until deleted (see store.deferred)

    def install_staged(self, info: ValidPathInfo, staged: str, *, repair: bool = False) -> bool:
        """Move a fully written tree into place as `info.path` and register it; False if already valid.

        The caller has checked the contents against `info` (hash, content address). Holds the path lock,
        so of two processes adding the same path one installs it and the other finds it valid.
        """
        self._check_new_info(info)
        real = self.real_path(info.path)
        with path_lock(real):
            if not repair and self._db.is_valid(str(info.path)):
                return False
            outputs = self._derivation_outputs(info, staged)
            if os.path.lexists(real):
                # an unregistered leftover (a killed add), or the old copy when repairing
                canonical.make_movable(real)
                os.rename(real, f"{staged}-old")  # deleted with the staging dir
            canonical.make_movable(staged)
            os.rename(staged, real)
            canonical.canonicalise_path(real)
            with self._db.transaction() as db:
                db.register([_new_path(info, outputs)])
        return True

    def register_valid_paths(self, infos: Sequence[ValidPathInfo]) -> None:
        """Register paths whose files are already in place (build outputs), in one transaction.

        Their files are made canonical first; references among `infos` may form any order.
        """
        for info in infos:
            if info.path.store_dir != self.store_dir:
                raise StoreError(f"cannot register '{info.path}' in store dir '{self.store_dir}'")
            canonical.canonicalise_path(self.real_path(info.path))
        new_paths = {info.path for info in infos}
        for info in infos:
            self._check_references(info, new_paths)
        rows = [_new_path(i, self._derivation_outputs(i, self.real_path(i.path))) for i in infos]
        with self._db.transaction() as db:
            db.register(rows)

    def _check_new_info(self, info: ValidPathInfo, new_paths: frozenset[StorePath] = frozenset()) -> None:
        """Refuse what must never be registered; references may be valid or among `new_paths`."""
        self.check_info_alone(info)
        self._check_references(info, {info.path, *new_paths})

    def check_info_alone(self, info: ValidPathInfo) -> None:
        """`_check_new_info` but for the references: the store dir, the NAR hash's algorithm, and that
        a content address gives the path's name (a staging worker checks this ahead of the install)."""
        if info.path.store_dir != self.store_dir:
            raise StoreError(f"path '{info.path}' does not belong to store dir '{self.store_dir}'")
        if info.nar_hash.algo != "sha256":
            raise StoreError(f"path '{info.path}': the NAR hash must be sha256, not {info.nar_hash.algo}")
        if info.ca is not None:
            ca = ContentAddress.parse(info.ca, blake3=True)  # refused below, with a reason, if not allowed
            self.check_hash_algo(ca.hash.algo, f"the content address of '{info.path}'")
            expected = ca.store_path(self.store_dir, info.path.name, info.references, info.path)
            if expected != info.path:
                raise StoreError(
                    f"cannot add path '{info.path}' because it claims to be content-addressed but isn't "
                    f"(its content address '{info.ca}' gives '{expected}')"
                )

    def _check_references(
        self,
        info: ValidPathInfo,
        new_paths: AbstractSet[StorePath],
        valid: AbstractSet[StorePath] | None = None,
    ) -> None:
        """Every reference is in `new_paths`, or valid (in `valid` when the caller asked the database
        for many at once, else asked here one by one)."""
        outside = [r for r in info.references if r not in new_paths]
        if valid is None:
            missing = sorted(str(r) for r in outside if not self.is_valid_path(r))
        else:
            missing = sorted(str(r) for r in outside if r not in valid)
        if missing:
            raise StoreError(
                f"cannot add '{info.path}': its references are not valid in '{self.uri}': "
                f"{', '.join(missing)}; add them first (copy the whole closure)"
            )

    def _derivation_outputs(self, info: ValidPathInfo, file: str) -> tuple[tuple[str, str], ...]:
        """`DerivationOutputs` rows of a `.drv`, after checking its output paths like Nix does."""
        if not info.path.is_derivation:
            return ()
        from storekit.derivation.fs import read_derivation
        from storekit.derivation.hashing import check
        from storekit.derivation.model import Derivation

        drv = read_derivation(file)

        def lookup(drv_path: str) -> Derivation:
            return read_derivation(self.real_path(self.store_dir.parse_path(drv_path)))

        problems = check(str(info.path), drv, self.store_dir, lookup)
        if problems:
            raise StoreError(f"derivation '{info.path}' is not consistent: " + "; ".join(problems))
        return tuple(sorted((name, o.path) for name, o in drv.outputs.items() if o.path))

    # --- temp roots ----------------------------------------------------------------------------------

    def add_temp_root(self, path: StorePath) -> None:
        """Keep `path` alive against a concurrent GC (ours or Nix's) for as long as this store is open.

        Waits while a garbage collection holds `gc.lock`: after it, the root file is read by any GC.
        """
        self.add_temp_roots([path])

    def add_temp_roots(self, paths: Sequence[StorePath]) -> None:
        """`add_temp_root` of many paths: one wait for `gc.lock`, one write."""
        with self._roots_guard:
            if self._gc_lock is None:
                self._gc_lock = open_lock_file(os.path.join(self.state_dir, "gc.lock"))
            lock_fd(self._gc_lock, exclusive=False)
            try:
                self._temp_roots.add_many([str(path) for path in paths])
            finally:
                unlock_fd(self._gc_lock)

    # --- deleting (see gc.py for roots and garbage collection) ------------------------------------

    def invalidate_and_delete(self, path: StorePath) -> int:
        """Drop one path whose referrers are all gone; returns bytes freed. The GC calls this."""
        real = self.real_path(path)
        _check_deletable(path, real)
        with path_lock(real):
            with self._db.transaction() as db:
                others = [r for r in db.referrers(str(path)) if r != str(path)]
                if others:
                    raise StoreError(
                        f"cannot delete path '{path}' because it is in use by {', '.join(others)}"
                    )
                db.invalidate(str(path))
            return canonical.delete_path(real)

    def update_path_info(self, info: ValidPathInfo) -> None:
        """Rewrite the mutable fields (hash, size, sigs, ca, ultimate) of a valid path."""
        with self._db.transaction() as db:
            db.update_info(
                str(info.path),
                nar_hash=_db_hash(info.nar_hash),
                nar_size=info.nar_size,
                sigs=schema.sigs_text(info.sigs),
                ca=info.ca,
                ultimate=info.ultimate,
            )


def _check_deletable(path: StorePath, real: str) -> None:
    """Refuse, before anything is invalidated, a directory only its owner (or root) can empty.

    Store directories are read-only; deleting one means making it writable first, which only its
    owner may do. In a store a group shares (docs/shared-store.md) that is the user who made it.
    """
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return
    me = os.geteuid()
    if me != 0 and stat.S_ISDIR(st.st_mode) and st.st_uid != me:
        raise StoreError(
            f"cannot delete '{path}': its files belong to uid {st.st_uid}, and only their owner or "
            "root can delete a read-only directory; collect garbage as that user or as root"
        )


def _db_hash(h: Hash) -> str:
    return f"{h.algo}:{h.base16}"


def _new_path(info: ValidPathInfo, outputs: tuple[tuple[str, str], ...]) -> schema.NewPath:
    return schema.NewPath(
        path=str(info.path),
        hash=_db_hash(info.nar_hash),
        nar_size=info.nar_size,
        references=tuple(sorted(str(r) for r in info.references)),
        deriver=str(info.deriver) if info.deriver else None,
        registration_time=info.registration_time,
        ultimate=info.ultimate,
        sigs=schema.sigs_text(info.sigs),
        ca=info.ca,
        outputs=outputs,
    )


def check_content_address(info: ValidPathInfo, staged: str, nar_hash: Hash) -> None:
    """A content address must match the contents too (Nix's "ca hash mismatch importing path")."""
    if info.ca is None:
        return
    from storekit.nar.fs import hash_file, hash_path

    ca = ContentAddress.parse(info.ca, blake3=True)  # the store checked the algorithm first
    if ca.kind == "fixed" and ca.method.value == "r:" and info.path in info.references:
        # a self-referencing path is hashed modulo its own hash part (Nix's hashCAPath)
        from storekit.nar.fs import dump_path
        from storekit.references import hash_modulo

        got = hash_modulo(dump_path(staged), info.path.hash_part, ca.hash.algo)
    elif ca.kind == "fixed" and ca.method.value == "r:":
        got = nar_hash if ca.hash.algo == "sha256" else hash_path(staged, ca.hash.algo)[0]
    else:
        if not os.path.isfile(staged) or os.path.islink(staged):
            raise StoreError(f"path '{info.path}' has a flat content address but is not a regular file")
        got = hash_file(staged, ca.hash.algo)
    if got != ca.hash:
        raise HashMismatch(f"content address of '{info.path}'", str(ca.hash), str(got))


def _delete_and_close(path: str, fd: int) -> None:
    try:
        canonical.delete_path(path)
    finally:
        os.close(fd)
