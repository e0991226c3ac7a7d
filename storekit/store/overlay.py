"""`overlay?lower=<spec>&upper=<spec>`: a read-only lower store under a writable upper local store.

Reads look in the upper store, then fall through to the lower one; writes go to the upper store.
An upper path may reference lower paths: like Nix's local-overlay store, the referenced lower paths
(with their closure) are registered in the upper database as *borrowed* rows, with no files in the
upper's real dir, so the upper database alone knows every closure and keeps Nix's schema (a reference
must be a valid path). Garbage collection and deletion run on the upper store only: forgetting a
borrowed row deletes nothing, because the upper keeps its files in another directory than the lower.

Several uppers may share one lower. Each upper registers itself in `<lower state>/overlay-uppers/`,
and the lower's GC treats every path an upper database holds as a root (`overlay_roots`, in its own
module beside `runtime_roots`), so it never
deletes a path an upper still references. Nix's local-overlay store has no such registration: there,
collecting the lower store can break its uppers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from storekit.bytestreams import ByteSource
from storekit.errors import StoreError
from storekit.hashing import Hash
from storekit.store import schema
from storekit.store.base import Store, ValidPathInfo
from storekit.store.local import LocalStore
from storekit.store.overlay_roots import register_upper
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.store.gc import GcResult
    from storekit.store.verify import VerifyReport


class OverlayStore(Store):
    """See the module docstring. `roots_registered` is False when the lower's state dir is read-only."""

    def __init__(self, lower: Store, upper: Store, *, uri: str | None = None) -> None:
        if not isinstance(upper, LocalStore):
            raise StoreError(f"the upper store of an overlay must be a local store, not '{upper.uri}'")
        if lower.store_dir != upper.store_dir:
            raise StoreError(
                f"overlay: lower '{lower.uri}' and upper '{upper.uri}' must share a store dir "
                f"('{lower.store_dir}' vs '{upper.store_dir}')"
            )
        if isinstance(lower, LocalStore) and _same_dir(lower.real_dir, upper.real_dir):
            raise StoreError(
                f"overlay: the upper store '{upper.uri}' keeps its files in '{upper.real_dir}', the lower "
                "store's directory; give it its own (local?store=…&state=…&real=<upper dir>)"
            )
        self.lower = lower
        self.upper = upper
        self.store_dir = upper.store_dir
        self._uri = uri or f"overlay?lower={lower.uri}&upper={upper.uri}"
        self._db = schema.StoreDb(upper.db_dir)
        self.roots_registered = register_upper(lower, upper)

    @property
    def uri(self) -> str:
        return self._uri

    def close(self) -> None:
        self._db.close()
        self.upper.close()
        self.lower.close()

    # --- reading: upper, then lower -------------------------------------------------------------------

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        return self.upper.lookup_path_info(path) or self.lower.lookup_path_info(path)

    def is_valid_path(self, path: StorePath) -> bool:
        return self.upper.is_valid_path(path) or self.lower.is_valid_path(path)

    def has_upper_files(self, path: StorePath) -> bool:
        """Whether the upper store holds `path`'s files (not just a borrowed row)."""
        return self.upper.is_valid_path(path) and os.path.lexists(self.upper.real_path(path))

    def real_path(self, path: StorePath) -> str | None:
        """Where `path`'s files are on this machine (upper or lower), or None for a non-local lower."""
        if self.has_upper_files(path):
            return self.upper.real_path(path)
        if isinstance(self.lower, LocalStore) and self.lower.is_valid_path(path):
            return self.lower.real_path(path)
        return None

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        if self.has_upper_files(path) or not self.lower.is_valid_path(path):
            return self.upper.nar_from_path(path)
        return self.lower.nar_from_path(path)

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return self.upper.query_referrers(path) | self.lower.query_referrers(path)

    def query_all_valid_paths(self) -> set[StorePath]:
        return self.upper.query_all_valid_paths() | self.lower.query_all_valid_paths()

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        return self.upper.query_path_from_hash_part(hash_part) or self.lower.query_path_from_hash_part(
            hash_part
        )

    # --- writing: to the upper --------------------------------------------------------------------------

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        if not repair and self.is_valid_path(info.path):
            return
        self.borrow(info.references - {info.path})
        self.upper.add_from_nar(info, source, repair=repair)

    def add_text(self, name: str, text: bytes, references: Iterable[StorePath] = ()) -> StorePath:
        refs = frozenset(references)
        self.borrow(refs)
        path = self.store_dir.make_text_path(name, Hash.of(text), refs)
        if self.lower.is_valid_path(path):
            return path
        return self.upper.add_text(name, text, refs)

    def borrow(self, references: Iterable[StorePath]) -> None:
        """Register lower paths and their closure in the upper database, so upper paths may refer to them."""
        wanted = sorted(r for r in references if not self.upper.is_valid_path(r))
        if not wanted:
            return
        if isinstance(self.lower, LocalStore):
            for path in wanted:  # a concurrent GC of the lower must keep them until our rows exist
                with contextlib.suppress(OSError, StoreError):
                    self.lower.add_temp_root(path)
        closure = self.lower.closure(wanted)
        infos = [self.lower.query_path_info(p) for p in sorted(closure) if not self.upper.is_valid_path(p)]
        with self._db.transaction() as db:
            db.register([_row(i) for i in infos])

    # --- deleting: the upper only -------------------------------------------------------------------------

    def collect_garbage(self, *, dry_run: bool = False, max_freed: int | None = None) -> GcResult:
        """GC the upper store; borrowed rows no upper path needs are forgotten, lower files untouched."""
        from storekit.store.gc import collect_garbage

        return collect_garbage(self.upper, dry_run=dry_run, max_freed=max_freed)

    def delete(self, paths: Iterable[StorePath], *, dry_run: bool = False) -> GcResult:
        """Delete upper paths (forget borrowed ones); lower-only paths are refused."""
        from storekit.store.gc import delete_paths

        wanted = list(paths)
        for path in wanted:
            if not self.upper.is_valid_path(path) and self.lower.is_valid_path(path):
                raise StoreError(
                    f"cannot delete path '{path}': it is in the read-only lower store '{self.lower.uri}'"
                )
        return delete_paths(self.upper, wanted, dry_run=dry_run)

    # --- verifying: the upper, and what it borrowed ---------------------------------------------------------

    def verify(self, *, check_contents: bool = False, repair: bool = False) -> VerifyReport:
        """`nix-store --verify` of the upper, where a row without files there is the lower's to serve.

        Such a borrowed row is fine while the lower store has the path; once it has not, the row is
        a vanished path like any other (dropped if nothing needs it, an error if something does).
        The lower is not touched: verify it with `--store <lower>`.
        """
        from storekit.store.verify import verify_store

        def borrowed(path: StorePath) -> bool:
            return not self.has_upper_files(path) and self.lower.is_valid_path(path)

        return verify_store(self.upper, check_contents=check_contents, repair=repair, borrowed=borrowed)


def _row(info: ValidPathInfo) -> schema.NewPath:
    return schema.NewPath(
        path=str(info.path),
        hash=f"{info.nar_hash.algo}:{info.nar_hash.base16}",
        nar_size=info.nar_size,
        references=tuple(sorted(str(r) for r in info.references)),
        deriver=str(info.deriver) if info.deriver else None,
        registration_time=info.registration_time,
        ultimate=False,
        sigs=schema.sigs_text(info.sigs),
        ca=info.ca,
        outputs=(),
    )


def _same_dir(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
