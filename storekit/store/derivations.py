"""Writing a derivation given as a value into a local store: what `nix derivation add` does.

The derivation is checked the way Nix checks one before it writes it (`checkInvariants`): every output
path and output env var must be the one Nix computes, which for input-addressed derivations means
reading the input derivations, here from this store. The `.drv` is then added as a text path whose
references are its inputs, so they must be valid here first.
"""

from __future__ import annotations

from pathlib import Path

from storekit.derivation.aterm import print_aterm
from storekit.derivation.fs import read_derivation
from storekit.derivation.hashing import check, drv_path
from storekit.derivation.model import Derivation
from storekit.errors import InvalidDerivation, PathNotValid
from storekit.store.local import LocalStore
from storekit.storepath import StorePath


def add_derivation(
    store: LocalStore, drv: Derivation, name: str | None, path: str | None = None
) -> StorePath:
    """Write `drv` to `store` and return its path; `name` (or `path`, or `env["name"]`) names it."""
    sd = store.store_dir
    if not name:
        name = sd.parse_path(path).name.removesuffix(".drv") if path else drv.name
    if not name:
        raise InvalidDerivation("the derivation has no name: give the JSON a 'name' field")
    refs = [sd.parse_path(p) for p in (*drv.input_srcs, *drv.input_drvs)]
    for ref in refs:
        if not store.is_valid_path(ref):
            raise PathNotValid(str(ref), store.uri)

    def lookup(p: str) -> Derivation:
        return read_derivation(Path(store.real_path(sd.parse_path(p))))

    want = drv_path(drv, sd, name=name)
    if path is not None and path != str(want):
        raise InvalidDerivation(f"the JSON names the derivation '{path}', but its contents make it '{want}'")
    problems = check(str(want), drv, sd, lookup)
    if problems:
        raise InvalidDerivation(f"derivation '{want}' is not what Nix would write: " + "; ".join(problems))
    written = store.add_text(want.name, print_aterm(drv).encode("utf-8", "surrogateescape"), refs)
    assert written == want, (written, want)
    return written
