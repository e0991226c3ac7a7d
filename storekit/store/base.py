"""What every store offers: `ValidPathInfo` (a path's metadata) and the `Store` interface.

Copying, overlays and caches are written only against `Store`, like pypa/installer's core works only
through a source and a destination: a copy needs `query_path_info`, `is_valid_path`,
`nar_from_path`, `add_from_nar` and the closure helpers, and nothing about where bytes live.
Stores may offer faster paths on top (a local store can hard-link files instead of streaming NARs).
"""

from __future__ import annotations

import io
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from storekit.errors import DependencyCycle, InvalidStorePath, PathNotValid, StoreError
from storekit.frozen import Frozen
from storekit.hashing import Hash, new_hasher
from storekit.nixversion import STRICTEST, NixRules
from storekit.storepath import StoreDir, StorePath

TYPE_CHECKING = False  # `typing` (for the stream protocols) only for the type checker: start-up
if TYPE_CHECKING:
    from storekit.bytestreams import ByteSource

#: Spool NARs in memory up to this size before using a temporary file.
SPOOL_BYTES = 8 << 20


_set = object.__setattr__


class ValidPathInfo(Frozen):
    """What a store knows about a valid path; the same fields as Nix's `ValidPathInfo`.

    A frozen value written by hand (`storekit.frozen`); `info.replace(...)` makes a changed copy.
    """

    __slots__ = (
        "ca", "deriver", "nar_hash", "nar_size", "path", "references", "registration_time", "sigs", "ultimate"
    )  # fmt: skip
    __match_args__ = (
        "path", "nar_hash", "nar_size", "references", "deriver", "registration_time", "ultimate", "sigs", "ca"
    )  # fmt: skip
    path: StorePath
    nar_hash: Hash
    nar_size: int
    references: frozenset[StorePath]
    deriver: StorePath | None
    registration_time: int
    ultimate: bool
    sigs: frozenset[str]
    ca: str | None

    def __init__(
        self,
        path: StorePath,
        nar_hash: Hash,
        nar_size: int,
        references: frozenset[StorePath] = frozenset(),
        deriver: StorePath | None = None,
        registration_time: int = 0,
        ultimate: bool = False,
        sigs: frozenset[str] = frozenset(),
        ca: str | None = None,
    ) -> None:
        _set(self, "path", path)
        _set(self, "nar_hash", nar_hash)
        _set(self, "nar_size", nar_size)
        _set(self, "references", references)
        _set(self, "deriver", deriver)
        _set(self, "registration_time", registration_time)
        _set(self, "ultimate", ultimate)
        _set(self, "sigs", sigs)
        _set(self, "ca", ca)

    def fingerprint(self) -> str:
        """The string Nix signs: `1;path;sha256:nix32;size;ref,ref`."""
        from storekit.narinfo import fingerprint  # (signing only: narinfo is not needed to build)

        return fingerprint(self.path, self.nar_hash, self.nar_size, self.references)

    def with_sigs(self, sigs: Iterable[str]) -> ValidPathInfo:
        return self.replace(sigs=self.sigs | frozenset(sigs))


