"""Relocating substitution: consuming a store or binary cache built for another store dir.

Real Nix takes only reference-free content-addressed paths across store dirs (its substitution goal
refuses the rest), and its `make-content-addressed` into another store dir names the paths for the
new dir but leaves the old store dir inside the files. Here the paths are rewritten on the way:

- `relocating_copy` (`storekit copy --relocate`): the closure is checked against the signature
  policy *as the source presents it* (the signatures sign the old names), then relocated
  content-addressed, so the destination trusts the results by their names, without signatures.
- `RelocatingStore` (`storekit cache serve --relocate-from`): a store that serves another store
  dir's paths under its own. A client asks for a path by hash part; a content-addressed name cannot
  be traced back to the path it came from, so the server relocates in keep-hash mode, on the first
  request for a hash part the upstream has, into a backing store, and serves it from there (signed by
  the server's key, as every narinfo it serves).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from storekit.errors import PathNotValid, StoreError, StorekitError
from storekit.relocate.apply import relocate
from storekit.relocate.plan import Mode, keep_hash_path
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StorePath

if TYPE_CHECKING:
    from storekit.store.copy import CopyResult, Progress
    from storekit.store.substituters import SignaturePolicy


def relocating_copy(
    src: Store,
    dst: Store,
    paths: Iterable[StorePath],
    *,
    policy: SignaturePolicy,
    progress: Progress | None = None,
) -> CopyResult:
    """`copy_closure` across store dirs: check the source's signatures, relocate content-addressed."""
    from storekit.store.copy import CopyEvent, CopyResult

    wanted = list(paths)
    closure = src.closure(wanted)
    for path in sorted(closure):
        policy.check(src.query_path_info(path), src.store_dir, src.uri)
    before = dst.query_all_valid_paths()

    def report(path: StorePath, done: int, total: int) -> None:
        if progress is not None:
            size = src.query_path_info(path).nar_size
            progress(CopyEvent(path, size, src.uri, len(closure), total))

    result = relocate(src, dst, wanted, mode=Mode.CONTENT_ADDRESSED, progress=report)
    new = sorted(result.paths.values())
    copied = tuple(p for p in new if p not in before)
    size = sum(dst.query_path_info(p).nar_size for p in copied)
    return CopyResult(copied, tuple(p for p in new if p in before), size)


class RelocatingStore(Store):
    """`backing` (this store dir), filled on demand from `upstream` (another store dir), keep-hash.

    Read-only to its users: paths appear by being asked for. `warnings` collects what relocations
    reported; a path that cannot be relocated is simply not there (its refusal is kept in `refusals`).
    """

    def __init__(self, backing: Store, upstream: Store, *, allow_unsafe: bool = False) -> None:
        if backing.store_dir == upstream.store_dir:
            raise StoreError(
                f"'{upstream.uri}' already has the store dir '{backing.store_dir}': nothing to relocate"
            )
        self.backing = backing
        self.upstream = upstream
        self.store_dir = backing.store_dir
        self.allow_unsafe = allow_unsafe
        self.warnings: list[str] = []
        self.refusals: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"{self.backing.uri} (relocating from {self.upstream.uri})"

    def close(self) -> None:
        self.backing.close()
        self.upstream.close()

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        info = self.backing.lookup_path_info(path)
        if info is not None or path.store_dir != self.store_dir.path:
            return info
        old = StorePath(self.upstream.store_dir.path, path.hash_part, path.name)
        return self._pull(old) if self.upstream.is_valid_path(old) else None

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        found = self.backing.query_path_from_hash_part(hash_part)
        if found is not None:
            return found
        old = self.upstream.query_path_from_hash_part(hash_part)
        if old is None:
            return None
        info = self._pull(old)
        return None if info is None else info.path

    def _pull(self, old: StorePath) -> ValidPathInfo | None:
        """Relocate `old`'s closure into the backing store (once); None if it is refused."""
        with self._lock:
            new = keep_hash_path(old, self.store_dir)
            if self.backing.is_valid_path(new):
                return self.backing.query_path_info(new)
            if str(old) in self.refusals:
                return None
            try:
                result = relocate(self.upstream, self.backing, [old], allow_unsafe=self.allow_unsafe)
            except StorekitError as e:  # a refusal, or an upstream that cannot deliver
                self.refusals[str(old)] = str(e)
                return None
            self.warnings += result.warnings
            return self.backing.query_path_info(new)

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        if self.lookup_path_info(path) is None:
            raise PathNotValid(str(path), self.uri)
        return self.backing.nar_from_path(path)

    def add_from_nar(self, info: ValidPathInfo, source: BinaryIO, *, repair: bool = False) -> None:
        raise StoreError(f"'{self.uri}' is read-only: its paths come from '{self.upstream.uri}'")

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return self.backing.query_referrers(path)

    def query_all_valid_paths(self) -> set[StorePath]:
        return self.backing.query_all_valid_paths()
