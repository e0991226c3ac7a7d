"""Relocating substitution: consuming a store or binary cache built for another store dir.

Real Nix takes only reference-free content-addressed paths across store dirs (its substitution goal
refuses the rest), and its `make-content-addressed` into another store dir names the paths for the
new dir but leaves the old store dir inside the files. Here the paths are rewritten on the way:

- `relocating_copy` (`storekit copy --relocate`): the closure is checked against the signature
  policy *as the source presents it* (the signatures sign the old names), then relocated
  content-addressed, so the destination trusts the results by their names, without signatures.
- `RelocatingStore` (`storekit cache serve --relocate-from`): a store that serves another store
  dir's paths under its own, relocated into a backing store and served from there (signed by the
  server's key, as every narinfo it serves). A client asks for a path by hash part. In keep-hash mode
  that hash part is the old one, so a path is relocated on the first request for it. In
  content-addressed mode a new name cannot be traced back to the path it came from: paths are
  relocated when named (`relocate_paths`, `relocate_hash_part`: the server's start-up list and its
  `/relocate/` endpoint), their new names remembered in a `RelocationIndex`, and served from the
  backing store, trusted by Nix for their names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from storekit.bytestreams import ByteSource
from storekit.errors import PathNotValid, StoreError, StorekitError
from storekit.progress import Progress, ProgressEvent
from storekit.relocate.apply import relocate
from storekit.relocate.plan import Mode, keep_hash_path
from storekit.store.base import Store, ValidPathInfo
from storekit.storepath import StorePath
from storekit.transfer.copy import CopyResult
from storekit.transfer.relocation_index import RelocationIndex

if TYPE_CHECKING:
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
    wanted = list(paths)
    closure = src.closure(wanted)
    for path in sorted(closure):
        policy.check(src.query_path_info(path), src.store_dir, src.uri)
    before = dst.query_all_valid_paths()

    def report(event: ProgressEvent) -> None:  # relocation's events, as the copy the user asked for
        if progress is not None:
            progress(event.replace(activity="copy", source=src.uri))

    result = relocate(src, dst, wanted, mode=Mode.CONTENT_ADDRESSED, progress=report)
    new = sorted(result.paths.values())
    copied = tuple(p for p in new if p not in before)
    size = sum(dst.query_path_info(p).nar_size for p in copied)
    renamed = tuple((old, result.paths[old]) for old in dict.fromkeys(wanted))
    return CopyResult(copied, tuple(p for p in new if p in before), size, renamed)


class RelocatingStore(Store):
    """`backing` (this store dir), filled from `upstream` (another store dir) as paths are asked for.

    Read-only to its users: paths appear by being relocated. `warnings` collects what relocations
    reported; a path that cannot be relocated is not there, and its refusal is kept in `refusals` and
    passed to `log` (nothing of its closure was added: relocation is all-or-nothing).
    """

    def __init__(
        self,
        backing: Store,
        upstream: Store,
        *,
        mode: Mode = Mode.KEEP_HASH,
        allow_unsafe: bool = False,
        index: RelocationIndex | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if backing.store_dir == upstream.store_dir:
            raise StoreError(
                f"'{upstream.uri}' already has the store dir '{backing.store_dir}': nothing to relocate"
            )
        self.backing = backing
        self.upstream = upstream
        self.store_dir = backing.store_dir
        self.mode = mode
        self.allow_unsafe = allow_unsafe
        self.index = index if index is not None else RelocationIndex()
        self.log = log
        self.warnings: list[str] = []
        self.refusals: dict[str, str] = {}
        self._lock = threading.RLock()

    @property
    def uri(self) -> str:
        return f"{self.backing.uri} (relocating from {self.upstream.uri}, {self.mode.value})"

    def close(self) -> None:
        self.backing.close()
        self.upstream.close()

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        info = self.backing.lookup_path_info(path)
        if info is not None or path.store_dir != self.store_dir or self.mode is not Mode.KEEP_HASH:
            return info
        old = StorePath(self.upstream.store_dir, path.hash_part, path.name)
        return self._pull(old) if self.upstream.is_valid_path(old) else None

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        found = self.backing.query_path_from_hash_part(hash_part)
        if found is not None or self.mode is not Mode.KEEP_HASH:
            return found
        old = self.upstream.query_path_from_hash_part(hash_part)
        if old is None:
            return None
        info = self._pull(old)
        return None if info is None else info.path

    def relocate_paths(self, olds: Sequence[StorePath]) -> dict[StorePath, StorePath]:
        """Relocate the closures of `olds` (upstream paths) unless done; old -> new for each of `olds`.

        Raises the refusal (a `StorekitError` naming every file and offset) when one cannot be relocated.
        """
        with self._lock:
            done = {old: self._known(old) for old in olds}
            todo = [old for old, new in done.items() if new is None]
            if todo:
                try:
                    result = relocate(
                        self.upstream, self.backing, todo, mode=self.mode, allow_unsafe=self.allow_unsafe
                    )
                except StorekitError as e:  # a refusal, or an upstream that cannot deliver
                    for old in todo:
                        self.refusals[str(old)] = str(e)
                    raise
                self.warnings += result.warnings
                self.index.add({str(o): str(n) for o, n in result.paths.items()})
                done.update({old: result.paths[old] for old in todo})
            return {old: new for old, new in done.items() if new is not None}

    def relocate_hash_part(self, hash_part: str) -> StorePath | None:
        """The new path of the upstream path with this hash part, relocated (with its closure) if need be.

        None if the upstream has no such path; raises the refusal if it cannot be relocated.
        """
        old = self.upstream.query_path_from_hash_part(hash_part)
        return None if old is None else self.relocate_paths([old])[old]

    def _known(self, old: StorePath) -> StorePath | None:
        """The new path of `old` if it was relocated and is still valid in the backing store."""
        if self.mode is Mode.KEEP_HASH:
            new: StorePath | None = keep_hash_path(old, self.store_dir)
        else:
            recorded = self.index.get(str(old))
            new = None if recorded is None else self.backing.parse_path(recorded)
        return new if new is not None and self.backing.is_valid_path(new) else None

    def _pull(self, old: StorePath) -> ValidPathInfo | None:
        """Keep-hash: relocate `old`'s closure into the backing store (once); None if it is refused."""
        with self._lock:
            if str(old) in self.refusals:
                return None
            try:
                new = self.relocate_paths([old])[old]
            except StorekitError as e:  # the client sees a 404: say why in the log
                if self.log is not None:
                    self.log(f"cannot relocate {old}: {e}")
                return None
            return self.backing.query_path_info(new)

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        if self.lookup_path_info(path) is None:
            raise PathNotValid(str(path), self.uri)
        return self.backing.nar_from_path(path)

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        raise StoreError(f"'{self.uri}' is read-only: its paths come from '{self.upstream.uri}'")

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return self.backing.query_referrers(path)

    def query_all_valid_paths(self) -> set[StorePath]:
        return self.backing.query_all_valid_paths()