class Store(ABC):
    """A set of valid store paths under one store dir, their metadata and their contents as NARs."""

    store_dir: StoreDir
    rules: NixRules = STRICTEST
    """The Nix this store behaves as where versions differ (names with a leading `.`, BLAKE3)."""

    def behave_as(self, rules: NixRules) -> None:
        """Follow `rules` from now on (the CLI passes the user's `nix-version`)."""
        self.rules = rules
        self.store_dir = StoreDir(self.store_dir.path, rules.name_rule)

    def check_hash_algo(self, algo: str, what: str) -> None:
        """Refuse BLAKE3 unless this store behaves as a Nix that reads it (>= 2.27)."""
        if algo == "blake3" and not self.rules.blake3:
            raise StoreError(
                f"{what} is hashed with BLAKE3, which only Nix >= 2.27 reads, and store '{self.uri}' "
                f"behaves as {self.rules.describe()}; set nix-version to 2.27 or later to allow it"
            )

    # --- what each store implements ------------------------------------------------------------

    @property
    @abstractmethod
    def uri(self) -> str:
        """The spec that reopens this store (used in messages)."""

    @abstractmethod
    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        """The info of `path`, or None if it is not valid here."""

    @abstractmethod
    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        """The NAR serialisation of a valid path, streamed in chunks."""

    @abstractmethod
    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        """Make `info.path` valid from the NAR in `source`, checking its hash and size against `info`.

        The references of `info` must already be valid. Nothing becomes valid if a check fails.
        A path that is already valid is left alone (`source` is then not read) unless `repair`.
        """

    @abstractmethod
    def query_referrers(self, path: StorePath) -> set[StorePath]:
        """The valid paths whose references include `path`."""

    @abstractmethod
    def query_all_valid_paths(self) -> set[StorePath]: ...

    def close(self) -> None:  # noqa: B027 - optional for stores holding nothing
        """Release locks and handles."""

    # --- derived operations ---------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query_path_info(self, path: StorePath) -> ValidPathInfo:
        info = self.lookup_path_info(path)
        if info is None:
            raise PathNotValid(str(path), self.uri)
        return info

    def is_valid_path(self, path: StorePath) -> bool:
        return self.lookup_path_info(path) is not None

    def query_references(self, path: StorePath) -> frozenset[StorePath]:
        return self.query_path_info(path).references

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        for path in self.query_all_valid_paths():
            if path.hash_part == hash_part:
                return path
        return None

    def parse_path(self, text: str) -> StorePath:
        """A store path of this store from `text`, which may also point inside one (`…-foo/bin/sh`)."""
        if text.startswith(self.store_dir.path + "/"):
            return self.store_dir.to_store_path(text)[0]
        raise InvalidStorePath(f"path '{text}' is not in the store dir '{self.store_dir}' of '{self.uri}'")

    def closure(self, paths: Iterable[StorePath], *, include_derivers: bool = False) -> set[StorePath]:
        """Every path reachable from `paths` through references (and derivers, when asked)."""
        seen: set[StorePath] = set()
        todo = list(paths)
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            info = self.query_path_info(path)
            seen.add(path)
            todo.extend(info.references - seen)
            if include_derivers and info.deriver is not None and self.is_valid_path(info.deriver):
                todo.append(info.deriver)
        return seen

    def topo_sort(self, paths: Iterable[StorePath]) -> list[StorePath]:
        """Nix's `topoSortPaths`: a path comes before the paths it references (referrers first)."""
        items = set(paths)
        try:
            from storekit.graph import toposort  # (few commands sort: start-up)

            order = toposort(sorted(items), lambda path: self._children(path, items))
        except DependencyCycle as e:
            child, node = e.cycle[0], e.cycle[-2]
            raise StoreError(f"cycle detected in the references of '{child}' from '{node}'") from e
        order.reverse()
        return order

    def _children(self, path: StorePath, items: set[StorePath]) -> Iterator[StorePath]:
        refs = self.query_path_info(path).references
        return iter(sorted(r for r in refs if r != path and r in items))

    def add_path(self, src: str, name: str | None = None) -> StorePath:
        """`nix-store --add`: serialise `src` to a NAR and add it as a recursive sha256 source path."""
        import tempfile  # here: with shutil, random, bz2 and lzma, it costs every command's start-up

        from storekit.nar.fs import dump_path
        from storekit.store.content_address import source_ca

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            hasher = new_hasher("sha256")
            size = 0
            for chunk in dump_path(src):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)
            nar_hash = hasher.finish()
            path = self.store_dir.make_source_path(name or _base_name(src), nar_hash)
            if not self.is_valid_path(path):
                spool.seek(0)
                info = ValidPathInfo(path, nar_hash, size, ca=source_ca(nar_hash))
                self.add_from_nar(info, spool)
        return path

    def add_text(self, name: str, text: bytes, references: Iterable[StorePath] = ()) -> StorePath:
        """A text path (a `.drv`, `builtins.toFile`): addressed by the sha256 of `text` plus references."""
        from storekit.nar.writer import File, to_bytes
        from storekit.store.content_address import text_ca

        refs = frozenset(references)
        content_hash = Hash.of(text)
        path = self.store_dir.make_text_path(name, content_hash, refs)
        if not self.is_valid_path(path):
            nar = to_bytes(File(text))
            info = ValidPathInfo(path, Hash.of(nar), len(nar), refs, ca=text_ca(content_hash))
            self.add_from_nar(info, io.BytesIO(nar))
        return path


def _base_name(src: str) -> str:
    return posixpath.basename(posixpath.normpath(src))
