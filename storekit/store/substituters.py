"""Substituters and the signature policy: where paths may come from, and which of them to believe.

`Substituters` is a read-only store over a list of stores in priority order: the first that has a
path serves both its info and its NAR, as Nix's substitution goal tries substituters in turn.
`SignaturePolicy` is Nix's `require-sigs` + `trusted-public-keys`: a path from elsewhere is accepted
when a trusted key signed its fingerprint, or when it is content-addressed (its name follows from its
contents, which the receiving store checks), and refused otherwise, before any byte is transferred.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from storekit.bytestreams import ByteSource
from storekit.errors import InvalidValue, SignatureError, StoreError
from storekit.signing import PublicKey, parse_public_keys, verify
from storekit.store.base import Store, ValidPathInfo
from storekit.store.content_address import ContentAddress
from storekit.storepath import StoreDir, StorePath


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """Which paths to accept from an untrusted source (Nix's `require-sigs`, `trusted-public-keys`)."""

    trusted_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    require_sigs: bool = True

    @classmethod
    def from_text(
        cls, trusted_public_keys: str | Iterable[str], *, require_sigs: bool = True
    ) -> SignaturePolicy:
        """From a `trusted-public-keys` value: `name:base64` keys separated by whitespace."""
        return cls(parse_public_keys(trusted_public_keys), require_sigs)

    def good_signatures(self, info: ValidPathInfo) -> list[str]:
        """The signatures of `info` made by a trusted key over its fingerprint."""
        fingerprint = info.fingerprint()
        return [sig for sig in sorted(info.sigs) if verify(fingerprint, sig, self.trusted_keys)]

    def is_trusted(self, info: ValidPathInfo, store_dir: StoreDir) -> bool:
        if not self.require_sigs:
            return True
        return is_content_addressed(info, store_dir) or bool(self.good_signatures(info))

    def check(self, info: ValidPathInfo, store_dir: StoreDir, source: str) -> None:
        """Refuse `info` (SignatureError naming the path, its signers and the trusted keys) unless trusted."""
        if self.is_trusted(info, store_dir):
            return
        signers = sorted({sig.partition(":")[0] for sig in info.sigs})
        has = f"signatures by {', '.join(signers)}" if signers else "no signatures"
        trusted = ", ".join(sorted(self.trusted_keys)) or "none"
        raise SignatureError(
            f"cannot add path '{info.path}' from '{source}' because it lacks a valid signature by a "
            f"trusted key (it has {has}; trusted keys: {trusted}); pass the signer's public key with "
            "--trusted-public-keys, or --no-check-sigs if you trust the source"
        )


def is_content_addressed(info: ValidPathInfo, store_dir: StoreDir) -> bool:
    """Nix's `isContentAddressed`: the CA field gives exactly this path (contents are checked on import)."""
    if info.ca is None:
        return False
    try:
        made = ContentAddress.parse(info.ca).store_path(store_dir, info.path.name, info.references, info.path)
    except InvalidValue:
        return False
    return made == info.path


class Substituters(Store):
    """A read-only union of stores in priority order: the first that has a path serves it."""

    def __init__(self, stores: Sequence[Store], *, sort_by_priority: bool = True) -> None:
        if not stores:
            raise StoreError("no substituters given")
        dirs = {s.store_dir.path for s in stores}
        if len(dirs) > 1:
            raise StoreError(
                "substituters must share one store dir; got "
                + ", ".join(f"'{s.uri}' ({s.store_dir})" for s in stores)
            )
        ordered = list(stores)
        if sort_by_priority:
            # Nix sorts by the caches' `Priority:` (lower first), keeping the given order among equals
            ordered.sort(key=lambda s: getattr(s, "priority", None) or 0)
        self.stores = tuple(ordered)
        self.store_dir = ordered[0].store_dir

    @property
    def uri(self) -> str:
        return " ".join(s.uri for s in self.stores)

    def find(self, path: StorePath) -> tuple[Store, ValidPathInfo] | None:
        """The first substituter that has `path`, with its info."""
        for store in self.stores:
            info = store.lookup_path_info(path)
            if info is not None:
                return store, info
        return None

    def lookup_path_info(self, path: StorePath) -> ValidPathInfo | None:
        found = self.find(path)
        return None if found is None else found[1]

    def nar_from_path(self, path: StorePath) -> Iterator[bytes]:
        found = self.find(path)
        if found is None:
            return self.stores[0].nar_from_path(path)  # raises PathNotValid
        return found[0].nar_from_path(path)

    def source_of(self, path: StorePath) -> Store:
        """The store that serves `path` (for messages and signature decisions)."""
        found = self.find(path)
        return self.stores[0] if found is None else found[0]

    def add_from_nar(self, info: ValidPathInfo, source: ByteSource, *, repair: bool = False) -> None:
        raise StoreError(f"cannot add '{info.path}' to substituters ({self.uri}): they are read-only")

    def query_referrers(self, path: StorePath) -> set[StorePath]:
        return set().union(*(s.query_referrers(path) for s in self.stores))

    def query_all_valid_paths(self) -> set[StorePath]:
        return set().union(*(s.query_all_valid_paths() for s in self.stores))

    def query_path_from_hash_part(self, hash_part: str) -> StorePath | None:
        for store in self.stores:
            found = store.query_path_from_hash_part(hash_part)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        for store in self.stores:
            with contextlib.suppress(Exception):
                store.close()


def is_untrusted_source(store: Store) -> bool:
    """Paths from a binary cache (or substituters holding one) need signatures by default, as in Nix."""
    from storekit.store.binary_cache import BinaryCacheStore

    if isinstance(store, Substituters):
        return any(is_untrusted_source(s) for s in store.stores)
    return isinstance(store, BinaryCacheStore)
