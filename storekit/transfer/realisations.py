"""Realisations travelling with the paths they name: pushed by `copy`, fetched by substitution.

A content-addressed derivation's output is found through its realisation (`DrvOutput` -> output path),
so a cache that holds the output but not the realisation is no use to a builder. `copy_realisations`
sends, after the paths, every realisation the source store records for them, dependencies first (a
store refuses a realisation whose `dependentRealisations` it lacks); `sign_keys` sign them (Nix's
fingerprint: the realisation's JSON without its signatures). `fetch_realisation` is Nix's
`DrvOutputSubstitutionGoal` lookup: the first substituter that has the realisation, if it is to be
believed. A content-addressed output path proves its contents but not which derivation built it, so
when signatures are required a realisation needs one by a trusted key (Nix 2.8 takes it unsigned; a
cache of storekit's is signed when pushed with keys, and Nix signs with `secret-key-files`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from storekit.errors import StoreError
from storekit.realisation import FULL_JSON_KEYS, DrvOutput, Realisation
from storekit.signing import SecretKey, verify
from storekit.store.base import Store
from storekit.store.substituters import SignaturePolicy, Substituters
from storekit.storepath import StorePath
from storekit.wire.common import realisation_fingerprint


def sign(r: Realisation, keys: Sequence[SecretKey]) -> Realisation:
    if not keys:
        return r
    sigs = set(r.signatures) | {k.sign(realisation_fingerprint(r)) for k in keys}
    return r.replace(signatures=tuple(sorted(sigs)))


def is_trusted(r: Realisation, policy: SignaturePolicy | None) -> bool:
    if policy is None or not policy.require_sigs:
        return True
    text = realisation_fingerprint(r)
    return any(verify(text, s, policy.trusted_keys) for s in r.signatures)


def copy_realisations(
    src: Store, dst: Store, paths: Iterable[StorePath], sign_keys: Sequence[SecretKey] = ()
) -> list[Realisation]:
    """Register in `dst` the realisations `src` records for `paths` (valid in `dst` by now)."""
    of_paths = getattr(src, "realisations_of_paths", None)
    register = getattr(dst, "register_realisation", None)
    if of_paths is None or register is None:
        return []
    found: list[Realisation] = of_paths(sorted(paths))
    by_id = {str(r.id): r for r in found}
    done: set[str] = set()
    sent = []

    def send(r: Realisation) -> None:
        key = str(r.id)
        if key in done:
            return
        done.add(key)
        for dep in sorted(r.dependent):
            if dep in by_id:
                send(by_id[dep])
        value = sign(r.replace(json_keys=FULL_JSON_KEYS), sign_keys)
        register(value)
        sent.append(value)

    for r in sorted(found, key=lambda r: str(r.id)):
        send(r)
    return sent


def fetch_realisation(
    substituters: Store, key: DrvOutput, policy: SignaturePolicy | None
) -> Realisation | None:
    """The first trusted realisation of `key` a substituter has (None: build it)."""
    stores = substituters.stores if isinstance(substituters, Substituters) else (substituters,)
    for store in stores:
        query = getattr(store, "query_realisation", None)
        if query is None:
            continue
        try:
            found: Realisation | None = query(key)
        except StoreError:
            continue  # a damaged or unreachable cache: try the next one, as Nix does
        if found is not None and is_trusted(found, policy):
            return found.replace(id=key)
    return None


def register_fetched(dst: Store, substituters: Store, r: Realisation, policy: SignaturePolicy | None) -> None:
    """Register a substituted realisation, fetching the realisations it depends on first."""
    register = getattr(dst, "register_realisation", None)
    query = getattr(dst, "query_realisation", None)
    if register is None or query is None:
        return
    for dep in sorted(r.dependent):
        key = DrvOutput.parse(dep)
        if query(key) is None:
            found = fetch_realisation(substituters, key, policy)
            if found is None:
                raise StoreError(f"realisation '{r.id}' depends on '{dep}', which no substituter has")
            register_fetched(dst, substituters, found, policy)
    register(r)
