"""Signing paths already in a store (`storekit store sign`, like `nix store sign`).

A signature is over the path's fingerprint (`1;path;narHash;narSize;refs`), so adding one never
touches the files: a local store rewrites the row's `sigs` in its database, a binary cache rewrites
the narinfo (NAR files untouched). Paths made here (builds, `relocate --mode keep-hash`) are
`ultimate` and unsigned until then; a signature lets another machine, or real Nix with
`require-sigs`, trust them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from storekit.errors import StoreError
from storekit.signing import SecretKey
from storekit.store.base import Store
from storekit.storepath import StorePath


def sign_paths(store: Store, paths: Iterable[StorePath], keys: Sequence[SecretKey]) -> int:
    """Add a signature by each of `keys` to each path; returns how many signatures were new."""
    from storekit.store.binary_cache import BinaryCacheStore
    from storekit.store.local import LocalStore

    if not isinstance(store, LocalStore | BinaryCacheStore):
        raise StoreError(
            f"cannot sign paths in '{store.uri}': signatures are kept by a local store (its database) "
            "or a binary cache (its narinfo files), not by this one"
        )
    added = 0
    for path in sorted(paths):
        info = store.query_path_info(path)
        new = {key.sign(info.fingerprint()) for key in keys} - info.sigs
        if not new:
            continue
        if isinstance(store, LocalStore):
            store.update_path_info(info.with_sigs(new))
        else:
            narinfo = store.lookup_narinfo(path)
            assert narinfo is not None, f"{path} is valid in {store.uri} but has no narinfo"
            store.publish(replace(narinfo, sigs=tuple(sorted({*narinfo.sigs, *new}))))
        added += len(new)
    return added
